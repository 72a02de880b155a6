"""From dataset folders in their native layouts to one manifest, verified, deduplicated and split.

From Python, the pipeline `covidxray data prepare` runs::

    from covidxray.data import prepare
    prepared = prepare(["../shared/data"], "prepared", holdout=["siim-covid19-detection"])
    prepared.split, prepared.split_loso       # the split files; prepared.tables: the counts, titled

Names are imported on first use, so `import covidxray.data` loads neither pandas nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidxray.lazy import lazy_names

#: Public name -> the module that defines it (imported when the name is first used).
_API = {
    "prepare": "covidxray.data.pipeline",
    "PreparedData": "covidxray.data.pipeline",
    "split_manifest": "covidxray.data.pipeline",
    "SplitOutcome": "covidxray.data.pipeline",
    "build_manifest": "covidxray.data.manifest",
    "pack_splits": "covidxray.data.pack",
}

__all__ = sorted(_API)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from covidxray.data.manifest import build_manifest  # noqa: F401
    from covidxray.data.pack import pack_splits  # noqa: F401
    from covidxray.data.pipeline import PreparedData, SplitOutcome, prepare, split_manifest  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _API)

"""Honest evaluation: metrics with patient-bootstrap confidence intervals, calibration, audits, report.

From Python, the pipelines `covidxray evaluate`, `compare` and `model-card` run::

    from covidxray.evaluation import evaluate
    result = evaluate("runs/x/best.pt", "prepared/split.csv", part="test", out="reports/x")
    result.parts["test"].overall["roc_auc"]     # an Estimate: value, 95% CI, n

Names are imported on first use, so `import covidxray.evaluation` loads neither pandas nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidxray.lazy import lazy_names

#: Public name -> the module that defines it (imported when the name is first used).
_API = {
    "evaluate": "covidxray.evaluation.pipeline",
    "Evaluation": "covidxray.evaluation.pipeline",
    "PartResult": "covidxray.evaluation.parts",
    "compare_reports": "covidxray.evaluation.compare",
    "build_model_card": "covidxray.evaluation.model_card",
}

__all__ = sorted(_API)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from covidxray.evaluation.compare import compare_reports  # noqa: F401
    from covidxray.evaluation.model_card import build_model_card  # noqa: F401
    from covidxray.evaluation.parts import PartResult  # noqa: F401
    from covidxray.evaluation.pipeline import Evaluation, evaluate  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _API)

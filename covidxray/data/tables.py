"""The data pipeline's CSV tables on disk: written only where the write guard allows.

Every data step reads a manifest (covidxray.data.schema.read_table) and writes tables; guard_outputs
checks each output before any work, write_table checks again as it writes, so no table ever lands
inside a dataset (the folders given, or those of the images a table lists) or over an input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from covidxray.errors import CovidxrayError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["guard_outputs", "write_table"]


def guard_outputs(table: "pd.DataFrame | None", source: Path | list[Path], *outputs: tuple[Path, str]) -> None:
    """Before anything is written: refuse each (output, what) inside the datasets or over an input.

    Args:
        table: the manifest read (its images' folders are datasets), or None before one is built.
        source: the table's file (an input, never overwritten), or the dataset folders given (a list).
        outputs: (path, what it is) pairs; what names the output in the refusal.
    """
    from covidxray.paths.outputs import check_outputs, manifest_guard

    if isinstance(source, list):
        roots, inputs = list(source), list(source)
        if table is not None:
            roots += manifest_guard(table)[0]
    else:
        roots, inputs = manifest_guard(table, source)
    check_outputs(outputs, roots, inputs)


def write_table(frame: "pd.DataFrame", path: Path, what: str, roots: Iterable[Path] = (),
                inputs: Iterable[Path] = ()) -> int:
    """Write frame as CSV, never inside a dataset nor over an input nor over a dataset's metadata.csv.

    Args:
        frame: the table; the folders of the images its `path` column lists count as datasets.
        path: the CSV to write (parent folders made).
        what: the table's name in a refusal ("split", "manifest").
        roots: further dataset folders.
        inputs: files the step read.

    Returns:
        The number of rows written.
    """
    from covidxray.paths.outputs import check_output, dataset_roots_of

    path = Path(path)
    if path.exists() and path.resolve().name == "metadata.csv":
        raise CovidxrayError(f"{path}: refusing to overwrite a dataset's metadata.csv")
    listed = dataset_roots_of(frame["path"]) if "path" in frame else []
    check_output(path, [*roots, *listed], inputs, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)

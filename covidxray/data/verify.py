"""Open every listed image and say which are missing or unreadable, and why.

Writes a report (path, status, reason) and a verified manifest with width and height; the
source files are only read.
"""

from __future__ import annotations

import pandas as pd

from covidxray.data.sources.paths import OUTSIDE_DATASET
from covidxray.errors import ImageReadError
from covidxray.imaging.read import read_image
from covidxray.parallel import map_with_progress

STATUS_OK, STATUS_MISSING, STATUS_UNREADABLE = "ok", "missing", "unreadable"


def inspect_image(path: str) -> tuple[str, str, int, int]:
    """(status, reason, width, height) of one image after a full decode."""
    try:
        image = read_image(path)
    except ImageReadError as exc:
        reason = str(exc).split(": ", 1)[-1]
        status = STATUS_MISSING if reason == "file not found" else STATUS_UNREADABLE
        return status, reason, 0, 0
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, it is this file's problem, not the run's
        return STATUS_UNREADABLE, f"cannot decode it ({type(exc).__name__}: {str(exc)[:200]})", 0, 0
    return STATUS_OK, "", int(image.shape[1]), int(image.shape[0])


def _inspect_listed(item: tuple[str, str]) -> tuple[str, str, int, int]:
    """inspect_image, except for a path the manifest excluded as outside its dataset: never opened."""
    path, exclusion = item
    if exclusion == OUTSIDE_DATASET:
        return STATUS_UNREADABLE, OUTSIDE_DATASET, 0, 0
    return inspect_image(path)


def verify_manifest(manifest: pd.DataFrame, workers: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(report with path/status/reason, manifest with status, reason, width, height added)."""
    exclusions = manifest["exclusion"].tolist() if "exclusion" in manifest else [""] * len(manifest)
    results = map_with_progress(_inspect_listed, list(zip(manifest["path"].tolist(), exclusions)), "verifying images", workers)
    verified = manifest.copy()
    verified["status"] = [r[0] for r in results]
    verified["reason"] = [r[1] for r in results]
    verified["width"] = [str(r[2]) if r[2] else "" for r in results]
    verified["height"] = [str(r[3]) if r[3] else "" for r in results]
    report = verified[["path", "status", "reason"]].copy()
    return report, verified

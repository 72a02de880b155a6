"""Where result objects go: back into the PACS by STOW-RS, or into a folder for a dry run. Heat maps
are stored before reports, so that a stored SR always means its whole result is stored (exactly once).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from covidxray.pacs.screening import Outcome

__all__ = ["FolderSink", "ResultSink", "StowSink", "in_storing_order"]


class ResultSink(Protocol):
    """Somewhere results are stored and can be looked up."""

    #: Where, in a few words, for messages.
    where: str
    #: True when results go into the PACS read from (its studies grow by what is stored).
    into_pacs: bool

    def stored(self, study_uid: str, listed: set[str]) -> set[str]:
        """SOP Instance UIDs of the study's result objects already stored (listed: the study's instances, as the PACS listed them)."""

    def store(self, outcomes: list[Outcome]) -> int:
        """Store the outcomes' objects (pictures first, reports last); the number of objects stored."""


def in_storing_order(outcomes: list[Outcome]) -> tuple[list, list]:
    """(every heat-map capture, every report) of outcomes: the reports go last."""
    pictures = [obj for outcome in outcomes for obj in outcome.objects[:-1]]
    reports = [outcome.objects[-1] for outcome in outcomes if outcome.objects]
    return pictures, reports


class StowSink:
    """Results stored back into the DICOMweb server they came from (STOW-RS)."""

    def __init__(self, pacs) -> None:
        self.pacs = pacs
        self.where = f"PACS {pacs.settings.url}"
        self.into_pacs = True

    def stored(self, study_uid: str, listed: set[str]) -> set[str]:
        return listed

    def store(self, outcomes: list[Outcome]) -> int:
        pictures, reports = in_storing_order(outcomes)
        self.pacs.store(pictures)
        self.pacs.store(reports)
        return len(pictures) + len(reports)


class FolderSink:
    """--dry-run: results written as DICOM files to folder/<study UID>/<SOP Instance UID>.dcm; the PACS is untouched."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.where = str(folder)
        self.into_pacs = False

    def stored(self, study_uid: str, listed: set[str]) -> set[str]:
        study = self.folder / study_uid
        return {path.stem for path in study.glob("*.dcm")} if study.is_dir() else set()

    def store(self, outcomes: list[Outcome]) -> int:
        pictures, reports = in_storing_order(outcomes)
        for dataset in pictures + reports:
            write_atomically(dataset, self.folder / str(dataset.StudyInstanceUID) / f"{dataset.SOPInstanceUID}.dcm")
        return len(pictures) + len(reports)


def write_atomically(dataset, path: Path) -> None:
    """dataset as a Part 10 file at path, written beside it first and renamed (never a half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    dataset.save_as(partial, enforce_file_format=True)
    os.replace(partial, path)

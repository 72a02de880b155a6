"""What screening answers: one ScreeningResult per input, with one status that says what happened.

Every consumer (the CLI's rows, the web API, the page, the PACS reports) reads `status` and never
works it out from the other fields; `prediction` holds a label or nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Iterable

import numpy as np

from covidxray.errors import CovidxrayError

__all__ = ["ScreeningError", "ScreeningResult", "Screenings", "Status", "row_columns"]


class Status(StrEnum):
    """What happened to one input; its value is the word written in rows and JSON."""

    #: Read, judged a frontal chest radiograph by the input gate (or the gate is off), scored.
    SCREENED = "screened"
    #: Scored, but the gate found something to check first: input_note says what.
    WARNED = "warned"
    #: Read, but the gate says it is not a frontal chest radiograph: no probability (input_note says why).
    REFUSED = "refused"
    #: Not read or not scored: error says why.
    ERROR = "error"

    @property
    def scored(self) -> bool:
        """True when the model gave probabilities (screened or warned)."""
        return self in (Status.SCREENED, Status.WARNED)


#: The gate's verdict word (covidxray.gate.runtime) -> the result's status.
GATE_STATUS = {"ok": Status.SCREENED, "warning": Status.WARNED, "refused": Status.REFUSED}


@dataclass
class ScreeningResult:
    """One input's answer. Probabilities, prediction and severity are filled only when status.scored;
    error says why an input has status error (or, beside an answer, that its heat map failed)."""

    path: str
    status: Status = Status.ERROR
    p_covid: float | None = None
    p_pneumonia: float | None = None
    p_normal: float | None = None
    #: A label of the model ("covid", "not_covid"; or "pneumonia", "normal"), or None when not scored.
    prediction: str | None = None
    threshold: float | None = None
    input_flags: list[str] = field(default_factory=list)
    input_note: str = ""
    input_scores: dict[str, float] = field(default_factory=dict)
    error: str = ""
    severity_extent: float | None = None
    severity_opacity: float | None = None
    #: The bundled segmenter's mask (severity's, or a lung crop's), for outlines; not part of a row.
    lung_mask: np.ndarray | None = field(default=None, repr=False)
    #: Grad-CAM map in [0, 1] at the image's size, for the decided class; only when asked for.
    heatmap: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # "screened" given as text becomes the member; a wrong word raises here

    def failed(self, message: str) -> "ScreeningResult":
        """This result as an error: status error, message kept, no answer."""
        self.status, self.error = Status.ERROR, message
        self.p_covid = self.p_pneumonia = self.p_normal = self.prediction = None
        return self

    def as_row(self, labels: tuple[str, ...]) -> dict:
        """The result as the CLI, the API and every JSON write it: lists stay lists, dicts dicts."""
        row = {"path": self.path, "status": self.status.value, "p_covid": _round(self.p_covid)}
        if "pneumonia" in labels:
            row["p_pneumonia"], row["p_normal"] = _round(self.p_pneumonia), _round(self.p_normal)
        row.update(prediction=self.prediction, threshold=_round(self.threshold), input_flags=list(self.input_flags),
                   input_note=self.input_note, input_scores={k: _round(v) for k, v in self.input_scores.items()},
                   severity_extent=_round(self.severity_extent, 2), severity_opacity=_round(self.severity_opacity, 2),
                   error=self.error)
        return row


def row_columns(labels: tuple[str, ...]) -> list[str]:
    """The columns of as_row for a model with these labels, in order."""
    return list(ScreeningResult(path="").as_row(labels))


def flat_row(row: dict) -> dict:
    """A row for a flat table (CSV, Parquet): input_flags as 'a;b', input_scores as a JSON object text."""
    flat = dict(row)
    if "input_flags" in flat:
        flat["input_flags"] = ";".join(flat["input_flags"] or [])
    if "input_scores" in flat:
        flat["input_scores"] = json.dumps(flat["input_scores"] or {}, sort_keys=True)
    return flat


def _round(value: float | None, digits: int = 6):
    return None if value is None else round(float(value), digits)


class ScreeningError(CovidxrayError):
    """Raised by screen(..., raise_on_error=True): the inputs that could not be screened, named one a line."""

    def __init__(self, failed: list[ScreeningResult], results: list[ScreeningResult] | None = None) -> None:
        shown = "; ".join(result.error or result.path for result in failed[:5])
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} input(s) could not be screened: {shown}{more}")
        self.failed = failed
        self.results = results


class Screenings(list):
    """ScreeningResults in input order, with the labels they were scored on; to_frame() for pandas."""

    def __init__(self, results: Iterable[ScreeningResult], labels: tuple[str, ...]) -> None:
        super().__init__(results)
        self.labels = tuple(labels)

    @property
    def errors(self) -> list[ScreeningResult]:
        """The results with status error (unreadable or unscorable inputs), in order."""
        return [result for result in self if result.status is Status.ERROR]

    def tally(self) -> dict[str, int]:
        """How many results have each status, e.g. {'screened': 3, 'refused': 1}."""
        counts: dict[str, int] = {}
        for result in self:
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
        return counts

    def rows(self) -> list[dict]:
        """Each result as the CLI writes it (one dict per input, the same columns)."""
        return [result.as_row(self.labels) for result in self]

    def to_frame(self):
        """A pandas DataFrame, one row per input, the CLI's columns (flags a list, scores a dict; imports pandas)."""
        import pandas

        return pandas.DataFrame(self.rows(), columns=row_columns(self.labels))

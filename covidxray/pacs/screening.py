"""Screen source instances taken from a PACS and make their result objects: one engine for the DICOMweb
and the DIMSE paths, with the same Predictor (gate, calibrated probability, severity, heat map) as predict.

Each source image gets its result objects in storing order: the heat-map Secondary Capture first (only
when scored), the SR last, so that a stored SR always means the whole result is in the PACS.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from covidxray.pacs.identity import ModelIdentity, model_identity
from covidxray.pacs.uids import ResultUids, result_uids

if TYPE_CHECKING:
    from covidxray.inference.inputs import ReadInput
    from covidxray.inference.predictor import Predictor, ScreeningResult

    Scored = tuple["SourceImage", ReadInput, ScreeningResult]

__all__ = ["Outcome", "Screener", "SourceImage", "with_preamble"]

#: Longest side of the heat-map picture stored in the PACS (a large CR is shown shrunk; its map is computed at full size).
PICTURE_MAX_SIDE = 1024
#: Characters of a SOP Instance UID that fit a caption's title line (the caption wraps at spaces only).
TITLE_UID_CHARACTERS = 24
#: The name each instance is read under: never a header value, so no message can carry one.
READ_NAME = "instance.dcm"


@dataclass
class SourceImage:
    """A source instance: its parsed header (and pixels) and the bytes of its Part 10 file."""

    dataset: Dataset
    data: bytes

    @property
    def study_uid(self) -> str:
        return str(self.dataset.StudyInstanceUID)

    @property
    def sop_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SourceImage":
        """A DICOM file held in memory (as WADO-RS gives it or a storage SCP receives it); the header is
        parsed, not the pixels. A file without the 128-byte preamble and 'DICM' gets them."""
        from pydicom import dcmread

        data = with_preamble(data)
        return cls(dcmread(io.BytesIO(data), stop_before_pixels=True), data)


def with_preamble(data: bytes) -> bytes:
    """data with the Part 10 preamble and prefix when it starts at the file meta group without them
    (some archives store files so, and hand them back the same way)."""
    if data[128:132] != b"DICM" and data[:2] == b"\x02\x00":
        return b"\x00" * 128 + b"DICM" + data
    return data


@dataclass
class Outcome:
    """What screening one source instance came to: its status and the objects to store (SR last)."""

    study_uid: str
    source_uid: str
    status: str
    uids: ResultUids
    objects: list[Dataset] = field(default_factory=list)
    p_covid: float | None = None
    prediction: str | None = None
    #: One line for the console: UIDs and covidxray's own words only, never a header value.
    message: str = ""


class Screener:
    """The Predictor with its identity, turning source instances into result objects."""

    def __init__(self, predictor: Predictor, heatmaps: bool = True) -> None:
        self.predictor = predictor
        self.model: ModelIdentity = model_identity(predictor)
        #: False: no Grad-CAM picture (the SR alone); the PACS path makes them by default.
        self.heatmaps = heatmaps

    def uids(self, study_uid: str, source_uid: str) -> ResultUids:
        """The UIDs the result of this source instance has (or will have) in the PACS."""
        return result_uids(study_uid, source_uid, self.model.sha256)

    def screen(self, sources: list[SourceImage]) -> list[Outcome]:
        """Screen sources in one batch and build each one's SR (and, when scored, heat-map capture)."""
        return self.results(self.score(sources))

    def score(self, sources: list[SourceImage]) -> list[Scored]:
        """(source, read input, ScreeningResult) of each source: read, gated and scored in one batch."""
        from covidxray.inference.inputs import ReadInput, read_bytes_input, unexpected

        inputs = []
        for source in sources:
            try:
                inputs.append(read_bytes_input(source.data, READ_NAME))
            except Exception as exc:  # noqa: BLE001 - this image's SR says why; the batch goes on
                message = str(exc) if _is_covidxray_error(exc) else f"{READ_NAME}: cannot read it ({unexpected(exc)})"
                inputs.append(ReadInput(READ_NAME, None, error=message))
        return list(zip(sources, inputs, self.predictor.screen_read(inputs)))

    def results(self, scored: list[Scored]) -> list[Outcome]:
        """The result objects of scored sources (heat maps drawn here): a second stage, which a pass runs
        in its own thread while the model scores the next batch."""
        return [self._outcome(source, item, result) for source, item, result in scored]

    def _outcome(self, source: SourceImage, item: ReadInput, result: ScreeningResult) -> Outcome:
        from covidxray.pacs.results_sr import screening_report

        status = str(getattr(result.status, "value", result.status))
        uids = self.uids(source.study_uid, source.sop_uid)
        outcome = Outcome(source.study_uid, source.sop_uid, status, uids, p_covid=result.p_covid,
                          prediction=result.prediction)
        reason = _reason(result.error if status == "error" else result.input_note)
        if status in ("screened", "warned") and self.heatmaps and item.image is not None:
            try:
                outcome.objects.append(self._capture(source, item.image, result, uids))
            except Exception as exc:  # noqa: BLE001 - the SR stands; it says the picture failed
                from covidxray.inference.inputs import unexpected

                outcome.message = f"heat map not made ({unexpected(exc)})"
        outcome.objects.append(screening_report(source.dataset, result, self.model, uids, note=reason))
        if not outcome.message:
            outcome.message = _summary(status, result, reason)
        return outcome

    def _capture(self, source: SourceImage, image, result, uids: ResultUids) -> Dataset:
        from covidxray.explain.picture import heatmap_picture
        from covidxray.pacs.secondary_capture import heatmap_capture

        display, heat = image, None
        if max(image.shape) > PICTURE_MAX_SIDE:  # the map from the full image, shown on a smaller copy
            heat = self.predictor.heatmap(image, self.predictor.heatmap_class(result), result)
            display = _shrunk(image, PICTURE_MAX_SIDE)
        picture = heatmap_picture(self.predictor, display, result, title=_title(source), heat=heat)
        return heatmap_capture(source.dataset, picture, self.model, uids)


def _title(source: SourceImage) -> str:
    """The caption's first line: which image of the study this is (series and image numbers, never a
    name); else the end of its SOP Instance UID, short enough for the caption (the header holds it whole)."""
    series, image = source.dataset.get("SeriesNumber"), source.dataset.get("InstanceNumber")
    if series not in (None, "") and image not in (None, ""):
        return f"Series {series}, image {image}"
    uid = source.sop_uid
    return f"Image {uid}" if len(uid) <= TITLE_UID_CHARACTERS else f"Image ...{uid[-TITLE_UID_CHARACTERS:]}"


def _shrunk(image, side: int):
    """image (2-D floats) with its longer side cut to side pixels, for display."""
    import numpy as np
    from PIL import Image

    scale = side / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize(size, Image.Resampling.BILINEAR), np.float32)


def _reason(text: str) -> str:
    """A reader's message about the instance, without the placeholder name it was read under."""
    return text.replace(f"{READ_NAME}: ", "", 1) if text else ""


def _summary(status: str, result, reason: str) -> str:
    if status in ("screened", "warned"):
        line = f"p(covid) {result.p_covid:.3f}, {result.prediction}"
        return f"{line}; check: {reason}" if status == "warned" and reason else line
    return reason or status


def _is_covidxray_error(exc: BaseException) -> bool:
    from covidxray.errors import CovidxrayError

    return isinstance(exc, CovidxrayError)

"""Screen radiograph files with a checkpoint: one result row per input, never a crash.

Each file is read (PNG, JPEG, DICOM), passed through the input gate, and given calibrated
probabilities by the model (ONNX Runtime when a fresh export sits beside the checkpoint, else
PyTorch; see covidxray.onnx_models). Nothing here imports torch unless the torch backend or a
heat map is needed. A file that cannot be read gets a row with its error, and the others go on.
"""

from __future__ import annotations

import glob
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from covidxray.errors import CovidxrayError, ImageReadError
from covidxray.imaging.read import IMAGE_SUFFIXES, read_image, read_image_bytes, read_image_facts, sniff_bytes

WEIGHTS = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS / "covidxray-default.pt"
SAMPLES = Path(__file__).resolve().parent / "samples"
BACKENDS = ("auto", "torch", "onnx")
#: Severity is scored for images the model reads as one of these.
SEVERITY_FOR = ("covid", "pneumonia")


@dataclass
class ScreeningResult:
    """One input's answer; probabilities are empty when the file failed or the gate flagged it."""

    path: str
    p_covid: float | None = None
    p_pneumonia: float | None = None
    p_normal: float | None = None
    prediction: str = ""
    threshold: float | None = None
    input_ok: bool = False
    #: The gate's verdict: "ok", "warning" (screened, with input_note saying what to check),
    #: "refused" (not screened), "" when the file could not be read.
    input_status: str = ""
    input_flags: list[str] = field(default_factory=list)
    input_note: str = ""
    input_scores: dict = field(default_factory=dict)
    error: str = ""
    severity_extent: float | None = None
    severity_opacity: float | None = None
    lung_mask: np.ndarray | None = field(default=None, repr=False)  # for outlines; not part of a row

    def as_row(self, labels: tuple[str, ...]) -> dict:
        row = {"path": self.path, "p_covid": _round(self.p_covid)}
        if "pneumonia" in labels:
            row["p_pneumonia"], row["p_normal"] = _round(self.p_pneumonia), _round(self.p_normal)
        row.update(prediction=self.prediction, threshold=_round(self.threshold), input_ok=self.input_ok,
                   input_status=self.input_status, input_flags=";".join(self.input_flags), input_note=self.input_note,
                   input_scores=" ".join(f"{k}={v}" for k, v in self.input_scores.items()),
                   severity_extent=_round(self.severity_extent, 2), severity_opacity=_round(self.severity_opacity, 2),
                   error=self.error)
        return row


def _round(value: float | None, digits: int = 6):
    return None if value is None else round(float(value), digits)


@dataclass
class ReadInput:
    """A decoded input with what the gate needs to know about its file."""

    name: str
    image: np.ndarray | None
    modality: str | None = None
    colourful: bool = False
    error: str = ""
    colourfulness: float | None = None
    hue_spread: float | None = None


def expand_inputs(items: Iterable[str]) -> list[str]:
    """Files as given, folders searched recursively for images, globs expanded; order kept."""
    found: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in item for ch in "*?[") and not path.exists():
            matches = sorted(glob.glob(item, recursive=True))
            found += matches if matches else [item]  # an empty glob becomes a row saying so
        else:
            found.append(item)
    return found


def read_input(path: str) -> ReadInput:
    """Read a file and the facts the gate uses (DICOM modality, colour), errors captured."""
    try:
        return _as_input(read_image_facts(path), path)  # checks the file's size before reading it
    except ImageReadError as exc:
        return ReadInput(path, None, error=str(exc))
    except OSError as exc:
        return ReadInput(path, None, error=f"{path}: cannot read file ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, it is this file's row, never the batch's end
        return ReadInput(path, None, error=f"{path}: cannot read it ({unexpected(exc)})")


def unexpected(exc: BaseException) -> str:
    """An exception nobody foresaw, in one short line: its type and the start of its message."""
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def read_bytes_input(data: bytes, name: str) -> ReadInput:
    """Decode an in-memory file (an upload): never written to disk; read exactly as a path is."""
    return _as_input(read_image_facts(data, name), name)


def _as_input(facts, name: str) -> ReadInput:
    from covidxray.imaging.gate import COLOURFUL_LIMIT

    return ReadInput(name, facts.image, facts.modality, facts.colourfulness > COLOURFUL_LIMIT,
                     colourfulness=facts.colourfulness, hue_spread=facts.hue_spread)


class Predictor:
    """A checkpoint (the bundled default unless named) with its gate, ready to screen files.

    backend "auto" runs the checkpoint's ONNX export by ONNX Runtime when the export is fresh
    (its sidecar records this checkpoint's sha256) and onnxruntime is installed, without
    importing torch; otherwise, or with backend "torch", the checkpoint itself by PyTorch.
    `info` holds the decision settings (threshold, temperature, labels, preprocessing) either
    way; `classifier`, the torch Classifier, is loaded on first use (heat maps need it).
    """

    def __init__(self, model: str | Path | None = None, use_gate: bool = True, backend: str = "auto",
                 severity: bool = True, gate_warnings: bool = True) -> None:
        from covidxray.onnx_models import OnnxClassifier, OnnxModelError

        if backend not in BACKENDS:
            raise CovidxrayError(f"backend '{backend}' unknown; use one of {', '.join(BACKENDS)}")
        self.model_path = Path(model) if model else DEFAULT_MODEL
        if not self.model_path.is_file():
            if model is None:
                raise CovidxrayError(f"{self.model_path}: the bundled model is missing from this installation; pass --model")
            raise CovidxrayError(f"{self.model_path}: checkpoint not found")
        self.use_gate = use_gate
        #: False: the gate only refuses; unusual but plausible radiographs are screened without a warning.
        self.gate_warnings = gate_warnings
        self.onnx = None
        #: Why the ONNX export was not used ("" when it was, or when backend is torch).
        self.onnx_note = ""
        self._classifier = None
        if backend in ("auto", "onnx"):
            try:
                self.onnx = OnnxClassifier.load(self.model_path)
            except OnnxModelError as exc:
                if backend == "onnx":
                    raise
                self.onnx_note = str(exc)
        self.backend = "onnx" if self.onnx is not None else "torch"
        self.info = self.onnx.info if self.onnx is not None else self.classifier
        self.labels = tuple(self.info.labels)
        self.severity = _bundled_severity() if severity else None
        self._lungs = None

    @property
    def classifier(self):
        """The torch Classifier of the checkpoint, loaded (with torch) on first use."""
        if self._classifier is None:
            from covidxray.training.checkpoint import load_checkpoint

            self._classifier = load_checkpoint(self.model_path)
        return self._classifier

    @property
    def name(self) -> str:
        return self.info.architecture

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (N, labels) for read images, by the chosen backend."""
        if self.onnx is None:
            return self.classifier.predict_proba(images)
        return self.onnx.predict_proba(images)

    def screen_read(self, inputs: list[ReadInput], gate_warnings: bool | None = None) -> list[ScreeningResult]:
        """Gate and model over already-read inputs, in one batch; gate_warnings overrides self.gate_warnings."""
        warn = self.gate_warnings if gate_warnings is None else gate_warnings
        from covidxray.imaging.gate import assess_input

        results = [ScreeningResult(path=i.name, threshold=self.info.threshold, error=i.error) for i in inputs]
        if self.use_gate and any(item.image is not None for item in inputs):
            from covidxray.imaging.gate import load_gate_model

            load_gate_model()  # a gate that cannot load is the installation's error (one line), not each input's
        ready = []
        for index, (item, result) in enumerate(zip(inputs, results)):
            if item.image is None:
                result.prediction = "error"
                continue
            if not np.isfinite(item.image).all():
                result.prediction, result.error = "error", f"{item.name}: image holds NaN or infinite values"
                continue
            if self.use_gate:
                try:
                    verdict = assess_input(item.image, modality=item.modality, is_colour_photo=item.colourful,
                                           colourfulness=item.colourfulness, hue_spread=item.hue_spread,
                                           warnings=warn)
                except Exception as exc:  # noqa: BLE001 - one input's failure is its row, the batch goes on
                    result.prediction, result.error = "error", f"{item.name}: input gate failed ({unexpected(exc)})"
                    continue
                result.input_ok, result.input_flags, result.input_note = verdict.ok, verdict.flags, verdict.reason
                result.input_status, result.input_scores = verdict.status, verdict.scores
                if not verdict.ok:
                    result.prediction = "not assessed"
                    continue
            else:
                result.input_ok, result.input_status, result.input_note = True, "ok", "input gate off"
            ready.append(index)
        for index, row in self._probabilities_each(inputs, results, ready):
            self._fill(results[index], row)
        if self.severity is not None:
            scored = [i for i in ready if results[i].prediction in SEVERITY_FOR]
            self._score_severity([(inputs[i].image, results[i]) for i in scored])
        return results

    def _probabilities_each(self, inputs: list[ReadInput], results: list[ScreeningResult],
                            ready: list[int]) -> list[tuple[int, np.ndarray]]:
        """(index, probabilities) for the ready inputs, in one batch; when the batch fails, one by
        one, so that the input at fault gets the error row and every other input its answer."""
        if not ready:
            return []
        try:
            return list(zip(ready, self.probabilities([inputs[i].image for i in ready])))
        except Exception:  # noqa: BLE001 - find the input at fault below
            pass
        answered = []
        for index in ready:
            try:
                answered.append((index, self.probabilities([inputs[index].image])[0]))
            except Exception as exc:  # noqa: BLE001 - this input's row says why; the others go on
                results[index].prediction = "error"
                results[index].error = f"{inputs[index].name}: the model cannot score it ({unexpected(exc)})"
                results[index].input_ok = False
        return answered

    def lungs(self):
        """The bundled lung segmenter (ONNX Runtime when its export is fresh), loaded on first use."""
        if self._lungs is None:
            from covidxray.imaging.lungs import bundled_segmenter

            self._lungs = bundled_segmenter()
        return self._lungs

    def lung_mask(self, image: np.ndarray, result: ScreeningResult | None = None) -> np.ndarray:
        """The lung mask of image, reusing the one severity scoring already found."""
        if result is not None and result.lung_mask is not None:
            return result.lung_mask
        return self.lungs().mask(image)

    def _score_severity(self, pairs: list[tuple[np.ndarray, ScreeningResult]]) -> None:
        """Severity for the pairs in one batch; when that fails, one by one, leaving empty the
        severity of an image it fails on (its probabilities stand)."""
        if not pairs:
            return
        try:
            masks = self.lungs().masks([image for image, _ in pairs])
            scores = [self.severity.predict(image, mask) for (image, _), mask in zip(pairs, masks)]
        except Exception:  # noqa: BLE001 - retried one by one below
            masks, scores = [], []
            for image, _ in pairs:
                try:
                    mask = self.lungs().mask(image)
                    masks.append(mask)
                    scores.append(self.severity.predict(image, mask))
                except Exception:  # noqa: BLE001 - no severity for this image, the row keeps its answer
                    masks.append(None)
                    scores.append((None, None))
        for (_, result), mask, (extent, opacity) in zip(pairs, masks, scores):
            result.lung_mask = mask
            result.severity_extent, result.severity_opacity = extent, opacity

    def _fill(self, result: ScreeningResult, proba: np.ndarray) -> None:
        values = dict(zip(self.labels, map(float, proba)))
        result.p_covid = values["covid"]
        result.p_pneumonia, result.p_normal = values.get("pneumonia"), values.get("normal")
        if self.info.task == "binary":
            result.prediction = "covid" if result.p_covid >= self.info.threshold else "not_covid"
        else:
            result.prediction = self.labels[int(np.argmax(proba))]

    def screen_paths(self, paths: list[str], batch_size: int = 16, workers: int = 2) -> Iterator[tuple[ScreeningResult, ReadInput]]:
        """Results in input order; files are decoded in threads while the model works."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, len(paths), batch_size):
                inputs = list(pool.map(read_input, paths[start:start + batch_size]))
                yield from zip(self.screen_read(inputs), inputs)

    def heatmap(self, image: np.ndarray, class_name: str | None = None) -> np.ndarray:
        """Grad-CAM map in [0, 1] for class_name (default: covid); needs torch, imported here."""
        from covidxray.explain.gradcam import gradcam_maps

        return gradcam_maps(self.classifier, [image], class_name or "covid")[0]


def _bundled_severity():
    """The bundled severity model, or None when this installation has no severity weights."""
    from covidxray.severity import SeverityModel

    try:
        return SeverityModel.load()
    except CovidxrayError:
        return None


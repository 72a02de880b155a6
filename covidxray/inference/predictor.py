"""Screen radiographs with a checkpoint: one result per input, never a crash.

Each input is read (PNG, JPEG, DICOM, bytes or an array), passed through the input gate, and given
calibrated probabilities by the classifier (ONNX Runtime when a fresh export sits beside the
checkpoint, else PyTorch; see covidxray.inference.classifier), then a severity score and, on
request, a heat map. Nothing here imports torch unless the torch backend or a heat map is needed.
Each input gets one ScreeningResult whose status says what happened (covidxray.inference.results):
screened or warned (scored), refused by the gate (no probability), or error (the others go on).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np

from covidxray.errors import CovidxrayError
from covidxray.paths.weights import WEIGHTS_DIR
from covidxray.inference.classifier import BACKENDS, Classifier, load_checkpoint, load_classifier
from covidxray.inference.decision import decide_labels
from covidxray.inference.inputs import (ReadInput, expand_inputs, read_array_input, read_bytes_input, read_in_batches,
                                        read_input, unexpected)
from covidxray.inference.results import GATE_STATUS, ScreeningError, ScreeningResult, Screenings, Status

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Predictor", "ReadInput", "ScreeningError", "ScreeningResult", "Screenings",
           "Status", "expand_inputs", "read_bytes_input", "read_input", "unexpected"]

DEFAULT_MODEL = WEIGHTS_DIR / "covidxray-default.pt"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
#: Severity is scored for images the model reads as one of these.
SEVERITY_FOR = ("covid", "pneumonia")


#: What Predictor.screen takes: a path, an in-memory file, or an image already read (2-D, float in [0, 1]).
Screenable = Union[str, "os.PathLike[str]", bytes, np.ndarray]


class Predictor:
    """A checkpoint (the bundled default unless named) with its gate, ready to screen inputs.

    backend "auto" runs the checkpoint's ONNX export by ONNX Runtime when the export is fresh
    (its sidecar records this checkpoint's sha256) and onnxruntime is installed, without
    importing torch; otherwise, or with backend "torch", the checkpoint itself by PyTorch.
    `info` holds the decision settings (threshold, temperature, labels, preprocessing) either
    way; `classifier`, the torch Classifier, is loaded on first use (heat maps need it).
    """

    def __init__(self, model: str | Path | None = None, use_gate: bool = True, backend: str = "auto",
                 severity: bool = True, gate_warnings: bool = True) -> None:
        self.model_path = Path(model) if model else DEFAULT_MODEL
        if not self.model_path.is_file():
            if model is None:
                raise CovidxrayError(f"{self.model_path}: the bundled model is missing from this installation; pass --model")
            raise CovidxrayError(f"{self.model_path}: checkpoint not found")
        self.use_gate = use_gate
        #: False: the gate only refuses; unusual but plausible radiographs are screened without a warning.
        self.gate_warnings = gate_warnings
        #: The classifier that scores (either backend); why the ONNX export was not used ("" when it was).
        self.model, self.onnx_note = load_classifier(self.model_path, backend)
        self.backend = self.model.backend.name
        self._classifier = self.model if self.backend == "torch" else None
        self.info = self.model.info
        self.labels = tuple(self.info.labels)
        from covidxray.lungs.severity import bundled_severity  # numpy only

        #: Severity: the bundled model fitted on this classifier's features when it is the bundled one, else lungs only.
        self.severity = bundled_severity(self.model_path) if severity else None
        self._lungs = None

    @property
    def classifier(self) -> Classifier:
        """The torch Classifier of the checkpoint, loaded (with torch) on first use."""
        if self._classifier is None:
            self._classifier = load_checkpoint(self.model_path)
            self._classifier.info = self.info  # one set of decision settings, whichever backend scores
        return self._classifier

    @property
    def name(self) -> str:
        return self.info.architecture

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (N, labels) for read images, by the chosen backend."""
        return self.model.predict_proba(images)

    def scores(self, images: list[np.ndarray],
               lung_masks: list[np.ndarray | None] | None = None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(calibrated probabilities, penultimate features or None) of each read image, in one pass."""
        logits, features = self.model.outputs(images, lung_masks=lung_masks)
        proba = self.model.calibrated(logits)
        return [(row, None if features is None else features[number]) for number, row in enumerate(proba)]

    # --- the Python API -------------------------------------------------------------------

    def screen(self, inputs: Screenable | Sequence[Screenable], heatmaps: bool = False, batch_size: int = 16,
               gate_warnings: bool | None = None, raise_on_error: bool = False) -> Screenings:
        """Screen paths, in-memory files (bytes) and read images (2-D float arrays in [0, 1]).

        A bad input gets status error and its message, and the others are screened; read
        `result.status` (or `results.errors`) before the probabilities.

        Args:
            inputs: one input or a sequence of them.
            heatmaps: add each scored result's Grad-CAM map (`result.heatmap`).
            batch_size: inputs scored together.
            gate_warnings: override the predictor's setting (False: the gate only refuses).
            raise_on_error: raise ScreeningError, naming every failed input, after screening them all.

        Returns:
            Screenings: one ScreeningResult per input, in order.
        """
        results = Screenings(self.screen_iter(inputs, heatmaps, batch_size, gate_warnings), self.labels)
        if raise_on_error and results.errors:
            raise ScreeningError(results.errors, results)
        return results

    def screen_iter(self, inputs: Screenable | Iterable[Screenable], heatmaps: bool = False, batch_size: int = 16,
                    gate_warnings: bool | None = None, raise_on_error: bool = False) -> Iterator[ScreeningResult]:
        """screen(), one result at a time, taking inputs from an iterable only as they are needed:
        memory stays flat however many inputs there are (a generator of arrays included).
        raise_on_error raises ScreeningError at the first input that could not be screened."""
        items = [inputs] if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray)) else inputs
        for result, item in self._screened(enumerate(items), batch_size, 2, _read_any, gate_warnings):
            if raise_on_error and result.status is Status.ERROR:
                raise ScreeningError([result])
            if heatmaps and result.status.scored:
                self.add_heatmap(result, item.image)
            if result.severity_extent is None:
                result.lung_mask = None  # a lung crop's mask, a full-size array per input: kept only beside a severity
            yield result

    def add_heatmap(self, result: ScreeningResult, image: np.ndarray) -> None:
        """Put the heat map of the decided class (covid unless a label was decided) in result."""
        try:
            result.heatmap = self.heatmap(image, self.heatmap_class(result), result)
        except Exception as exc:  # noqa: BLE001 - the result says the map failed; its answer stands
            result.error = f"{result.path}: heat map not made ({unexpected(exc)})"

    def heatmap_class(self, result: ScreeningResult) -> str:
        """The class a heat map explains: the decided label, covid when none was decided."""
        return result.prediction if result.prediction in self.labels else "covid"

    # --- the engine -------------------------------------------------------------------------

    def screen_read(self, inputs: list[ReadInput], gate_warnings: bool | None = None) -> list[ScreeningResult]:
        """Gate and model over already-read inputs, in one batch; gate_warnings overrides self.gate_warnings."""
        warn = self.gate_warnings if gate_warnings is None else gate_warnings
        from covidxray.gate.runtime import assess_input

        results = [ScreeningResult(path=i.name, threshold=self.info.threshold, error=i.error or "") for i in inputs]
        if self.use_gate and any(item.image is not None for item in inputs):
            from covidxray.gate.runtime import load_gate_model

            load_gate_model()  # a gate that cannot load is the installation's error (one line), not each input's
        ready = []
        for index, (item, result) in enumerate(zip(inputs, results)):
            if item.image is None:
                result.failed(result.error or f"{item.name}: cannot read it")
                continue
            if not np.isfinite(item.image).all():
                result.failed(f"{item.name}: image holds NaN or infinite values")
                continue
            if self.use_gate:
                try:
                    verdict = assess_input(item.image, modality=item.modality, is_colour_photo=item.colourful,
                                           colourfulness=item.colourfulness, hue_spread=item.hue_spread,
                                           hounsfield_range=item.hounsfield_range, warnings=warn)
                except Exception as exc:  # noqa: BLE001 - one input's failure is its row, the batch goes on
                    result.failed(f"{item.name}: input gate failed ({unexpected(exc)})")
                    continue
                result.status = GATE_STATUS[verdict.status]
                result.input_flags, result.input_note, result.input_scores = verdict.flags, verdict.reason, verdict.scores
                if result.status is Status.REFUSED:
                    continue
            else:
                result.status, result.input_note = Status.SCREENED, "input gate off"
            ready.append(index)
        if self.info.preprocessing.reads_lungs:  # lung crop: one batched segmentation, reused by severity
            self._find_lungs([inputs[i].image for i in ready], [results[i] for i in ready])
        features = {}  # the classifier's penultimate features, which a tied severity model reads
        for index, (row, image_features) in self._scores_each(inputs, results, ready):
            self._fill(results[index], row)
            features[index] = image_features
        if self.severity is not None:
            scored = [i for i in ready if results[i].prediction in SEVERITY_FOR]
            self._score_severity([(inputs[i].image, results[i], features.get(i)) for i in scored])
        return results

    def _scores_each(self, inputs: list[ReadInput], results: list[ScreeningResult],
                     ready: list[int]) -> list[tuple[int, tuple[np.ndarray, np.ndarray | None]]]:
        """(index, (probabilities, features)) for the ready inputs, in one batch; when the batch fails,
        one by one, so that the input at fault gets the error row and every other input its answer."""
        if not ready:
            return []
        masks = [results[i].lung_mask for i in ready]
        try:
            return list(zip(ready, self.scores([inputs[i].image for i in ready], masks)))
        except Exception:  # noqa: BLE001 - find the input at fault below
            pass
        answered = []
        for index, mask in zip(ready, masks):
            try:
                answered.append((index, self.scores([inputs[index].image], [mask])[0]))
            except Exception as exc:  # noqa: BLE001 - this input's row says why; the others go on
                results[index].failed(f"{inputs[index].name}: the model cannot score it ({unexpected(exc)})")
        return answered

    def lungs(self):
        """The bundled lung segmenter (ONNX Runtime when its export is fresh), loaded on first use."""
        if self._lungs is None:
            from covidxray.lungs.segmenter import bundled_segmenter

            self._lungs = bundled_segmenter()
        return self._lungs

    def _find_lungs(self, images: list[np.ndarray], results: list[ScreeningResult]) -> None:
        """Put each image's lung mask in its result, in one batch, where the result has none yet; on a
        failure the masks stay empty, and whoever needs one finds it image by image."""
        missing = [number for number, result in enumerate(results) if result.lung_mask is None]
        if not missing:
            return
        try:
            masks = self.lungs().masks([images[number] for number in missing])
        except Exception:  # noqa: BLE001 - left to the image-by-image path
            return
        for number, mask in zip(missing, masks):
            results[number].lung_mask = mask

    def lung_mask(self, image: np.ndarray, result: ScreeningResult | None = None) -> np.ndarray:
        """The lung mask of image, reusing the one result already holds (severity's, a lung crop's), and
        keeping one found here in result, so a heat map and its outline segment the image once."""
        if result is not None and result.lung_mask is not None:
            return result.lung_mask
        mask = self.lungs().mask(image)
        if result is not None:
            result.lung_mask = mask
        return mask

    def _score_severity(self, triples: list[tuple[np.ndarray, ScreeningResult, np.ndarray | None]]) -> None:
        """Severity for (image, result, classifier features) in one batch; when that fails, one by one,
        leaving empty the severity of an image it fails on (its probabilities stand)."""
        if not triples:
            return
        self._find_lungs([image for image, _, _ in triples], [result for _, result, _ in triples])
        try:
            masks = [result.lung_mask for _, result, _ in triples]
            scores = [self.severity.predict(image, mask, features) for (image, _, features), mask in zip(triples, masks)]
        except Exception:  # noqa: BLE001 - retried one by one below
            masks, scores = [], []
            for image, result, features in triples:
                try:
                    mask = self.lung_mask(image, result)
                    masks.append(mask)
                    scores.append(self.severity.predict(image, mask, features))
                except Exception:  # noqa: BLE001 - no severity for this image, the row keeps its answer
                    masks.append(None)
                    scores.append((None, None))
        for (_, result, _), mask, (extent, opacity) in zip(triples, masks, scores):
            result.lung_mask = mask
            result.severity_extent, result.severity_opacity = extent, opacity

    def _fill(self, result: ScreeningResult, proba: np.ndarray) -> None:
        values = dict(zip(self.labels, map(float, proba)))
        result.p_covid = values["covid"]
        result.p_pneumonia, result.p_normal = values.get("pneumonia"), values.get("normal")
        result.prediction = decide_labels(np.asarray(proba)[None], self.labels, self.info.threshold)[0]

    def screen_paths(self, paths: Sequence[str], batch_size: int = 16, workers: int = 2,
                     gate_warnings: bool | None = None) -> Iterator[tuple[ScreeningResult, ReadInput]]:
        """(result, read input) in input order; files are decoded in threads while the model works."""
        return self._screened(paths, batch_size, workers, read_input, gate_warnings)

    def _screened(self, items: Iterable, batch_size: int, workers: int, reader,
                  gate_warnings: bool | None) -> Iterator[tuple[ScreeningResult, ReadInput]]:
        """The one read-then-screen loop: items read by reader in batches, each batch gated and scored."""
        for inputs in read_in_batches(items, batch_size, workers, reader):
            yield from zip(self.screen_read(inputs, gate_warnings), inputs)

    def heatmap(self, image: np.ndarray, class_name: str | None = None,
                result: ScreeningResult | None = None) -> np.ndarray:
        """The Grad-CAM map in [0, 1] of class_name (default: covid), placed on image at its size.

        From the ONNX graph's class activation maps when the export has them (no torch: for xray-cnn's
        pooled-linear head they are Grad-CAM), else by torch Grad-CAM. A lung-crop model's map covers the
        lung box it saw (result's lung mask, found here when result has none), and 0 elsewhere.
        """
        from covidxray.explain.cam import class_map, on_image

        name = class_name or "covid"
        preprocessing = self.info.preprocessing
        mask = self.lung_mask(image, result) if preprocessing.reads_lungs else None
        if getattr(self.model.backend, "has_class_maps", False):
            maps = self.model.class_maps([image], lung_masks=[mask])[0]
            heat = class_map(maps, self.info.task, self.labels, name, preprocessing.size)
        else:
            from covidxray.explain.gradcam import gradcam_maps

            heat = gradcam_maps(self.classifier, [image], name)[0]
        return on_image(heat, image.shape, preprocessing, mask)


def _read_any(numbered: tuple[int, Screenable]) -> ReadInput:
    """Read one input of Predictor.screen, whatever its kind; bytes and arrays are named by position."""
    number, item = numbered
    if isinstance(item, np.ndarray):
        return read_array_input(item, f"array[{number}]")
    if isinstance(item, (bytes, bytearray, memoryview)):
        name = f"bytes[{number}]"
        try:
            return read_bytes_input(bytes(item), name)
        except Exception as exc:  # noqa: BLE001 - this input's result says why
            return ReadInput(name, None, error=str(exc) if isinstance(exc, CovidxrayError) else f"{name}: cannot read it ({unexpected(exc)})")
    if isinstance(item, (str, os.PathLike)):
        return read_input(os.fspath(item))
    return ReadInput(f"input[{number}]", None, error=f"input[{number}]: cannot screen a {type(item).__name__}; "
                     "give a path, the bytes of a file, or a 2-D float array in [0, 1]")

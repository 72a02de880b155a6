"""One classifier, two backends: a checkpoint run by PyTorch or its fresh ONNX export by ONNX Runtime.

The settings that decide an answer (ModelInfo, covidxray.inference.checkpoint: preprocessing,
labels, threshold, calibration) are the same whichever backend runs the network. The door check
(float greyscale in [0, 1]) runs once per image, here, before preprocessing; the backends only map
prepared batches to logits and to the penultimate features the decision is made from (the
severity model reads them too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from covidxray.errors import CovidxrayError
from covidxray.imaging.preprocess import IntensityRangeError, check_intensity, prepare_checked
from covidxray.inference.calibration import probabilities
from covidxray.inference.checkpoint import ModelInfo  # the settings (one home: ModelInfo.settings); named here too
from covidxray.inference.decision import decide_labels
from covidxray.models.outputs import output_width

BACKENDS = ("auto", "torch", "onnx")


class Backend(Protocol):
    """Maps a prepared batch (N, 1, S, S) float32 in [0, 1] to (logits (N, outputs), penultimate
    features (N, D), or None from an ONNX export made before exports carried them)."""

    name: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


def penultimate_layer(network):
    """The network's last Linear layer; its input is the representation the decision is made from."""
    from torch import nn

    linears = [module for module in network.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError("the network has no Linear layer")
    return linears[-1]


class TorchBackend:
    """The checkpoint's Screener by PyTorch (the door's conversion, then the network)."""

    name = "torch"

    def __init__(self, screener) -> None:
        self.screener = screener.eval()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self.screener.eval()  # Grad-CAM or a training step may have left it in training mode
        captured = []
        hook = penultimate_layer(self.screener.network).register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0].detach().flatten(1)))
        try:
            with torch.no_grad():  # the range was checked at the classifier's door; convert and run
                logits = self.screener.network(self.screener.door.convert(torch.from_numpy(batch))).numpy()
        finally:
            hook.remove()
        return logits, captured[-1].numpy()


class OnnxBackend:
    """The fresh ONNX export of a checkpoint by ONNX Runtime; imports neither torch nor MONAI."""

    name = "onnx"

    def __init__(self, session, path: Path) -> None:
        self.session, self.path = session, path

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = self.session.run(self._names[:2], {"image": batch})
        return outputs[0], outputs[1] if len(outputs) > 1 else None

    @property
    def _names(self) -> list[str]:
        return [output.name for output in self.session.get_outputs()]

    @property
    def has_class_maps(self) -> bool:
        """True when the export outputs class activation maps (heat maps without torch)."""
        return "class_maps" in self._names

    def class_maps(self, batch: np.ndarray) -> np.ndarray:
        """(N, outputs, h, w) class activation maps of a prepared batch (only that part of the graph runs)."""
        return self.session.run(["class_maps"], {"image": batch})[0]


def _setting(name: str) -> property:
    """An attribute of the classifier that is its ModelInfo's, read and written there."""
    return property(lambda self: getattr(self.info, name), lambda self, value: setattr(self.info, name, value))


class Classifier:
    """A trained model ready to predict: predict_proba takes read radiographs (2-D float arrays in
    [0, 1], any size) and returns calibrated probabilities (N, len(labels))."""

    def __init__(self, info: ModelInfo, backend: Backend, path: Path | None = None) -> None:
        self.info, self.backend, self.path = info, backend, path

    # the settings, as attributes (a Classifier reads like its checkpoint; a test may move the threshold)
    preprocessing = _setting("preprocessing")
    task = _setting("task")
    labels = _setting("labels")
    threshold = _setting("threshold")
    temperature = _setting("temperature")
    bias = _setting("bias")
    architecture = _setting("architecture")
    record = _setting("record")

    @property
    def screener(self):
        """The torch Screener (heat maps, features, distillation); only the torch backend has one."""
        if not isinstance(self.backend, TorchBackend):
            raise AttributeError("an ONNX classifier has no torch screener; load it with backend='torch'")
        return self.backend.screener

    def prepare(self, images: Sequence[np.ndarray], first: int = 0,
                lung_masks: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """The door check on each image, then the checkpoint's preprocessing.

        Args:
            images: 2-D float [0, 1] images.
            first: number of the first image, in errors.
            lung_masks: the images' lung masks when the caller has them, which spares a lung-reading
                preprocessing finding them again.

        Returns:
            (N, 1, S, S) float32.
        """
        batch = []
        for offset, image in enumerate(images):
            number = first + offset
            image = np.asarray(image)
            check_intensity(image, f"image {number}")
            if image.ndim != 2:
                raise IntensityRangeError(f"image {number}: expected a 2-D greyscale image, got shape {tuple(image.shape)}")
            batch.append(prepare_checked(image, self.preprocessing, lung_masks[offset] if lung_masks else None))
        return np.stack(batch)[:, None].astype(np.float32, copy=False)

    def outputs(self, images: Sequence[np.ndarray], batch_size: int = 32,
                lung_masks: Sequence[np.ndarray | None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and penultimate features of read images, in batches.

        Args:
            images: 2-D float [0, 1] images.
            batch_size: images per backend call.
            lung_masks: the images' lung masks when the caller has them.

        Returns:
            (logits (N, outputs), penultimate features (N, D) or None when the backend's export lacks them).
        """
        pairs = [self.backend.run(self.prepare(images[start:start + batch_size], start,
                                               lung_masks[start:start + batch_size] if lung_masks else None))
                 for start in range(0, len(images), batch_size)]
        if not pairs:
            return np.zeros((0, output_width(self.task, self.labels)), dtype=np.float32), None
        features = [pair[1] for pair in pairs]
        return (np.concatenate([pair[0] for pair in pairs]),
                None if any(f is None for f in features) else np.concatenate(features))

    def class_maps(self, images: Sequence[np.ndarray], lung_masks: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """(N, outputs, h, w) class activation maps of read images; only an ONNX export that has them
        (covidxray.explain.cam turns them into heat maps)."""
        if not getattr(self.backend, "has_class_maps", False):
            raise AttributeError("this classifier gives no class activation maps; heat maps need torch Grad-CAM")
        return self.backend.class_maps(self.prepare(images, lung_masks=lung_masks))

    def logits(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.outputs(images, batch_size)[0]

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one column per label (binary: not_covid, covid), from logits."""
        return probabilities(logits, self.task, self.temperature, self.bias)

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities, one column per label (binary: not_covid, covid)."""
        return self.calibrated(self.logits(images))

    def p_covid(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba(images)[:, self.labels.index("covid")]

    def decide(self, proba: np.ndarray) -> list[str]:
        """Binary: 'covid' where p(covid) >= the validation threshold; 3class: the most probable label."""
        return decide_labels(proba, self.labels, self.threshold)

    def predict(self, images: Sequence[np.ndarray]) -> list[str]:
        return self.decide(self.predict_proba(images))


def load_checkpoint(path: str | Path) -> Classifier:
    """The checkpoint at path as a torch Classifier (CPU)."""
    from covidxray.inference.checkpoint import build_screener, read_checkpoint

    content = read_checkpoint(path)
    info = ModelInfo.from_meta(content)
    screener = build_screener(content["architecture"], content["architecture_kwargs"], output_width(info.task, info.labels),
                              info.preprocessing)
    screener.load_state_dict(content["state_dict"])
    return Classifier(info, TorchBackend(screener), Path(path))


def load_onnx(checkpoint: str | Path, onnx_path: str | Path | None = None) -> Classifier:
    """The fresh ONNX export of checkpoint; OnnxModelError saying why when there is none."""
    from covidxray.inference.onnx_files import inference_session, read_fresh_sidecar

    path, meta = read_fresh_sidecar(checkpoint, "classifier", onnx_path)
    return Classifier(ModelInfo.from_meta(meta), OnnxBackend(inference_session(path), path), Path(checkpoint))


def load_classifier(path: str | Path, backend: str = "auto") -> tuple[Classifier, str]:
    """(classifier, why the ONNX export was not used, or ""): "auto" takes the fresh ONNX export
    when there is one and onnxruntime is installed, else the checkpoint by PyTorch."""
    from covidxray.inference.onnx_files import OnnxModelError

    if backend not in BACKENDS:
        raise CovidxrayError(f"backend '{backend}' unknown; use one of {', '.join(BACKENDS)}")
    note = ""
    if backend in ("auto", "onnx"):
        try:
            return load_onnx(path), ""
        except OnnxModelError as exc:
            if backend == "onnx":
                raise
            note = str(exc)
    return load_checkpoint(path), note

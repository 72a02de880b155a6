"""Export a checkpoint's network, and the lung U-Net, to ONNX for fast inference with ONNX Runtime.

The classifier graph takes (N, 1, S, S) float images in [0, 1] already prepared as the
checkpoint's Preprocessing says (prepare_array), and returns logits and the penultimate features
(the severity model fitted on the bundled classifier reads them), and, for a network whose head is
global average pooling and a linear layer (xray-cnn), the class activation maps that are its Grad-CAM
(checked against torch Grad-CAM at export; heat maps then need no torch); the intensity check and
calibration stay in Python, so both backends answer alike. The lung graph takes the U-Net's
standardised (N, 1, size, size) input and returns lung logits; resizing and mask cleaning stay in
numpy (covidxray.lungs.segmenter.OnnxLungSegmenter).

Each export is checked against torch on the bundled samples and random inputs, then a JSON sidecar
(covidxray.inference.onnx_files) records the settings inference needs and the sha256 of the .pt, so a
later change of the .pt makes the export stale and predict falls back to torch.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from covidxray.errors import CovidxrayError
from covidxray.inference.classifier import Classifier, OnnxBackend, load_checkpoint, penultimate_layer
from covidxray.inference.onnx_files import onnx_path_for, sidecar_path, write_sidecar
from covidxray.models.class_maps import cam_linear, class_activation_maps

#: Largest |p_torch - p_onnx| accepted for the classifier, and per lung-probability pixel.
TOLERANCE = 1e-4
#: Largest |feature_torch - feature_onnx| accepted for the classifier's penultimate features.
FEATURE_TOLERANCE = 1e-3
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


class _ExportableScreener(nn.Module):
    """The screener's door transforms (standardise, repeat channels) and network, without the
    data-dependent range check, which cannot be traced into a graph; (logits, penultimate features),
    and for a pooled-linear head the class activation maps (N, outputs, h, w) too."""

    def __init__(self, screener: nn.Module) -> None:
        super().__init__()
        self.door = screener.door
        self.network = screener.network
        self.linear = cam_linear(self.network)

    @property
    def output_names(self) -> list[str]:
        return ["logits", "features"] + (["class_maps"] if self.linear is not None else [])

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        converted = self.door.convert(batch)
        if self.linear is not None:
            maps = self.network.features(converted)
            logits = self.network.head(maps)
            return logits, maps.mean(dim=(2, 3)), class_activation_maps(self.linear, maps)
        captured = []
        hook = penultimate_layer(self.network).register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0].flatten(1)))
        try:
            logits = self.network(converted)
        finally:
            hook.remove()
        return logits, captured[-1]


def sample_images() -> list[np.ndarray]:
    """The bundled sample radiographs, read as predict reads them (the export's check images)."""
    from covidxray.imaging.read import read_image

    return [read_image(path) for path in sorted(SAMPLES.iterdir()) if path.suffix.lower() in (".png", ".jpg", ".jpeg")]


def _export_graph(model: nn.Module, example: torch.Tensor, out: Path, output_names: list[str]) -> None:
    """Trace model to out (atomically), batch axis dynamic; float32 weights that float16 holds
    exactly (a float16 checkpoint's) are stored as float16 and cast back in the graph: half the
    file, the same numbers. Batch norms stay separate nodes (TrainingMode.PRESERVE of an eval
    model), so their weights stay exact too; ONNX Runtime fuses them when it loads the file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer notes are not for users
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (example,), temporary, input_names=["image"], output_names=output_names,
                              dynamic_axes={"image": {0: "batch"}, **{name: {0: "batch"} for name in output_names}}, opset_version=17,
                              dynamo=False, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        _store_exact_float16(Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _store_exact_float16(path: Path) -> None:
    """Store float32 initializers that are exactly float16 values as float16 plus a Cast node."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        return
    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype == np.float32 and values.size > 16 and np.array_equal(values.astype(np.float16).astype(np.float32), values):
            half = numpy_helper.from_array(values.astype(np.float16), initializer.name + "__float16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [initializer.name], to=onnx.TensorProto.FLOAT,
                                          name=initializer.name + "__cast"))
        else:
            kept.append(initializer)
    if not casts:
        return
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))


def _forget_sidecar(onnx_path: Path) -> None:
    """Remove an old sidecar first, so an interrupted export is never taken as fresh."""
    side = sidecar_path(onnx_path)
    if side.exists():
        side.unlink()


def export_onnx(checkpoint: Path, out: Path | None = None, check_images: int = 4) -> tuple[Path, float]:
    """Write the classifier's ONNX model and sidecar (default: beside the checkpoint) and return
    (path, max |Δp|) over the bundled samples and random inputs; CovidxrayError above 1e-4."""
    checkpoint = Path(checkpoint)
    classifier = load_checkpoint(checkpoint)
    out = Path(out) if out else onnx_path_for(checkpoint)
    _forget_sidecar(out)
    size = classifier.preprocessing.size
    model = _ExportableScreener(classifier.screener).eval()
    _export_graph(model, torch.rand(2, 1, size, size), out, model.output_names)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise CovidxrayError(f"{out}: written, but onnxruntime is not installed to check it against torch; "
                             "install it and export again") from None
    from covidxray.inference.onnx_files import inference_session

    exported = Classifier(classifier.info, OnnxBackend(inference_session(out), out), checkpoint)
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(check_images, 1, size, size, generator=generator)
    with torch.no_grad():
        expected_logits, expected_features = (output.numpy() for output in model(batch)[:2])
    got_logits, got_features = exported.backend.run(batch.numpy())
    difference = float(np.abs(classifier.calibrated(expected_logits) - classifier.calibrated(got_logits)).max())
    feature_difference = float(np.abs(expected_features - got_features).max())
    images = sample_images()
    if images:
        (torch_logits, torch_features), (onnx_logits, onnx_features) = classifier.outputs(images), exported.outputs(images)
        difference = max(difference, float(np.abs(classifier.calibrated(torch_logits) - classifier.calibrated(onnx_logits)).max()))
        feature_difference = max(feature_difference, float(np.abs(torch_features - onnx_features).max()))
    if difference > TOLERANCE:
        raise CovidxrayError(f"{out}: ONNX probabilities differ from PyTorch by {difference:.2e} (> {TOLERANCE:g}); no sidecar written")
    if feature_difference > FEATURE_TOLERANCE:
        raise CovidxrayError(f"{out}: ONNX penultimate features differ from PyTorch by {feature_difference:.2e} "
                             f"(> {FEATURE_TOLERANCE:g}); no sidecar written")
    if model.linear is not None:
        _check_heat_maps(classifier, exported, images or [batch[0, 0].numpy()], out)
    write_sidecar(out, checkpoint, "classifier", classifier.info.as_meta())
    return out, difference


#: Largest |map_torch - map_onnx| accepted, as a share of the torch map's largest value.
HEAT_TOLERANCE = 1e-3


def _check_heat_maps(classifier: Classifier, exported: Classifier, images: list[np.ndarray], out: Path) -> float:
    """The graph's class activation maps against torch Grad-CAM for every class, before upsampling: for a
    pooled-linear head, Grad-CAM's weights are the head's weights over h x w, so ReLU(map) / (h w) is it."""
    from covidxray.explain.cam import class_evidence
    from covidxray.explain.gradcam import gradcam_activation_maps

    maps = exported.class_maps(images)
    cells = maps.shape[-1] * maps.shape[-2]
    worst = 0.0
    for class_name in classifier.labels:
        ours = [class_evidence(image_maps, classifier.task, classifier.labels, class_name) / cells for image_maps in maps]
        for got, expected in zip(ours, gradcam_activation_maps(classifier, images, class_name)):
            scale = max(float(np.abs(expected).max()), float(np.abs(got).max()), 1e-12)
            worst = max(worst, float(np.abs(got - expected).max()) / scale)
    if worst > HEAT_TOLERANCE:
        raise CovidxrayError(f"{out}: class activation maps of the ONNX graph differ from torch Grad-CAM by "
                             f"{worst:.2e} of their peak (> {HEAT_TOLERANCE:g}); no sidecar written")
    return worst


class _ExportableUNet(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch)


def export_lungs_onnx(weights: Path | None = None, out: Path | None = None) -> tuple[Path, int]:
    """Write the lung U-Net's ONNX model and sidecar (default: beside the weights, bundled unless
    named) and return (path, mask pixels that differ from torch's on the check images).

    CovidxrayError when any lung probability differs by more than 1e-4 from torch's."""
    from covidxray.lungs.segmenter import DEFAULT_WEIGHTS, LungSegmenter, OnnxLungSegmenter
    from covidxray.inference.onnx_files import inference_session

    weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    segmenter = LungSegmenter.load(weights)
    out = Path(out) if out else onnx_path_for(weights)
    _forget_sidecar(out)
    side = segmenter.settings.size
    _export_graph(_ExportableUNet(segmenter.network), torch.randn(2, 1, side, side), out, ["logits"])
    exported = OnnxLungSegmenter(inference_session(out), segmenter.settings, segmenter.record, out)
    rows = np.linspace(0.1, 0.9, 300, dtype=np.float32)
    synthetic = np.clip(np.outer(rows, rows[::-1]) * 1.4, 0, 1)
    images = sample_images() + [synthetic]
    expected, got = segmenter.probabilities(images), exported.probabilities(images)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if difference > TOLERANCE:
        raise CovidxrayError(f"{out}: ONNX lung probabilities differ from PyTorch by {difference:.2e} (> {TOLERANCE:g}); "
                             "no sidecar written")
    flipped = sum(int((a != b).sum()) for a, b in zip(segmenter.masks(images), exported.masks(images)))
    write_sidecar(out, weights, "lungs", {"settings": segmenter.settings.as_dict(), "record": segmenter.record})
    return out, flipped

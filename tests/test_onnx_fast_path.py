"""The ONNX Runtime fast path of `covidxray predict`: shipped exports that agree with torch, a
sidecar that makes stale exports fall back to torch, and a start-up that never imports torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from covidxray.cli import main
from covidxray.errors import CovidxrayError
from covidxray.lungs.segmenter import DEFAULT_ONNX, DEFAULT_WEIGHTS, LungSegmenter, OnnxLungSegmenter, best_segmenter
from covidxray.imaging.read import read_image
from covidxray.inference.onnx_files import OnnxModelError, read_fresh_sidecar, sidecar_path
from covidxray.inference.predictor import DEFAULT_MODEL, SAMPLES, Predictor, expand_inputs, read_input
from covidxray.lungs.severity import SeverityModel

ROOT = Path(__file__).resolve().parents[1]
COVID_SAMPLE = SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg"
#: Images of several sizes and sources from the real data, besides the bundled samples.
REAL_IMAGES = (
    "covid-chestxray-dataset/images/BMJ-37-163-g1.jpg",
    "covid-chestxray-dataset/images/7-fatal-covid19.jpg",
    "covid-chestxray-dataset/images/covid-19-rapidly-progressive-acute-respiratory-distress-syndrome-ards-admission.jpg",
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_onnxruntime_is_a_normal_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.replace(" ", "").startswith("onnxruntime") for d in project["dependencies"])


def test_shipped_exports_are_fresh_small_and_carry_the_checkpoint_settings():
    import torch

    onnx_path, meta = read_fresh_sidecar(DEFAULT_MODEL, "classifier")
    assert onnx_path == DEFAULT_MODEL.with_suffix(".onnx") and onnx_path.stat().st_size < 5_000_000
    saved = torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)
    for key in ("architecture", "preprocessing", "task", "labels", "threshold", "temperature", "record"):
        assert meta[key] == saved[key], key
    lungs_path, lungs_meta = read_fresh_sidecar(DEFAULT_WEIGHTS, "lungs")
    assert lungs_path == DEFAULT_ONNX and lungs_path.stat().st_size < 1_000_000
    assert lungs_meta["settings"] == torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)["settings"]


def test_bundled_classifier_export_agrees_with_torch_on_samples_and_real_images(data_dir):
    paths = expand_inputs([str(SAMPLES)]) + [str(data_dir / name) for name in REAL_IMAGES]
    onnx = Predictor(backend="onnx", use_gate=False)
    assert onnx.backend == "onnx" and onnx._classifier is None  # torch's checkpoint never loaded
    p_onnx = [r.p_covid for r, _ in onnx.screen_paths(paths)]
    p_torch = [r.p_covid for r, _ in Predictor(backend="torch", use_gate=False).screen_paths(paths)]
    assert np.abs(np.array(p_torch) - np.array(p_onnx)).max() < 1e-4


def test_bundled_lung_export_gives_the_same_masks_and_severity(data_dir):
    torch_lungs, onnx_lungs = LungSegmenter.load(), OnnxLungSegmenter.load()
    images = [read_image(p) for p in expand_inputs([str(SAMPLES)])] + [read_image(data_dir / n) for n in REAL_IMAGES]
    assert len({image.shape for image in images}) >= 3
    expected, got = torch_lungs.probabilities(images), onnx_lungs.probabilities(images)
    severity = SeverityModel.load()
    for image, p_torch, p_onnx, m_torch, m_onnx in zip(images, expected, got, torch_lungs.masks(images), onnx_lungs.masks(images)):
        assert p_onnx.shape == image.shape and np.abs(p_torch - p_onnx).max() < 1e-4
        # the same mask, but for pixels whose probability is within numerical noise of the threshold
        undecided = np.abs(p_torch - torch_lungs.settings.threshold) < 1e-4
        assert m_torch.any() and not ((m_torch != m_onnx) & ~undecided).any()
        assert (m_torch != m_onnx).sum() <= 2
        assert np.allclose(severity.predict(image, m_torch), severity.predict(image, m_onnx), atol=0.01)


def test_bundled_segmenter_is_the_onnx_one_when_its_export_is_fresh():
    from covidxray.lungs.segmenter import bundled_segmenter

    assert isinstance(bundled_segmenter(), OnnxLungSegmenter)
    assert isinstance(Predictor(use_gate=False).lungs(), OnnxLungSegmenter)


def test_predict_on_a_covid_read_image_never_imports_torch_monai_or_pandas(tmp_path):
    out = tmp_path / "out.json"
    result = run_python(f"""
import sys
from covidxray.cli import main
status = main(["predict", {str(COVID_SAMPLE)!r}, "--output", {str(out)!r}])
heavy = sorted(m for m in ("torch", "monai", "pandas", "matplotlib", "sklearn") if m in sys.modules)
print("HEAVY", heavy, "STATUS", status)
""")
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] STATUS 0" in result.stdout, result.stdout + result.stderr
    assert "(onnx)" in result.stdout and "severity_extent" in result.stdout
    answer = json.loads(out.read_text())["results"][0]
    assert answer["prediction"] == "covid" and answer["severity_extent"] is not None


def test_without_onnxruntime_everything_runs_by_torch_with_the_same_answers():
    code = f"""
import sys
sys.modules["onnxruntime"] = None  # as if it were not installed: importing it raises ImportError
from covidxray.lungs.segmenter import LungSegmenter, bundled_segmenter
from covidxray.inference.predictor import Predictor
predictor = Predictor()
result = [r for r, _ in predictor.screen_paths([{str(COVID_SAMPLE)!r}])][0]
assert predictor.backend == "torch" and "onnxruntime is not installed" in predictor.onnx_note
assert type(bundled_segmenter()) is LungSegmenter
print("ANSWER", result.p_covid, result.severity_extent, result.severity_opacity)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    p_covid, extent, opacity = map(float, result.stdout.split("ANSWER")[1].split())
    fast = [r for r, _ in Predictor().screen_paths([str(COVID_SAMPLE)])][0]
    assert abs(fast.p_covid - p_covid) < 1e-4
    assert round(fast.severity_extent, 2) == round(extent, 2) and round(fast.severity_opacity, 2) == round(opacity, 2)


def test_stale_or_tampered_classifier_export_falls_back_to_torch(tiny_model, real_png, tmp_path):
    import torch

    checkpoint = tmp_path / "model.pt"
    shutil.copy(tiny_model[0], checkpoint)
    assert main(["export", "--onnx", "--model", str(checkpoint)]) == 0
    sidecar = json.loads(sidecar_path(checkpoint.with_suffix(".onnx")).read_text())
    assert sidecar["source"] == "model.pt" and sidecar["meta"]["labels"] == ["not_covid", "covid"]
    fresh = Predictor(checkpoint, use_gate=False)
    assert fresh.backend == "onnx" and fresh.info.threshold == pytest.approx(sidecar["meta"]["threshold"])

    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    content["threshold"] = 1.01  # a retrained or recalibrated .pt: the export no longer says what it says
    torch.save(content, checkpoint)
    stale = Predictor(checkpoint, use_gate=False)
    assert stale.backend == "torch" and "stale" in stale.onnx_note and stale.info.threshold == 1.01
    assert [r for r, _ in stale.screen_paths([str(real_png)])][0].prediction == "not_covid"
    with pytest.raises(CovidxrayError, match="stale"):
        Predictor(checkpoint, backend="onnx")

    assert main(["export", "--onnx", "--model", str(checkpoint)]) == 0
    assert Predictor(checkpoint).backend == "onnx"
    onnx_file = checkpoint.with_suffix(".onnx")
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    assert "changed since export" in Predictor(checkpoint).onnx_note
    sidecar_path(onnx_file).unlink()
    assert Predictor(checkpoint).backend == "torch"
    result = subprocess.run([sys.executable, "-m", "covidxray", "predict", str(real_png), "--model", str(checkpoint),
                             "--backend", "onnx"], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "no sidecar" in result.stderr and "Traceback" not in result.stderr


def test_stale_lung_export_falls_back_to_the_torch_segmenter(tmp_path):
    import torch

    weights = tmp_path / "lungs.pt"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    with pytest.raises(OnnxModelError, match="no ONNX model"):
        OnnxLungSegmenter.load(weights)
    assert type(best_segmenter(weights)) is LungSegmenter
    from covidxray.inference.export import export_lungs_onnx

    path, flipped = export_lungs_onnx(weights)
    assert path == weights.with_suffix(".onnx") and flipped <= 2
    assert isinstance(best_segmenter(weights), OnnxLungSegmenter)
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    saved["settings"]["threshold"] = 0.7
    torch.save(saved, weights)
    with pytest.raises(OnnxModelError, match="stale"):
        OnnxLungSegmenter.load(weights)
    segmenter = best_segmenter(weights)
    assert type(segmenter) is LungSegmenter and segmenter.settings.threshold == 0.7


def test_heatmaps_with_the_fast_path_need_no_torch_classifier(tmp_path):
    predictor = Predictor(use_gate=False)
    assert predictor.backend == "onnx" and predictor._classifier is None
    item = read_input(str(COVID_SAMPLE))
    result = predictor.screen_read([item])[0]
    heat = predictor.heatmap(item.image, result.prediction, result)
    assert predictor._classifier is None and heat.shape == item.image.shape and heat.min() >= 0 and heat.max() <= 1
    assert main(["predict", str(COVID_SAMPLE), "--heatmaps", str(tmp_path / "maps")]) == 0
    assert len(list((tmp_path / "maps").glob("*.png"))) == 1


def test_importing_the_numpy_preprocessing_does_not_import_torch():
    result = run_python("import sys, numpy as np\n"
                        "from covidxray.imaging.preprocess import Preprocessing, check_intensity, prepare_array\n"
                        "check_intensity(np.zeros((4, 4), np.float32))\n"
                        "prepare_array(np.zeros((40, 40), np.float32), Preprocessing(size=16))\n"
                        "assert 'torch' not in sys.modules\n"
                        "from covidxray.imaging.preprocess_torch import Screener, ModelInput\n"
                        "assert 'torch' in sys.modules\n")
    assert result.returncode == 0, result.stderr

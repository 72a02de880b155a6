"""`covidxray predict` as a user runs it: every input form, every broken form, exit status, ONNX."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidxray.cli import main
from covidxray.predict import Predictor, expand_inputs, read_input
from tests.test_read_image import png_header_only


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model[0], use_gate=False, backend="torch")


def test_image_forms_of_one_radiograph_get_the_same_answer(predictor, real_png, tmp_path):
    grey = Image.open(real_png).convert("L")
    forms = {"grey.png": grey, "rgb.png": grey.convert("RGB"), "rgba.png": grey.convert("RGBA"),
             "palette.png": grey.convert("P"), "sixteen.png": Image.fromarray(np.asarray(grey, np.uint16) * 257),
             "grey.jpg": grey}
    for name, image in forms.items():
        image.save(tmp_path / name, **({"quality": 95} if name.endswith(".jpg") else {}))
    results = [r for r, _ in predictor.screen_paths([str(tmp_path / n) for n in forms])]
    p = np.array([r.p_covid for r in results])
    assert not any(r.error for r in results)
    assert np.abs(p - p[0]).max() < 0.02


def test_broken_inputs_get_rows_with_reasons_and_the_rest_go_on(predictor, real_png, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a jpeg")
    (tmp_path / "random.dcm").write_bytes(np.random.default_rng(0).bytes(2000))
    (tmp_path / "cut.png").write_bytes(real_png.read_bytes()[:500])
    png_header_only(tmp_path / "bomb.png", 40000, 40000)
    names = ["empty.png", "text.jpg", "random.dcm", "cut.png", "bomb.png"]
    paths = [str(tmp_path / n) for n in names] + [str(real_png)]
    results = [r for r, _ in predictor.screen_paths(paths)]
    reasons = {n: r.error for n, r in zip(names, results)}
    assert "empty" in reasons["empty.png"]
    assert "not a JPEG" in reasons["text.jpg"]
    assert "not a DICOM file" in reasons["random.dcm"]
    assert "truncated" in reasons["cut.png"]
    assert "over the limit" in reasons["bomb.png"]
    assert all(r.p_covid is None and r.prediction == "error" for r in results[:5])
    assert results[5].error == "" and 0 <= results[5].p_covid <= 1


def test_cli_writes_csv_and_json_and_exit_status_says_if_any_input_failed(tiny_model, real_png, tmp_path):
    checkpoint = str(tiny_model[0])
    assert main(["predict", str(real_png), "--model", checkpoint, "--no-gate", "--output", str(tmp_path / "r.csv")]) == 0
    rows = pd.read_csv(tmp_path / "r.csv")
    assert list(rows.columns[:4]) == ["path", "p_covid", "prediction", "threshold"] and rows["error"].isna().all()
    (tmp_path / "bad.png").write_bytes(b"")
    code = main(["predict", str(real_png), str(tmp_path / "bad.png"), "--model", checkpoint, "--no-gate",
                 "--output", str(tmp_path / "r.json"), "--heatmaps", str(tmp_path / "maps")])
    assert code == 1
    document = json.loads((tmp_path / "r.json").read_text())
    assert "not a medical device" in document["notice"] and len(document["results"]) == 2
    assert document["results"][1]["error"].endswith("file is empty (0 bytes)")
    maps = list((tmp_path / "maps").glob("*.png"))
    assert len(maps) == 1 and Image.open(maps[0]).size == Image.open(real_png).size


def test_folders_and_globs_expand(real_png, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.png", "a/b/two.png", "a/notes.txt"):
        (tmp_path / name).write_bytes(real_png.read_bytes())
    assert sorted(p.split("/")[-1] for p in expand_inputs([str(tmp_path / "a")])) == ["one.png", "two.png"]
    assert len(expand_inputs([str(tmp_path / "a" / "*.png")])) == 1
    assert read_input(str(tmp_path / "missing.png")).error.endswith("file not found")


def test_onnx_export_gives_the_same_probabilities(tiny_model, real_png, real_jpeg, tmp_path):
    pytest.importorskip("onnxruntime")
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(tiny_model[0].read_bytes())
    assert main(["export", "--onnx", "--model", str(checkpoint)]) == 0
    torch_predictor = Predictor(checkpoint, use_gate=False, backend="torch")
    onnx_predictor = Predictor(checkpoint, use_gate=False, backend="onnx")
    assert onnx_predictor.backend == "onnx"
    paths = [str(real_png), str(real_jpeg)]
    p_torch = [r.p_covid for r, _ in torch_predictor.screen_paths(paths)]
    p_onnx = [r.p_covid for r, _ in onnx_predictor.screen_paths(paths)]
    assert np.abs(np.array(p_torch) - np.array(p_onnx)).max() < 1e-4


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "covidxray", "predict", "x.png", "--model", str(tmp_path / "no.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "checkpoint not found" in result.stderr and "Traceback" not in result.stderr


def test_severity_is_scored_only_for_images_read_as_covid_and_outline_drawn(tiny_model, real_jpeg, tmp_path):
    pytest.importorskip("covidxray.severity")
    predictor = Predictor(tiny_model[0], use_gate=False, backend="torch")
    if predictor.severity is None:
        pytest.skip("no bundled severity weights in this installation")
    item = read_input(str(real_jpeg))
    predictor.classifier.threshold = -0.01  # every image is read as covid
    covid = predictor.screen_read([item])[0]
    assert covid.prediction == "covid"
    assert 0 <= covid.severity_extent <= 8 and 0 <= covid.severity_opacity <= 6
    assert covid.lung_mask.shape == item.image.shape and covid.lung_mask.any()
    row = covid.as_row(predictor.labels)
    assert row["severity_extent"] == round(covid.severity_extent, 2)
    predictor.classifier.threshold = 1.01  # no image is read as covid
    other = predictor.screen_read([item])[0]
    assert other.prediction == "not_covid" and other.severity_extent is None and other.as_row(predictor.labels)["severity_opacity"] is None
    from covidxray.explain.overlay import OUTLINE_RGB, overlay

    picture = np.asarray(overlay(item.image, np.zeros((8, 8)), lung_mask=covid.lung_mask))
    cyan = np.all(picture == (np.array(OUTLINE_RGB) * 255).round().astype(np.uint8), axis=-1)
    from scipy import ndimage

    from covidxray.imaging.lungs import lung_outline

    near_boundary = ndimage.binary_dilation(lung_outline(covid.lung_mask), iterations=2)
    assert cyan.sum() > 100 and not (cyan & ~near_boundary).any()

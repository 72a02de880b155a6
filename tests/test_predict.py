"""`covidxray predict` as a user runs it: every input form, every broken form, exit status, ONNX."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidxray.cli import main
from covidxray.inference.predictor import Predictor, expand_inputs, read_input
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
    assert all(r.p_covid is None and r.status == "error" and r.prediction is None for r in results[:5])
    assert results[5].error == "" and 0 <= results[5].p_covid <= 1


def test_cli_writes_csv_and_json_and_exit_status_says_if_any_input_failed(tiny_model, real_png, tmp_path):
    checkpoint = str(tiny_model[0])
    assert main(["predict", str(real_png), "--model", checkpoint, "--no-gate", "--output", str(tmp_path / "r.csv")]) == 0
    rows = pd.read_csv(tmp_path / "r.csv")
    assert list(rows.columns[:5]) == ["path", "status", "p_covid", "prediction", "threshold"] and rows["error"].isna().all()
    (tmp_path / "bad.png").write_bytes(b"")
    code = main(["predict", str(real_png), str(tmp_path / "bad.png"), "--model", checkpoint, "--no-gate",
                 "--output", str(tmp_path / "r.json"), "--heatmaps", str(tmp_path / "maps")])
    assert code == 1
    document = json.loads((tmp_path / "r.json").read_text())
    assert "not a medical device" in document["notice"] and len(document["results"]) == 2
    assert document["results"][1]["error"].endswith("file is empty (0 bytes)")
    maps = list((tmp_path / "maps").glob("*.png"))
    width, height = Image.open(real_png).size  # the map at the radiograph's size, a caption below it
    assert len(maps) == 1 and Image.open(maps[0]).width >= width and Image.open(maps[0]).height > height


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
    pytest.importorskip("covidxray.lungs.severity")
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

    from covidxray.lungs.segmenter import lung_outline

    near_boundary = ndimage.binary_dilation(lung_outline(covid.lung_mask), iterations=2)
    assert cyan.sum() > 100 and not (cyan & ~near_boundary).any()


# ---- hostile and odd inputs (issue #17): one bad file never loses the batch ----

def test_an_exception_nobody_foresaw_becomes_that_inputs_row(predictor, real_png, tmp_path, monkeypatch):
    import covidxray.inference.inputs as predict_module

    odd = tmp_path / "odd.png"
    odd.write_bytes(real_png.read_bytes())
    real_reader = predict_module.read_image_facts

    def reader(source, *args, **kwargs):
        if str(source) == str(odd):
            raise RuntimeError("decoder exploded\nwith a second line")
        return real_reader(source, *args, **kwargs)

    monkeypatch.setattr(predict_module, "read_image_facts", reader)
    results = [r for r, _ in predictor.screen_paths([str(real_png), str(odd), str(real_png)])]
    assert results[1].status == "error" and results[1].p_covid is None
    assert results[1].error == f"{odd}: cannot read it (RuntimeError: decoder exploded with a second line)"
    assert all(r.error == "" and 0 <= r.p_covid <= 1 for r in (results[0], results[2]))


def test_a_scoring_failure_of_one_image_leaves_the_others_their_answers(predictor, real_png, tmp_path, monkeypatch):
    items = [read_input(str(real_png)) for _ in range(3)]
    items[1].image = items[1].image[:40, :40].copy()
    real = predictor.scores

    def scores(images, lung_masks=None):
        if any(image.shape == (40, 40) for image in images):
            raise ValueError("cannot score this one")
        return real(images, lung_masks)

    monkeypatch.setattr(predictor, "scores", scores)
    results = predictor.screen_read(items)
    assert results[1].status == "error" and "the model cannot score it (ValueError: cannot score this one)" in results[1].error
    assert [r.error for r in (results[0], results[2])] == ["", ""] and results[0].p_covid == pytest.approx(results[2].p_covid)


def test_nan_image_without_the_gate_is_its_own_row_and_the_csv_is_whole(tiny_model, real_png, tmp_path, monkeypatch, capsys):
    import covidxray.inference.inputs as predict_module

    bad = tmp_path / "nan.png"
    bad.write_bytes(real_png.read_bytes())
    real_reader = predict_module.read_image_facts

    def reader(source, *args, **kwargs):
        facts = real_reader(source, *args, **kwargs)
        if str(source) == str(bad):
            facts.image[0, 0], facts.image[1, 1] = np.nan, np.inf  # the reader's own fresh array
        return facts

    monkeypatch.setattr(predict_module, "read_image_facts", reader)
    out = tmp_path / "out" / "r.csv"
    code = main(["predict", str(real_png), str(bad), "--model", str(tiny_model[0]), "--no-gate", "--output", str(out)])
    assert code == 1, capsys.readouterr().err
    rows = pd.read_csv(out)
    assert len(rows) == 2 and rows["error"].iloc[1] == f"{bad}: image holds NaN or infinite values"
    assert 0 <= rows["p_covid"].iloc[0] <= 1


def test_odd_file_names_keep_csv_and_heat_maps_whole(tiny_model, real_png, tmp_path):
    import os

    folder = tmp_path / "odd"
    folder.mkdir()
    undecodable = os.fsdecode(b"caf\xe9-\xff.png")  # not valid UTF-8: arrives as surrogate escapes
    long_name = "x" * 250 + ".png"  # 254 bytes, the longest a file system allows is 255
    for name in (undecodable, long_name, "plain.png"):
        (folder / name).write_bytes(real_png.read_bytes())
    out, maps = tmp_path / "r.csv", tmp_path / "maps"
    code = main(["predict", str(folder), "--model", str(tiny_model[0]), "--no-gate", "--output", str(out), "--heatmaps", str(maps)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    rows = pd.read_csv(out)
    assert len(rows) == 3 and rows["error"].isna().all() and "caf\\xe9-\\xff.png" in text
    names = sorted(p.name for p in maps.iterdir())
    assert len(names) == 3 and all(len(n.encode()) <= 255 for n in names), names
    document = tmp_path / "r.json"
    assert main(["predict", str(folder / undecodable), "--model", str(tiny_model[0]), "--no-gate", "--output", str(document)]) == 0
    assert json.loads(document.read_text())["results"][0]["path"].endswith("caf\\xe9-\\xff.png")


def test_outputs_over_inputs_or_into_their_folder_are_refused_before_any_work(tiny_model, real_png, tmp_path, capsys):
    import hashlib

    folder = tmp_path / "scans"
    folder.mkdir()
    image = folder / "chest.png"
    image.write_bytes(real_png.read_bytes())
    (folder / "0000-chest.png").write_bytes(real_png.read_bytes())  # named like the heat map of chest.png
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    link = tmp_path / "link"
    link.symlink_to(folder)
    cases = [
        (["--output", str(image)], "--output must end in .csv, .json"),
        (["--heatmaps", str(folder)], "refusing to write the heat maps inside the input folder"),
        (["--heatmaps", str(link)], "refusing to write the heat maps inside the input folder"),
        (["--heatmaps", str(folder / "maps")], "refusing to write the heat maps inside the input folder"),
        (["--output", str(folder / "r.csv")], "refusing to write the results inside the input folder"),
    ]
    for extra, message in cases:
        capsys.readouterr()
        assert main(["predict", str(folder), "--model", str(tiny_model[0]), "--no-gate", *extra]) == 2, extra
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, (extra, error)
    copy = tmp_path / "copy.csv"
    copy.write_text("not an image")
    assert main(["predict", str(image), str(copy), "--model", str(tiny_model[0]), "--no-gate", "--output", str(copy)]) == 2
    assert "refusing to write the results over an input" in capsys.readouterr().err
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before


def test_predict_leaves_no_onnx_runtime_files_in_home(tmp_path):
    pytest.importorskip("onnxruntime")
    from covidxray.inference.predictor import SAMPLES

    environment = {key: value for key, value in __import__("os").environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    environment.update(HOME=str(tmp_path / "home"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    result = subprocess.run([sys.executable, "-m", "covidxray", "predict", str(SAMPLES / "normal-nih-00001280_004.png"), "--no-gate"],
                            capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "onnx" in result.stdout
    written = [str(p) for p in (tmp_path / "home").rglob("*") if p.is_file()] if (tmp_path / "home").exists() else []
    assert written == [], written

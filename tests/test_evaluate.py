"""`covidxray evaluate` on a real (small) trained checkpoint: sections, numbers, reproducibility, threshold."""

import json

import pandas as pd
import pytest

from covidxray.cli import main
from covidxray.evaluation.model_card import README_END, README_START, yardstick_section
from covidxray.inference.classifier import load_checkpoint


@pytest.fixture(scope="module")
def trained(tiny_model):
    return tiny_model


def evaluate(checkpoint, split, out, *extra):
    code = main(["evaluate", str(checkpoint), "--split", str(split), "--out", str(out), "--resamples", "100", *extra])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_report_has_every_section_and_the_numbers_of_metrics_json(trained, tmp_path):
    checkpoint, split = trained
    metrics = evaluate(checkpoint, split, tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    for section in ("research tool, not a medical device", "<h3>Metrics</h3>", "<h3>Per source</h3>", "ROC and precision-recall",
                    "Confusion matrix", "Calibration", "Shortcut audits", "Grad-CAM", "Training curves of the run",
                    "Published figures (not comparable)"):
        assert section in page, section
    assert page.count("data:image/png;base64,") >= 5 and "http" not in page.split("<body>")[1].split("Published")[0]
    test = metrics["parts"]["test"]
    auroc = test["metrics"]["roc_auc"]
    assert f"{auroc['value']:.3f} [{auroc['ci_low']:.3f}, {auroc['ci_high']:.3f}] (n={auroc['n']})" in page
    assert auroc["ci_low"] <= auroc["value"] <= auroc["ci_high"]
    assert test["n_images"] == 24 and set(test["per_source"]) == {"alpha", "beta"}
    assert sum(map(sum, test["confusion"])) == 24
    lungs = test["audits"]["lungs"]  # no hand masks here: the bundled segmenter supplies every mask
    assert lungs["applicable"] and lungs["segmenter_masks"] == 24 and lungs["hand_masks"] == 0
    assert 0 <= lungs["lungs_hidden"]["value"] <= 1 and 0 <= lungs["lungs_only"]["value"] <= 1
    predictions = pd.read_csv(tmp_path / "report" / "predictions-test.csv")
    assert len(predictions) == 24 and set(predictions["prediction"]) <= {"covid", "not_covid"}
    assert (tmp_path / "report" / "summary.md").read_text().count("roc_auc") >= 2


def test_same_command_same_numbers(trained, tmp_path):
    checkpoint, split = trained
    first = evaluate(checkpoint, split, tmp_path / "a", "--no-audits")
    second = evaluate(checkpoint, split, tmp_path / "b", "--no-audits")
    assert first["parts"] == second["parts"]


def test_threshold_comes_from_the_checkpoint_not_the_evaluated_part(trained, tmp_path):
    checkpoint, split = trained
    threshold = load_checkpoint(checkpoint).threshold
    table = pd.read_csv(split, dtype=str, keep_default_na=False)
    flipped = table.copy()
    test = flipped["split"] == "test"
    flipped.loc[test, "label"] = flipped.loc[test, "label"].map({"covid": "normal", "normal": "covid", "pneumonia": "covid"})
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    original = evaluate(checkpoint, split, tmp_path / "orig", "--no-audits")
    changed = evaluate(checkpoint, tmp_path / "flipped.csv", tmp_path / "flip", "--no-audits")
    assert original["model"]["threshold"] == changed["model"]["threshold"] == threshold
    # same probabilities, same decisions: only the truth moved
    a = pd.read_csv(tmp_path / "orig" / "predictions-test.csv")
    b = pd.read_csv(tmp_path / "flip" / "predictions-test.csv")
    assert (a["prediction"] == b["prediction"]).all()


def test_val_part_is_marked_optimistic_and_bad_part_is_a_clear_error(trained, tmp_path):
    checkpoint, split = trained
    metrics = evaluate(checkpoint, split, tmp_path / "val", "--part", "val", "--no-audits")
    assert any("optimistic" in note for note in metrics["parts"]["val"]["notes"])
    assert main(["evaluate", str(checkpoint), "--split", str(split), "--part", "external", "--out", str(tmp_path / "x")]) == 2


def test_model_card_tells_the_teacher_the_device_and_how_it_was_run(trained, tmp_path):
    checkpoint, split = trained
    evaluate(checkpoint, split, tmp_path / "report", "--no-audits")
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    document["model"]["training_record"].update(
        device="cuda", epochs=40, best_epoch=37,
        distillation={"architecture": "densenet121", "sha256": "ab" * 32, "input_size": 224, "weight": 0.9, "temperature": 2.0})
    document["model"]["preprocessing"]["lung_crop"] = True
    (tmp_path / "report" / "metrics.json").write_text(json.dumps(document))
    card = tmp_path / "MODEL_CARD.md"
    readme = tmp_path / "README.md"
    readme.write_text(f"# tool\n\n{README_START}\nold figures\n{README_END}\n\n## Data\n")
    assert main(["model-card", "--internal", str(tmp_path / "report"), "--how", "PACK=p.npz scripts/train_on_gpu.sh list.txt",
                 "--how", "INTERNAL_RUN=a.pt bash release.sh", "--out", str(card), "--readme", str(readme)]) == 0
    text = card.read_text()
    size = document["model"]["preprocessing"]["size"]
    assert f"- input: {size} px" in text and "cut to the bundled segmenter's lung box" in text
    copied = readme.read_text()
    assert "old figures" not in copied and copied.endswith("\n\n## Data\n")
    assert yardstick_section(text) in copied and "| model | contrast |" in copied
    readme.write_text("# a README without the block\n")
    assert main(["model-card", "--internal", str(tmp_path / "report"), "--out", str(card), "--readme", str(readme)]) == 2
    assert readme.read_text() == "# a README without the block\n"
    fresh = tmp_path / "fresh.md"  # a README that is missing, or the card itself: refused before anything is written
    assert main(["model-card", "--internal", str(tmp_path / "report"), "--out", str(fresh), "--readme", str(tmp_path / "no.md")]) == 2
    assert main(["model-card", "--internal", str(tmp_path / "report"), "--out", str(fresh), "--readme", str(fresh)]) == 2
    assert not fresh.exists()
    assert "trained on `cuda`; kept the weights of epoch 37 of 40 planned" in text
    assert "distilled from a `densenet121` teacher trained on the same split (checkpoint sha256 abababababab" in text
    assert "loss weight 0.9" in text
    reproduce = text.split("## Reproduce")[1]
    assert reproduce.index("train_on_gpu.sh list.txt") < reproduce.index("INTERNAL_RUN=a.pt bash release.sh")


def test_evaluate_from_python_gives_the_figures_of_the_cli(trained, tmp_path):
    from covidxray.evaluation import Evaluation
    from covidxray.evaluation import evaluate as evaluate_checkpoint

    checkpoint, split = trained
    cli = evaluate(checkpoint, split, tmp_path / "cli", "--part", "test", "--part", "val", "--no-audits")
    result = evaluate_checkpoint(checkpoint, split, part=["test", "val"], audits=False, resamples=100)
    assert isinstance(result, Evaluation) and list(result.parts) == ["test", "val"] and result.files == {}
    assert json.loads(json.dumps(result.as_dict()["parts"])) == cli["parts"]
    test = result.parts["test"]
    assert test.overall["roc_auc"].value == cli["parts"]["test"]["metrics"]["roc_auc"]["value"] and test.n_images == 24
    written = evaluate_checkpoint(str(checkpoint), str(split), out=tmp_path / "python", audits=False, resamples=100)
    assert set(written.files) == {"html", "summary", "metrics", "predictions-test"}
    assert all(path.is_file() and path.parent == tmp_path / "python" for path in written.files.values())
    document = json.loads(written.files["metrics"].read_text())
    assert document["parts"]["test"] == cli["parts"]["test"]


def test_the_calibration_bias_is_stored_under_one_key_and_old_files_still_read(trained, tmp_path):
    from covidxray.evaluation.model_card import write_model_card
    from covidxray.inference.checkpoint import ModelInfo, read_checkpoint

    checkpoint, split = trained
    content = read_checkpoint(checkpoint)
    info = ModelInfo.from_meta(content)
    assert "logit_bias" in content and "bias" not in content
    assert info.as_meta() == {**info.settings(), "record": info.record} and "bias" not in info.settings()
    metrics = evaluate(checkpoint, split, tmp_path / "report", "--no-audits")
    assert metrics["model"]["logit_bias"] == info.bias and "bias" not in metrics["model"]
    assert {key: metrics["model"][key] for key in info.settings()} == json.loads(json.dumps(info.settings()))
    old = {**info.settings(), "record": {}}  # an ONNX sidecar or report written before: "bias"
    old["bias"] = old.pop("logit_bias") + 0.25
    assert ModelInfo.from_meta(old).bias == info.bias + 0.25
    metrics["model"]["bias"] = metrics["model"].pop("logit_bias") + 0.25
    (tmp_path / "report" / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(tmp_path / "card.md", tmp_path / "report", None, [])
    assert f"logit bias {info.bias + 0.25:+.3f}" in card.read_text()


def test_without_out_the_report_goes_under_the_ignored_reports_folder(trained, tmp_path, monkeypatch):
    """Issue #25: the default was `report/`, which .gitignore (`/reports/`) did not leave out."""
    from pathlib import Path

    checkpoint, split = trained
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(checkpoint), "--split", str(split), "--resamples", "20", "--no-audits"]) == 0
    folder = tmp_path / "reports" / f"{Path(checkpoint).resolve().parent.name}-{Path(checkpoint).stem}"
    assert (folder / "report.html").is_file() and not (tmp_path / "report").exists()
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    assert "/reports/" in ignored


def test_the_yardstick_benchmark_helps_every_option_and_asks_for_make_prepare(tmp_path):
    """Issue #25: benchmarks/generalisation.py run before `make prepare` says so, in one line."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "generalisation.py"
    sys.path.insert(0, str(script.parent))
    try:
        import generalisation
    finally:
        sys.path.remove(str(script.parent))
    options = [action for action in generalisation.build_parser()._actions if action.option_strings]
    assert options and all(action.help for action in options), [a.option_strings for a in options if not a.help]
    result = subprocess.run([sys.executable, str(script), "--split", str(tmp_path / "prepared" / "split.csv")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'prepared' / 'split.csv'}: split not found; run `make prepare` first (it writes "
        "prepared/split.csv and prepared/split-loso.csv), or name one with --split"]

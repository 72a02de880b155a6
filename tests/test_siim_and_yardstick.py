"""The fourth collection (SIIM, both layouts), its grade mapping and conflicts, and the within-hospital yardstick."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidxray.cli import main
from covidxray.data.conflicts import prefer_graded_copies
from covidxray.data.labels import SIIM_GRADES, label_siim_grade
from covidxray.data.manifest import build_manifest, scan_roots
from covidxray.data.sources import detect_layout, read_source
from covidxray.evaluation import yardstick
from tests import dicom_factory

ROOT = Path(__file__).resolve().parents[1]

SIIM = Path(__file__).resolve().parents[2] / "shared" / "data" / "siim-covid19-detection"


def _study_tables(root: Path, studies: dict[str, str], images: dict[str, tuple[str, str]]) -> None:
    """Write SIIM's two tables: studies {study: grade}, images {image: (study, 'opacity ...' or 'none ...')}."""
    with open(root / "train_study_level.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *SIIM_GRADES])
        for study, grade in studies.items():
            writer.writerow([f"{study}_study", *[int(g == grade) for g in SIIM_GRADES]])
    with open(root / "train_image_level.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "boxes", "label", "StudyInstanceUID"])
        for image, (study, label) in images.items():
            writer.writerow([f"{image}_image", "", label, study])


@pytest.fixture(scope="module")
def mini_siim(tmp_path_factory) -> Path:
    """SIIM in its redistributed layout: one real image per grade (two for Typical: a two-image study)."""
    if not SIIM.is_dir():
        pytest.skip("SIIM data not found")
    studies = {row["id"].removesuffix("_study"): next(g for g in SIIM_GRADES if row[g] == "1")
               for row in csv.DictReader(open(SIIM / "train_study_level.csv"))}
    by_study: dict[str, list[dict]] = {}
    for row in csv.DictReader(open(SIIM / "train_image_level.csv")):
        by_study.setdefault(row["StudyInstanceUID"], []).append(row)
    two_image_typical = next(s for s, rows in sorted(by_study.items()) if len(rows) == 2 and studies[s] == "Typical Appearance")
    chosen = {two_image_typical: by_study[two_image_typical]}
    for grade in SIIM_GRADES[0], SIIM_GRADES[2], SIIM_GRADES[3]:
        study = next(s for s, rows in sorted(by_study.items()) if len(rows) == 1 and studies[s] == grade)
        chosen[study] = by_study[study]
    studies_kept = {study: studies[study] for study in chosen}
    images = {row["id"].removesuffix("_image"): (study, row["label"]) for study, rows in chosen.items() for row in rows}
    root = tmp_path_factory.mktemp("siim") / "siim-covid19-detection"
    (root / "train").mkdir(parents=True)
    for image in images:
        shutil.copy(SIIM / "train" / f"{image}.jpg", root / "train")
    _study_tables(root, studies_kept, images)
    return root


def test_grade_mapping_typical_covid_negative_normal_uncertain_excluded_unless_asked():
    assert label_siim_grade("Typical Appearance") == ("covid", "")
    assert label_siim_grade("Negative for Pneumonia") == ("normal", "")
    for grade in ("Indeterminate Appearance", "Atypical Appearance"):
        label, reason = label_siim_grade(grade)
        assert label == "" and grade in reason
        assert label_siim_grade(grade, include_uncertain=True) == ("covid", "")


def test_siim_copy_layout_read_by_study_with_grades_and_opacity(mini_siim):
    assert detect_layout(mini_siim) == "siim-covid19-detection"
    rows = read_source(mini_siim)
    assert len(rows) == 5 and all(Path(r["path"]).is_file() for r in rows)
    by_grade = {}
    for row in rows:
        by_grade.setdefault(row["finding"], []).append(row)
        assert row["patient_id"] == f"siim:{row['study_id']}" and row["source"] == "siim-covid19-detection"
    assert {r["label"] for r in by_grade["Typical Appearance"]} == {"covid"}
    assert {r["label"] for r in by_grade["Negative for Pneumonia"]} == {"normal"}
    assert by_grade["Indeterminate Appearance"][0]["label"] == "" and by_grade["Atypical Appearance"][0]["exclusion"]
    assert {r["opacity"] for r in rows} <= {"0", "1"}
    kept = read_source(mini_siim, siim_uncertain=True)
    assert sum(r["label"] == "covid" for r in kept) == 4


def test_siim_competition_layout_of_dicoms(tmp_path, real_png):
    from covidxray.imaging.read import read_image

    pixels = (read_image(real_png) * 255).astype(np.uint8)
    root = tmp_path / "siim-covid19-detection"
    images = {}
    for study, series, image, view in (("s1", "r1", "i1", "PA"), ("s1", "r1", "i2", "LL"), ("s2", "r9", "i3", "AP")):
        folder = root / "train" / study / series
        folder.mkdir(parents=True, exist_ok=True)
        dataset = dicom_factory.radiograph_dataset(pixels, modality="CR")
        dataset.ViewPosition = view
        dicom_factory.save(dataset, folder / f"{image}.dcm")
        images[image] = (study, "none 1 0 0 1 1")
    _study_tables(root, {"s1": "Typical Appearance", "s2": "Negative for Pneumonia"}, images)
    rows = {Path(r["path"]).stem: r for r in read_source(root)}
    assert set(rows) == {"i1", "i2", "i3"}
    assert rows["i1"]["path"].endswith("train/s1/r1/i1.dcm") and rows["i1"]["label"] == "covid"
    assert (rows["i1"]["view"], rows["i2"]["view"], rows["i3"]["view"]) == ("PA", "L", "AP")
    assert rows["i3"]["label"] == "normal" and rows["i1"]["modality"] == "X-ray"
    assert rows["i1"]["patient_id"] == rows["i2"]["patient_id"] == "siim:s1"
    assert read_image(rows["i3"]["path"]).shape == pixels.shape


def test_a_study_table_with_two_grades_on_one_study_is_named(tmp_path):
    _study_tables(tmp_path, {"s1": "Typical Appearance"}, {"i1": ("s1", "none")})
    text = (tmp_path / "train_study_level.csv").read_text().replace("s1_study,0,1,0,0", "s1_study,1,1,0,0")
    (tmp_path / "train_study_level.csv").write_text(text)
    assert main(["data", "manifest", str(tmp_path), "--out", str(tmp_path.parent / "m.csv")]) != 0


def test_manifest_names_each_folder_it_skips(mini_siim, tmp_path, capsys):
    parent = tmp_path / "data"
    parent.mkdir()
    (parent / "siim-covid19-detection").symlink_to(mini_siim)
    (parent / "notes-from-the-lab").mkdir()
    (parent / "notes-from-the-lab" / "readme.txt").write_text("not a dataset")
    scan = scan_roots([parent])
    assert [p.name for p in scan.datasets] == ["siim-covid19-detection"]
    assert [p.name for p, _ in scan.skipped] == ["notes-from-the-lab"]
    assert main(["data", "manifest", str(parent), "--out", str(tmp_path / "manifest.csv")]) == 0
    captured = capsys.readouterr()
    printed = "".join((captured.out + captured.err).split())  # rich wraps long lines
    assert "skipped" in printed and "notes-from-the-lab" in printed
    assert "TypicalAppearance" in printed  # counts per grade and label are printed


def test_a_grade_outranks_a_conflicting_copy_in_another_collection():
    manifest = pd.DataFrame({
        "path": ["siim/a.jpg", "radiography/COVID/x.png", "siim/b.jpg", "radiography/COVID/y.png", "nih/z.png"],
        "source": ["siim-covid19-detection", "covid19-radiography-database", "siim-covid19-detection",
                   "covid19-radiography-database", "darkcovidnet"],
        "finding": ["Negative for Pneumonia", "COVID", "Typical Appearance", "COVID", "No_findings"],
        "label": ["normal", "covid", "covid", "covid", "normal"],
        "exclusion": [""] * 5, "dup_cluster": ["dup0", "dup0", "dup1", "dup1", ""],
    })
    settled, conflicts = prefer_graded_copies(manifest)
    assert settled["label"].tolist() == ["normal", "", "covid", "covid", "normal"]
    assert "Negative for Pneumonia" in settled["exclusion"].iat[1]
    assert conflicts[["other_path", "grade"]].values.tolist() == [["radiography/COVID/x.png", "Negative for Pneumonia"]]


def _mixed_case(seed: int = 0):
    """Two sources, each with both classes; the covid share differs by source, as in public data."""
    rng = np.random.default_rng(seed)
    sources = np.array(["siim-covid19-detection"] * 200 + ["covid-chestxray-dataset"] * 200)
    labels = np.concatenate([rng.choice(["covid", "normal"], 200, p=[0.3, 0.7]),
                             rng.choice(["covid", "pneumonia"], 200, p=[0.8, 0.2])])
    return labels, sources, np.array([f"p{i}" for i in range(400)])


def test_a_model_that_only_sees_the_source_scores_one_half_within_each_source():
    labels, sources, groups = _mixed_case()
    source_only = np.where(sources == "covid-chestxray-dataset", 0.9, 0.1)
    pooled = pd.Series(labels == "covid").groupby(sources).mean()
    assert pooled.max() - pooled.min() > 0.3  # so the pooled AUROC of source_only is far above 0.5
    found = yardstick.within_hospital(labels, sources, source_only, groups, resamples=100)
    assert {entry["auroc"]["value"] for entry in found.values()} == {0.5}
    assert yardstick.selection_score(labels, sources, source_only) == 0.5
    disease = (labels == "covid").astype(float) + np.random.default_rng(1).normal(0, 0.1, len(labels))
    found = yardstick.within_hospital(labels, sources, disease, groups, resamples=100)
    siim = found["siim_typical_vs_negative"]
    assert siim["auroc"]["value"] == 1.0 and siim["n_negative"] == (labels[sources == sources[0]] == "normal").sum()
    assert siim["auroc"]["ci_low"] <= 1.0 and found["cohen_covid_vs_pneumonia"]["applicable"]


def test_a_contrast_with_too_few_images_of_a_class_is_not_applicable():
    labels = np.array(["covid"] * 20 + ["normal"] * 2)
    sources = np.array(["siim-covid19-detection"] * 22)
    found = yardstick.within_hospital(labels, sources, np.linspace(0, 1, 22), np.arange(22).astype(str), resamples=50)
    assert found["siim_typical_vs_negative"]["applicable"] is False
    assert np.isnan(yardstick.selection_score(labels, sources, np.linspace(0, 1, 22)))


def test_shortcut_targets_judge_each_figure():
    checks = yardstick.target_checks({"original_auroc": 0.9, "lungs_only_auroc": {"value": 0.7, "n": 40, "ci_low": 0.6, "ci_high": 0.8},
                                      "lungs_hidden_auroc": 0.6, "cam_in_lungs": 0.55, "source_probe_excess": None})
    assert checks["lungs-only AUROC drop"]["n"] == 40
    assert checks["lungs-only AUROC drop"]["met"] is False and abs(checks["lungs-only AUROC drop"]["value"] - 0.2) < 1e-9
    assert checks["lungs-hidden AUROC"]["met"] is True and checks["Grad-CAM mass inside the lungs"]["met"] is True
    assert checks["source probe above chance"]["met"] is None


def test_gradcam_mass_share_is_one_inside_a_full_mask_and_zero_in_an_empty_one():
    from covidxray.evaluation.audits import cam_lung_share
    from covidxray.imaging.read import read_image
    from covidxray.inference.classifier import load_checkpoint

    package = Path(__file__).resolve().parents[1] / "covidxray"
    classifier = load_checkpoint(package / "weights" / "covidxray-default.pt")
    image = read_image(package / "samples" / "covid-cc-by-12941_2020_358_Fig1.jpg")  # read as covid: a non-empty map
    left = np.zeros(image.shape, bool)
    left[:, : image.shape[1] // 2] = True
    shares, areas = cam_lung_share(classifier, [image, image, image],
                                   [np.ones(image.shape, bool), np.zeros(image.shape, bool), left])
    assert shares[0] == pytest.approx(1.0) and shares[1] == 0.0 and 0.0 < shares[2] < 1.0
    assert areas.tolist() == pytest.approx([1.0, 0.0, 0.5], abs=0.02)


def test_evaluation_report_leads_with_the_within_hospital_contrast(tiny_model, tmp_path):
    import json

    checkpoint, split = tiny_model
    table = pd.read_csv(split, dtype=str, keep_default_na=False)
    table["source"] = "siim-covid19-detection"  # both classes from one source: the contrast applies
    table["label"] = table["label"].where(table["label"] == "covid", "normal")
    table.to_csv(tmp_path / "one-source.csv", index=False)
    out = tmp_path / "report"
    assert main(["evaluate", str(checkpoint), "--split", str(tmp_path / "one-source.csv"), "--out", str(out),
                 "--resamples", "50", "--no-audits"]) == 0
    document = json.loads((out / "metrics.json").read_text())
    siim = document["parts"]["test"]["within_hospital"]["siim_typical_vs_negative"]
    assert siim["applicable"] and siim["auroc"]["n"] == document["parts"]["test"]["n_images"]
    assert siim["auroc"]["value"] == pytest.approx(document["parts"]["test"]["metrics"]["roc_auc"]["value"])
    page = (out / "report.html").read_text()
    assert page.index("Within-hospital yardstick") < page.index("<h3>Metrics</h3>")
    card = tmp_path / "MODEL_CARD.md"
    assert main(["model-card", "--internal", str(out), "--out", str(card)]) == 0
    text = card.read_text()
    assert text.index("The yardstick that decides") < text.index("Performance on mixed sources")
    value = siim["auroc"]
    assert f"Typical Appearance vs Negative for Pneumonia | {value['value']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]" in text


def test_source_erasing_augmentation_stretches_recompresses_and_blanks_an_edge():
    import torch

    from covidxray.imaging.augment import Augmentation, augmentation

    torch.manual_seed(0)
    image = torch.rand(1, 64, 64) * 0.5 + 0.25
    border = Augmentation(border=1.0)(image)
    edges = [border[0, 0, :], border[0, -1, :], border[0, :, 0], border[0, :, -1]]
    assert any(torch.allclose(edge, torch.full_like(edge, float(image.mean()))) for edge in edges)
    assert not torch.equal(Augmentation(jpeg=1.0)(image), image) and Augmentation(jpeg=1.0)(image).shape == image.shape
    bar = torch.zeros(1, 64, 64)
    bar[:, :, 24:40] = 1.0  # a vertical bar 16 px wide: a stretch along x changes its width
    widths = {int((Augmentation(aspect=0.5)(bar)[0, 32] > 0.5).sum()) for _ in range(8)}
    assert widths - {16}
    preset = augmentation("source-erasing")
    changed = preset(image)
    assert changed.shape == image.shape and 0.0 <= float(changed.min()) and float(changed.max()) <= 1.0


def test_training_picks_its_epoch_on_the_within_hospital_contrast_and_says_so(tmp_path):
    from covidxray.inference.classifier import load_checkpoint
    from covidxray.training.loop import train
    from tests.synthetic_xrays import quick_train_config, write_split

    split = write_split(tmp_path / "images", {"train": 8, "val": 6}, labels=("covid", "normal"),
                        sources=("siim-covid19-detection",))
    result = train(quick_train_config(split, tmp_path / "run", epochs=2))
    assert result.history["val_within_auroc"].notna().all()
    assert result.best_val_auroc == result.history["val_within_auroc"].max()
    assert "within-hospital" in load_checkpoint(result.best_path).record["selection"]


def test_the_source_adversary_reverses_its_gradient_into_the_network():
    import torch

    from covidxray.models.registry import create_model
    from covidxray.training.adversary import SourceAdversary

    torch.manual_seed(0)
    network = create_model("xray-cnn", 1).eval()  # no dropout: both passes below see the same features
    adversary = SourceAdversary(network, sources=3, classes=1, weight=1.0)
    images, labels, sources = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 0, 1, 0, 1]), torch.tensor([0, 1, 2, 0, 1, 2])
    network(images)
    adversary.loss(labels, sources).backward()
    head_grad = adversary.head[0].weight.grad.clone()
    last = [m for m in network.modules() if isinstance(m, torch.nn.Linear)][-1]
    feature_grad = [p.grad for p in network.features.parameters()][0].clone()
    assert last.weight.grad is None or float(last.weight.grad.abs().sum()) == 0.0  # the label head is not in this loss
    # the same loss without the reversal pushes the network's features the opposite way
    network.zero_grad(), adversary.zero_grad()
    features = torch.nn.Sequential(*list(network.head)[:-1])(network.features(images))
    onehot = torch.nn.functional.one_hot(labels, 2).float()
    torch.nn.functional.cross_entropy(adversary.head(torch.cat([features, onehot], 1)), sources).backward()
    assert torch.allclose([p.grad for p in network.features.parameters()][0], -feature_grad, atol=1e-6)
    assert torch.allclose(adversary.head[0].weight.grad, head_grad, atol=1e-6)


def test_training_with_a_source_adversary_runs_and_records_it(tmp_path, capsys):
    from covidxray.inference.classifier import load_checkpoint
    from covidxray.training.loop import train
    from tests.synthetic_xrays import quick_train_config, write_split

    split = write_split(tmp_path / "images", {"train": 8, "val": 4}, labels=("covid", "normal"))
    result = train(quick_train_config(split, tmp_path / "run", epochs=1, source_adversary=0.3))
    assert load_checkpoint(result.best_path).record["source_adversary"] == 0.3
    capsys.readouterr()
    assert main(["train", "--recipe", "xray-cnn", "--split", str(split), "--out", str(tmp_path / "bad"),
                 "--set", "source_adversary=-1"]) == 2
    assert "source_adversary" in capsys.readouterr().err


def test_hiding_outside_the_lungs_keeps_the_lungs_and_their_border_and_flattens_the_rest():
    from covidxray.imaging.preprocess import Preprocessing, hide_outside

    rng = np.random.default_rng(0)
    image = rng.random((100, 100)).astype(np.float32)
    mask = np.zeros((100, 100), bool)
    mask[30:70, 20:45] = True
    hidden = hide_outside(image, mask)
    assert np.array_equal(hidden[mask], image[mask])
    assert np.array_equal(hidden[30:70, 17:20], image[30:70, 17:20])  # within 3% of the side: kept
    far = np.ones((100, 100), bool)
    far[25:75, 14:51] = False
    assert np.unique(hidden[far]).tolist() == [pytest.approx(float(np.median(image[mask])))]
    assert np.array_equal(hide_outside(image, np.zeros((100, 100), bool)), image)  # no lungs found: image kept
    on = Preprocessing(size=32, hide_outside_lungs=True)
    assert on.cache_key() != Preprocessing(size=32).cache_key()
    assert Preprocessing.from_dict(on.to_dict()) == on


def test_a_model_that_hides_outside_the_lungs_ignores_a_marker_outside_them(real_png):
    from covidxray.lungs.segmenter import bundled_segmenter
    from covidxray.imaging.preprocess import Preprocessing, prepare_array
    from covidxray.imaging.read import read_image

    image = read_image(real_png)
    mask = bundled_segmenter().mask(image)
    assert mask.mean() > 0.1
    marked = image.copy()
    marked[:12, :12] = 1.0  # a burned-in marker in the corner, far from the lungs
    hidden = prepare_array(marked, Preprocessing(size=64, hide_outside_lungs=True))
    assert np.all(hidden[:3, :3] == hidden[0, -1]) and hidden[0, 0] < 0.9  # the marker is gone: the fill is there
    assert prepare_array(marked, Preprocessing(size=64))[:3, :3].min() > 0.95  # without hiding it reaches the model


def test_compare_puts_the_within_hospital_contrast_beside_the_mixed_auroc(tmp_path):
    import json

    auroc = {"value": 0.8, "n": 50, "ci_low": 0.7, "ci_high": 0.9}
    for name, within in (("a", 0.91), ("b", 0.55)):
        folder = tmp_path / name
        folder.mkdir()
        part = {"n_images": 50, "metrics": {"roc_auc": auroc}, "calibration": {"ece": 0.05},
                "within_hospital": {"siim_typical_vs_negative": {"applicable": True, "auroc": {**auroc, "value": within}}}}
        (folder / "metrics.json").write_text(json.dumps({"model": {"architecture": "xray-cnn"}, "parts": {"test": part}}))
    out = tmp_path / "comparison.md"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    table = out.read_text()
    assert "within: siim_typical_vs_negative" in table and "0.910 [0.700, 0.900] (n=50)" in table and "0.550" in table


@pytest.mark.skipif(not (ROOT / "docs" / "reports" / "release-internal" / "metrics.json").is_file(),
                    reason="needs the shipped model's report")
def test_compare_shows_the_shortcut_audits_a_report_measured(tmp_path):
    report = ROOT / "docs" / "reports" / "release-internal"
    audits = json.loads((report / "metrics.json").read_text())["parts"]["test"]["audits"]
    out = tmp_path / "comparison.md"
    assert main(["compare", str(report), "--out", str(out)]) == 0
    table = out.read_text()
    cam = audits["targets"]["Grad-CAM mass inside the lungs"]
    assert "Grad-CAM mass inside the lungs (>= 0.5)" in table and "lungs-hidden AUROC (<= 0.65)" in table
    assert f"{cam['value']:.3f} [{cam['ci_low']:.3f}, {cam['ci_high']:.3f}] (n={cam['n']})" in table
    assert f"{cam['value'] / audits['cam_in_lungs']['lung_area_share']:.2f}x" in table


def test_train_calibrate_compare_and_model_card_refuse_to_write_into_data_or_over_inputs(tmp_path, capsys):
    from tests.synthetic_xrays import write_split

    split = write_split(tmp_path / "images", {"train": 2, "val": 2}, labels=("covid", "normal"))
    inside = tmp_path / "images" / "run"
    capsys.readouterr()
    assert main(["train", "--recipe", "xray-cnn", "--split", str(split), "--out", str(inside), "--epochs", "1"]) == 2
    assert not inside.exists() and "refusing" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "model.pt"), "--split", str(split), "--out", str(split)]) != 0
    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.json").write_text("{}")
    assert main(["compare", str(report), "--out", str(report / "metrics.json")]) != 0
    assert main(["model-card", "--internal", str(report), "--out", str(report / "metrics.json")]) != 0
    assert (report / "metrics.json").read_text() == "{}"
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err and "refusing" in captured.out + captured.err


def test_what_ships_and_what_reports_say_hold_no_folder_of_the_machine_that_trained(tiny_model, tmp_path):
    import json

    from covidxray.inference.checkpoint import read_checkpoint, slim_checkpoint

    checkpoint, split = tiny_model
    record = read_checkpoint(checkpoint)["record"]
    assert record["split_file"] == Path(split).name  # recorded by name; the sha256 and fingerprint identify it
    content = read_checkpoint(checkpoint)
    content["record"]["teacher"] = "/home/someone/runs/teacher/best.pt"
    from covidxray.inference.checkpoint import write_content

    write_content(content, tmp_path / "with-paths.pt")
    slim = slim_checkpoint(tmp_path / "with-paths.pt", tmp_path / "slim.pt")
    assert read_checkpoint(slim)["record"]["teacher"] == "best.pt"
    out = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "with-paths.pt"), "--split", str(split), "--out", str(out), "--resamples", "20",
                 "--no-audits"]) == 0
    for name in ("metrics.json", "report.html", "summary.md"):
        assert str(tmp_path) not in (out / name).read_text(), name
    assert json.loads((out / "metrics.json").read_text())["model"]["training_record"]["teacher"] == "best.pt"


def test_a_slim_export_is_the_same_bytes_every_time(tiny_model, tmp_path):
    """The bundled severity model is tied to the classifier's sha256: re-exporting must not change it."""
    from covidxray.hashing import sha256_file
    from covidxray.inference.checkpoint import slim_checkpoint

    checkpoint, _ = tiny_model
    first = slim_checkpoint(checkpoint, tmp_path / "a" / "slim.pt")
    second = slim_checkpoint(checkpoint, tmp_path / "b" / "other-name.pt")
    assert sha256_file(first) == sha256_file(second)

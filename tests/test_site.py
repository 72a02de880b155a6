"""The site check (`covidxray validate`): a site's films read from a CSV or a folder tree, screened by the
bundled model, measured with evaluation's own functions (so `covidxray evaluate` on the same films agrees),
the gate's refusals counted, operating points and a verdict that says when the films are too few."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidxray import RESEARCH_NOTICE
from covidxray.cli import main
from tests.conftest import RADIOGRAPHY


def _real_films(folder: Path, per_class: int = 6) -> dict[str, list[Path]]:
    """Copy real radiographs (224 px PNGs) into folder/images: {label: paths}."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    found: dict[str, list[Path]] = {}
    for label, sub in (("covid", "COVID"), ("normal", "Normal")):
        for image in sorted((RADIOGRAPHY / sub).iterdir())[:per_class]:
            shutil.copy(image, folder / "images" / image.name)
            found.setdefault(label, []).append(folder / "images" / image.name)
    return found


def _colour_photo(path: Path) -> Path:
    """A colourful photo-like PNG that the input gate refuses."""
    rng = np.random.default_rng(0)
    picture = np.zeros((200, 200, 3), np.uint8)
    picture[..., 0] = 220
    picture[..., 1] = np.linspace(0, 255, 200)[None, :].astype(np.uint8)
    picture[..., 2] = rng.integers(0, 80, (200, 200))
    Image.fromarray(picture).save(path)
    return path


@pytest.fixture()
def site_csv(data_dir, tmp_path) -> Path:
    """A site CSV as a clinic writes it: relative paths, one absolute path elsewhere, not-covid spelled
    that way, a photo the gate refuses, a missing file and a row with a label nobody maps."""
    site = tmp_path / "clinic"
    films = _real_films(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / films["normal"][-1].name
    shutil.move(films["normal"][-1], moved)
    rows = [{"path": f"images/{p.name}", "label": "covid", "patient_id": f"c{n}"} for n, p in enumerate(films["covid"])]
    rows += [{"path": f"images/{p.name}", "label": "not-covid" if n % 2 else "normal", "patient_id": f"n{n}"}
             for n, p in enumerate(films["normal"][:-1])]
    rows.append({"path": str(moved), "label": "not-covid", "patient_id": "n-abs"})
    rows.append({"path": f"images/{_colour_photo(site / 'images' / 'holiday.png').name}", "label": "not-covid", "patient_id": "x1"})
    rows.append({"path": "images/missing.png", "label": "covid", "patient_id": "x2"})
    rows.append({"path": f"images/{films['covid'][0].name}", "label": "maybe", "patient_id": "x3"})
    table = site / "mine.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_a_site_csv_reads_relative_and_absolute_paths_and_not_covid(site_csv):
    from covidxray.site.sites import read_site

    site = read_site(site_csv)
    assert site.layout == "csv" and site.name == "mine" and site.patient_ids == "given"
    assert len(site.films) == 14 and len(site.left_out) == 1 and "maybe" in site.left_out["reason"].iloc[0]
    assert all(Path(p).is_absolute() for p in site.films["path"])
    assert (site.films["path"].str.contains("elsewhere")).sum() == 1  # the absolute path, as given
    assert set(site.films["label"]) == {"covid", "normal", "not_covid"}
    assert site.films["is_covid"].sum() == 7  # the 6 covid films and the missing one
    assert site.films["patient_id"].str.startswith("mine:").all()


def test_a_folder_tree_takes_file_names_as_patients_and_says_so(data_dir, tmp_path):
    from covidxray.site.sites import patient_note, read_site

    films = _real_films(tmp_path / "raw", per_class=3)
    for folder, label in (("covid", "covid"), ("not-covid", "normal")):
        (tmp_path / "tree" / folder).mkdir(parents=True)
        for path in films[label]:
            shutil.copy(path, tmp_path / "tree" / folder)
    site = read_site(tmp_path / "tree")
    assert site.layout == "folder" and len(site.films) == 6 and site.films["is_covid"].sum() == 3
    assert site.patient_ids == "file name"
    assert site.films["patient_id"].tolist() == [f"tree:{Path(p).stem}" for p in site.films["path"]]
    assert "resamples images" in patient_note(site)


def test_reading_a_site_fails_in_one_line(tmp_path):
    from covidxray.errors import CovidxrayError
    from covidxray.site.sites import read_site

    with pytest.raises(CovidxrayError, match="no such file"):
        read_site(tmp_path / "nothing.csv")
    (tmp_path / "bad.csv").write_text("file,diagnosis\na.png,covid\n")
    with pytest.raises(CovidxrayError, match="expected a CSV with columns path,label"):
        read_site(tmp_path / "bad.csv")


def test_validate_reports_what_evaluate_reports_on_the_same_films(site_csv, tmp_path, capsys):
    out = tmp_path / "check"
    assert main(["validate", str(site_csv), "--out", str(out), "--resamples", "200", "--backend", "torch"]) == 0
    printed = capsys.readouterr()
    assert "wrote" in printed.err and "AUROC" in printed.out
    document = json.loads((out / "site-check.json").read_text())
    assert document["notice"] == RESEARCH_NOTICE
    counts = document["gate"]["counts"]
    assert counts["refused"] >= 1 and counts["error"] == 1 and sum(counts.values()) == 14
    films = pd.read_csv(out / "films.csv", keep_default_na=False)
    assert films.loc[films["path"].str.endswith("missing.png"), "status"].item() == "error"
    assert films.loc[films["path"].str.endswith("holiday.png"), "status"].item() == "refused"
    assert document["n_scored"] == counts["screened"] + counts["warned"] == len(pd.read_csv(out / "scored.csv"))

    report = tmp_path / "evaluated"
    assert main(["evaluate", "covidxray/weights/covidxray-default.pt", "--split", str(out / "scored.csv"), "--part", "all",
                 "--no-audits", "--resamples", "200", "--out", str(report)]) == 0
    evaluated = json.loads((report / "metrics.json").read_text())["parts"]["all"]
    for key in ("roc_auc", "sensitivity", "specificity", "accuracy", "precision", "npv", "pr_auc"):
        assert document["metrics"][key] == pytest.approx(evaluated["metrics"][key], abs=1e-9), key
    assert document["calibration"]["ece"]["value"] == pytest.approx(evaluated["calibration"]["ece"], abs=1e-6)
    assert document["calibration"]["brier"]["value"] == pytest.approx(evaluated["calibration"]["brier"], abs=1e-6)
    assert evaluated["n_images"] == document["n_scored"] and evaluated["n_patients"] == document["n_patients"]

    page = (out / "report.html").read_text()
    assert RESEARCH_NOTICE in page and "Verdict" in page and "Too few films to say" in page
    assert "holiday.png" in page and "missing.png" in page  # the films not scored, with why
    assert str(tmp_path) not in page  # no folder of this machine on the page


def test_validate_by_default_matches_evaluate_too(data_dir, tmp_path):
    """The default backend (the ONNX export, as predict) gives evaluate's figures on these films as well."""
    films = _real_films(tmp_path / "raw", per_class=5)
    for label in films:
        (tmp_path / "tree" / label).mkdir(parents=True)
        for path in films[label]:
            shutil.copy(path, tmp_path / "tree" / label)
    out = tmp_path / "check"
    assert main(["validate", str(tmp_path / "tree"), "--out", str(out), "--resamples", "100"]) == 0
    document = json.loads((out / "site-check.json").read_text())
    assert document["model"]["backend"] == "onnx" and document["model"]["bundled"]
    report = tmp_path / "evaluated"
    assert main(["evaluate", "covidxray/weights/covidxray-default.pt", "--split", str(out / "scored.csv"), "--part", "all",
                 "--no-audits", "--resamples", "100", "--out", str(report)]) == 0
    evaluated = json.loads((report / "metrics.json").read_text())["parts"]["all"]
    for key in ("roc_auc", "sensitivity", "specificity"):
        assert document["metrics"][key]["value"] == pytest.approx(evaluated["metrics"][key]["value"], abs=1e-6)
    assert document["calibration"]["ece"]["value"] == pytest.approx(evaluated["calibration"]["ece"], abs=1e-4)
    assert "file name stands for its patient" in (out / "report.html").read_text()


def test_validate_never_writes_into_the_site_or_over_an_input(site_csv, tmp_path, capsys):
    for out in (site_csv.parent / "images" / "report", site_csv):
        assert main(["validate", str(site_csv), "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith(f"error: {out}: refusing to write"), error
    assert not (site_csv.parent / "images" / "report").exists()
    assert main(["validate", str(site_csv.parent / "none.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err


# --- figures and words, on scores made up to know the answer -------------------------------------

def _screened(p_covid: np.ndarray, is_covid: np.ndarray, statuses=None, threshold: float = 0.5):
    """A ScreenedSite of made-up scores (no images), one patient a film."""
    from covidxray.site.screening import ScreenedSite
    from covidxray.site.sites import Site

    count = len(p_covid)
    films = pd.DataFrame({"path": [f"/site/f{n}.png" for n in range(count)],
                          "label": np.where(is_covid, "covid", "normal"), "is_covid": is_covid,
                          "patient_id": [f"made:p{n}" for n in range(count)], "source": "made", "finding": "",
                          "status": statuses if statuses is not None else "screened", "p_covid": p_covid,
                          "prediction": "", "input_flags": "", "input_note": "", "error": ""})
    site = Site("made", Path("/site/made.csv"), "csv", films.iloc[:, :6])
    model = {"path": "m.pt", "bundled": False, "sha256": "0" * 64, "architecture": "x", "labels": ["not_covid", "covid"],
             "threshold": threshold, "temperature": 1.0, "logit_bias": 0.0, "backend": "torch", "record": {}}
    return ScreenedSite(site, films, model)


def _scores(count: int, seed: int = 0, shift: float = 0.0, slope: float = 1.0):
    """(p_covid, is_covid): a score that separates (AUROC about 0.85); shift/slope miscalibrate it."""
    rng = np.random.default_rng(seed)
    is_covid = rng.random(count) < 0.4
    latent = rng.normal(np.where(is_covid, 1.0, -1.0), 1.0)
    true_p = 1 / (1 + np.exp(-(latent * 2.0 + np.log(0.4 / 0.6))))
    shown = 1 / (1 + np.exp(-(np.log(true_p / (1 - true_p)) * slope + shift)))
    return shown.astype(np.float32).astype(float), is_covid


def test_threshold_for_sensitivity_reaches_it_with_the_highest_cut():
    from covidxray.site.validate import threshold_for_sensitivity

    p = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.75])
    covid = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    assert threshold_for_sensitivity(p, covid, 0.75) == 0.7
    assert threshold_for_sensitivity(p, covid, 0.76) == 0.6
    assert threshold_for_sensitivity(p, covid, 1.0) == 0.6
    assert np.isnan(threshold_for_sensitivity(p, np.zeros(7, bool), 0.9))


def test_operating_points_reach_their_sensitivity_and_carry_intervals():
    from covidxray.site.validate import measure

    p_covid, is_covid = _scores(600)
    check = measure(_screened(p_covid, is_covid), (0.90, 0.95), resamples=200)
    points = {point.name: point for point in check.operating_points}
    for target in (0.90, 0.95):
        point = points[f"sensitivity {target:.2f}"]
        assert point.sensitivity.value >= target
        assert point.threshold.ci_low <= point.threshold.value <= point.threshold.ci_high
        assert point.specificity.n == int((~is_covid).sum()) and point.sensitivity.n == int(is_covid.sum())
    assert points["sensitivity 0.95"].threshold.value <= points["sensitivity 0.90"].threshold.value
    shipped = points["the model's threshold"]
    assert shipped.sensitivity.value == pytest.approx(check.metrics["sensitivity"].value)
    assert shipped.specificity.value == pytest.approx(check.metrics["specificity"].value)
    assert check.calibration["ece"].ci_low <= check.calibration["ece"].value <= check.calibration["ece"].ci_high


def test_the_verdict_says_when_the_films_are_too_few_and_when_not():
    from covidxray.site.validate import measure

    few = measure(_screened(*_scores(24, seed=1)), resamples=200)
    assert any(line.startswith("Too few films to say") for line in few.verdict)
    many = measure(_screened(*_scores(3000, seed=2)), resamples=200)
    assert not any("Too few" in line for line in many.verdict)
    assert any("separation of covid from not covid" in line for line in many.verdict)
    p_covid, is_covid = _scores(40, seed=3)
    one_class = measure(_screened(p_covid[is_covid], is_covid[is_covid]), resamples=50)
    assert any("Only one class" in line for line in one_class.verdict)


def test_refused_and_unreadable_films_are_counted_and_left_out_of_the_figures():
    from covidxray.site.validate import measure

    p_covid, is_covid = _scores(200, seed=4)
    statuses = np.array(["screened"] * 200, dtype=object)
    statuses[:30] = "refused"
    statuses[30:35] = "error"
    statuses[35:50] = "warned"
    p_covid = p_covid.copy()
    p_covid[:35] = np.nan
    check = measure(_screened(p_covid, is_covid, statuses), resamples=100)
    assert check.gate["counts"] == {"screened": 150, "warned": 15, "refused": 30, "error": 5}
    assert check.metrics["roc_auc"].n == 165
    assert any("refused 15%" in line for line in check.verdict)


def test_the_readme_points_at_the_site_check_and_the_guide_shows_measured_figures():
    root = Path(__file__).resolve().parents[1]
    first_screen = "\n".join((root / "README.md").read_text(encoding="utf-8").splitlines()[:30])
    assert "covidxray validate" in first_screen and "docs/your-site.md" in first_screen
    guide = (root / "docs" / "your-site.md").read_text(encoding="utf-8")
    begin, end = "<!-- site-check: written by", "<!-- end of site-check -->"
    block = guide.split(begin, 1)[1].split(end, 1)[0]
    assert "SIIM test part (CSV)" in block and "folder of 20 SIIM test films" in block and "ECE adapted" in block
    for picture in ("site-check.png", "site-adapt.png"):
        assert f"images/{picture}" in guide and (root / "docs" / "images" / picture).stat().st_size > 10_000

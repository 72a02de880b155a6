"""scripts/heatmap_gallery.py: five real films of a split's test part on one captioned picture, the
same five named in a JSON beside it; a missing split or kind of film is one line, not a traceback."""

from __future__ import annotations

import csv
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import DARK, DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "heatmap_gallery.py"
SIIM = DATA_DIR / "siim-covid19-detection"
COLUMNS = ["path", "source", "patient_id", "finding", "label", "status", "split"]


def siim_rows(grade: str, label: str, count: int) -> list[dict]:
    """The first count SIIM images (one per study) whose study is graded grade, as test rows."""
    with open(SIIM / "train_study_level.csv", newline="") as handle:
        graded = {row["id"].removesuffix("_study") for row in csv.DictReader(handle) if row[grade] == "1"}
    rows, studies = [], set()
    with open(SIIM / "train_image_level.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            image, study = SIIM / "train" / f"{row['id'].removesuffix('_image')}.jpg", row["StudyInstanceUID"]
            if study in graded and study not in studies and image.is_file():
                studies.add(study)
                rows.append({"path": str(image), "source": "siim-covid19-detection", "patient_id": f"siim:{study}",
                             "finding": grade, "label": label, "status": "ok", "split": "test"})
            if len(rows) == count:
                return rows
    return rows


@pytest.fixture(scope="module")
def small_split(tmp_path_factory) -> Path:
    """A split of real images: 3 SIIM typical, 3 SIIM negative, 2 NIH pneumonia in its test part, one
    train row (never shown), so that the gate may refuse one of each and the picture still fills."""
    if not (SIIM / "train_study_level.csv").is_file() or not DARK.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR} (set COVIDXRAY_DATA)")
    pneumonia = [{"path": str(path), "source": "darkcovidnet", "patient_id": "", "finding": "Pneumonia",
                  "label": "pneumonia", "status": "ok", "split": "test"}
                 for path in sorted((DARK / "Pneumonia").iterdir())[:2]]
    rows = siim_rows("Typical Appearance", "covid", 3) + siim_rows("Negative for Pneumonia", "normal", 4)
    rows[-1]["split"] = "train"
    split = tmp_path_factory.mktemp("gallery") / "split.csv"
    with open(split, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows + pneumonia)
    return split


def test_five_films_of_the_test_part_on_one_picture(small_split: Path, tmp_path: Path, capsys):
    gallery = runpy.run_path(str(SCRIPT))
    out = tmp_path / "five.png"
    assert gallery["main"](["--split", str(small_split), "--out", str(out), "--seed", "3"]) == 0
    picture = Image.open(out)
    assert picture.width == 3 * gallery["PANEL_WIDTH"] + 4 * gallery["GAP"]  # 3 + 2 panels
    assert picture.height > 2 * gallery["PANEL_WIDTH"] and out.stat().st_size < 1.5e6
    report = json.loads(out.with_suffix(".json").read_text())
    films = report["films"]
    assert len(films) == 5 and [film["label"] for film in films] == ["covid", "covid", "normal", "normal", "pneumonia"]
    assert all(film["status"] in ("screened", "warned") and 0 <= film["p_covid"] <= 1 for film in films)
    assert len({film["path"] for film in films}) == 5
    assert all(film["path"].startswith("siim-covid19-detection/train/") for film in films[:4])
    assert films[4]["path"].startswith("darkcovidnet/X-Ray Image DataSet/Pneumonia/")
    train_row = next(row for row in csv.DictReader(open(small_split)) if row["split"] == "train")
    assert Path(train_row["path"]).name not in {Path(film["path"]).name for film in films}
    assert len(report["model_sha256"]) == 64 and report["notice"].startswith("covidxray is a research tool")
    printed = capsys.readouterr().out
    assert all(film["path"] in printed for film in films)


def test_a_missing_split_or_kind_is_one_line(small_split: Path, tmp_path: Path):
    missing = subprocess.run([sys.executable, str(SCRIPT), "--split", str(tmp_path / "none.csv"),
                              "--out", str(tmp_path / "x.png")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and "none.csv: split not found" in missing.stderr

    no_pneumonia = tmp_path / "split.csv"
    lines = small_split.read_text().splitlines()
    no_pneumonia.write_text("\n".join(line for line in lines if "darkcovidnet" not in line) + "\n")
    gallery = runpy.run_path(str(SCRIPT))
    from covidxray.errors import DatasetError

    with pytest.raises(DatasetError, match="no pneumonia rows from darkcovidnet or covid-chestxray-dataset"):
        gallery["main"](["--split", str(no_pneumonia), "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()

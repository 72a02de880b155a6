"""A user's own CSV (the documented `path,label,patient_id` columns) through `data prepare`, on real images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from covidxray.cli import main
from tests.conftest import RADIOGRAPHY


def _user_csv(folder: Path, per_class: int = 6, source: bool = False, label_of=None) -> Path:
    """Copy real images into folder/images and list them as a user would: relative paths, no view column."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for label, sub in (("covid", "COVID"), ("normal", "Normal")):
        for number, image in enumerate(sorted((RADIOGRAPHY / sub).iterdir())[:per_class]):
            shutil.copy(image, folder / "images" / image.name)
            row = {"path": f"images/{image.name}", "label": label_of(label) if label_of else label,
                   "patient_id": f"{sub}-{number}"}
            if source:
                row["source"] = "hospital-a" if number % 2 else "hospital-b"
            rows.append(row)
    table = folder / "combined.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_a_csv_without_a_view_column_keeps_its_rows(data_dir, tmp_path, capsys):
    table = _user_csv(tmp_path / "mine")
    assert main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")]) == 0
    assert "data pipeline done" in capsys.readouterr().err
    clean = pd.read_csv(tmp_path / "prepared" / "clean.csv", dtype=str, keep_default_na=False)
    split = pd.read_csv(tmp_path / "prepared" / "split.csv", dtype=str, keep_default_na=False)
    assert len(clean) == 12 and (clean["view"] == "").all()  # an unknown view is unknown, not lateral
    assert len(split) >= 10 and set(split["label"]) == {"covid", "normal"}
    assert set(split["source"]) == {"combined"}  # no source column: the file's stem


def test_a_source_column_names_each_row_source(data_dir, tmp_path):
    table = _user_csv(tmp_path / "mine", source=True)
    assert main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")]) == 0
    split = pd.read_csv(tmp_path / "prepared" / "split.csv", dtype=str, keep_default_na=False)
    assert set(split["source"]) == {"hospital-a", "hospital-b"}
    assert split["patient_id"].str.startswith(("hospital-a:", "hospital-b:")).all()


def test_a_step_that_drops_everything_says_so_and_fails(data_dir, tmp_path, capsys):
    table = _user_csv(tmp_path / "mine", per_class=3, label_of=lambda label: "maybe")
    status = main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")])
    output = capsys.readouterr()
    error = output.err.strip().splitlines()
    assert status == 2, output
    assert error[-1].startswith(f"error: {table}: clean kept none of 6 rows (dropped: 6 no usable label")
    assert "data pipeline done" not in output.err + output.out
    assert not (tmp_path / "prepared" / "split.csv").exists()


def test_data_clean_refuses_to_keep_almost_nothing(data_dir, tmp_path, capsys):
    table = _user_csv(tmp_path / "mine", per_class=3)
    assert main(["data", "manifest", str(table), "--out", str(tmp_path / "m.csv")]) == 0
    manifest = pd.read_csv(tmp_path / "m.csv", dtype=str, keep_default_na=False)
    manifest["view"] = "L"  # every row lateral: all dropped
    manifest.to_csv(tmp_path / "lateral.csv", index=False)
    capsys.readouterr()
    assert main(["data", "clean", str(tmp_path / "lateral.csv"), "--out", str(tmp_path / "c.csv")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == (f"error: {tmp_path / 'lateral.csv'}: clean kept none of 6 rows (dropped: 6 not a frontal view); "
                         "check the labels, views and image paths")
    assert not (tmp_path / "c.csv").exists()

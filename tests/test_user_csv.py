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


# ---- issue #25: a CSV named on the command line is the user's; a collection's metadata stays guarded ----


def _absolute_csv(table: Path, per_class: int = 20) -> Path:
    """The documented path,label,patient_id CSV listing real films where they lie, by absolute path."""
    lines = ["path,label,patient_id"]
    for label, sub in (("covid", "COVID"), ("normal", "Normal")):
        for image in sorted((RADIOGRAPHY / sub).iterdir())[:per_class]:
            lines.append(f"{image.resolve()},{label},{image.stem}")
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("\n".join(lines) + "\n")
    return table


def test_a_csv_of_absolute_paths_keeps_all_40_films(data_dir, tmp_path, capsys):
    table = _absolute_csv(tmp_path / "mine.csv")
    assert main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")]) == 0
    assert "data pipeline done" in capsys.readouterr().err
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", dtype=str, keep_default_na=False)
    clean = pd.read_csv(tmp_path / "prepared" / "clean.csv", dtype=str, keep_default_na=False)
    split = pd.read_csv(tmp_path / "prepared" / "split.csv", dtype=str, keep_default_na=False)
    assert (manifest["exclusion"] == "").all() and len(clean) == 40
    assert set(clean["path"]) == {line.split(",")[0] for line in table.read_text().splitlines()[1:]}
    for part in ("train", "val", "test"):  # 20 patients per class are enough for every part to hold both classes
        assert set(split.loc[split["split"] == part, "label"]) == {"covid", "normal"}, part


def test_relative_paths_are_taken_from_the_csv_folder_whatever_the_working_directory(data_dir, tmp_path, monkeypatch):
    films = tmp_path / "films"
    films.mkdir()
    lines = ["path,label,patient_id"]
    for label, sub in (("covid", "COVID"), ("normal", "Normal")):
        for image in sorted((RADIOGRAPHY / sub).iterdir())[:6]:
            shutil.copy(image, films / image.name)
            lines.append(f"../films/{image.name},{label},{image.stem}")
    table = tmp_path / "lists" / "mine.csv"
    table.parent.mkdir()
    table.write_text("\n".join(lines) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["data", "prepare", "../lists/mine.csv", "--out", "prepared"]) == 0
    clean = pd.read_csv(elsewhere / "prepared" / "clean.csv", dtype=str, keep_default_na=False)
    assert len(clean) == 12 and all(Path(p).resolve().parent == films for p in clean["path"])
    # a hand-made manifest with relative paths is read from its own folder by the steps too
    hand = pd.DataFrame({"path": [f"../films/{Path(p).name}" for p in clean["path"]], "source": "mine",
                         "label": clean["label"]})
    hand.to_csv(tmp_path / "lists" / "hand.csv", index=False)
    assert main(["data", "clean", str(tmp_path / "lists" / "hand.csv"), "--out", "hand-clean.csv"]) == 0
    assert len(pd.read_csv(elsewhere / "hand-clean.csv")) == 12


def _hostile_collection(folder: Path, images: int = 6) -> Path:
    """A generated copy of the COVID-19 collection's layout whose metadata.csv lists files outside it."""
    root = folder / "covid-chestxray-dataset"
    (root / "images").mkdir(parents=True)
    lines = ["patientid,finding,view,modality,folder,filename"]
    for n, image in enumerate(sorted((RADIOGRAPHY / "COVID").iterdir())[:images]):
        shutil.copy(image, folder / f"x{n}.png")  # real images, but not the collection's
        lines.append(f"{n},COVID-19,PA,X-ray,images,../../x{n}.png")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_a_collection_metadata_that_leaves_its_folder_is_still_excluded_with_that_reason(data_dir, tmp_path, capsys):
    root = _hostile_collection(tmp_path / "data")
    status = main(["data", "prepare", str(root), "--out", str(tmp_path / "prepared")])
    output = capsys.readouterr()
    assert status == 2, output
    last = output.err.strip().splitlines()[-1]
    assert last.startswith(f"error: {root}: clean kept none of 6 rows (dropped: 6 path outside the dataset folder; first: "), last
    assert "image missing or unreadable" not in last
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", dtype=str, keep_default_na=False)
    report = pd.read_csv(tmp_path / "prepared" / "verify-report.csv", dtype=str, keep_default_na=False)
    assert (manifest["exclusion"] == "path outside the dataset folder").all() and (manifest["label"] == "").all()
    assert (report["reason"] == "path outside the dataset folder").all()  # never opened
    assert not (tmp_path / "prepared" / "split.csv").exists()


def test_missing_films_are_named_in_the_last_line(data_dir, tmp_path, capsys):
    table = tmp_path / "mine.csv"
    table.write_text("path,label,patient_id\n" + "".join(f"/no/such/film-{n}.png,covid,{n}\n" for n in range(4)))
    assert main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "(dropped: 4 image missing or unreadable; first: /no/such/film-0.png: file not found)" in last, last


def test_too_few_patients_for_every_part_are_said_in_words(data_dir, tmp_path, capsys):
    table = _absolute_csv(tmp_path / "few.csv", per_class=2)
    assert main(["data", "prepare", str(table), "--out", str(tmp_path / "prepared")]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "split: no covid image in val or test: 2 covid patient(s) in all" in said, said
    assert "split: no normal image in val or test" in said

"""Shared fixtures: the real data folder, and small copies of each real collection in its layout."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ.get("COVIDXRAY_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
COHEN = DATA_DIR / "covid-chestxray-dataset"
DARK = DATA_DIR / "darkcovidnet" / "X-Ray Image DataSet"
RADIOGRAPHY = DATA_DIR / "covid19-radiography-database" / "COVID-19_Radiography_Dataset"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not COHEN.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR} (set COVIDXRAY_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def mini_cohen(data_dir: Path, tmp_path_factory) -> Path:
    """A copy of the COVID-19 image data collection with 12 metadata rows and their files."""
    root = tmp_path_factory.mktemp("cohen") / "covid-chestxray-dataset"
    (root / "images").mkdir(parents=True)
    with open(COHEN / "metadata.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    severity = {line.split(",")[0] for line in (COHEN / "annotations" / "covid-severity-scores.csv").read_text().splitlines()}
    masks = {p.stem for p in (COHEN / "annotations" / "v7labs-lung-masks").glob("*.png")}
    chosen, wanted = [], {"COVID-19": 4, "Streptococcus": 2, "No Finding": 2, "todo": 1, "Lipoid": 1}
    for row in rows:
        exists = (COHEN / row["folder"] / row["filename"]).is_file()
        if exists and wanted.get(row["finding"], 0) > 0 and row["modality"] == "X-ray":
            if row["finding"] == "COVID-19" and wanted["COVID-19"] == 4 and row["filename"] not in severity:
                continue  # the first COVID row carries severity scores
            wanted[row["finding"]] -= 1
            chosen.append(row)
    missing = next(r for r in rows if r["modality"] == "X-ray" and not (COHEN / r["folder"] / r["filename"]).is_file())
    for row in chosen:
        shutil.copy(COHEN / row["folder"] / row["filename"], root / "images" / row["filename"])
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen + [missing])
    (root / "annotations" / "v7labs-lung-masks").mkdir(parents=True)
    shutil.copy(COHEN / "annotations" / "covid-severity-scores.csv", root / "annotations")
    for row in chosen:
        stem = Path(row["filename"]).stem
        if stem in masks:
            shutil.copy(COHEN / "annotations" / "v7labs-lung-masks" / f"{stem}.png", root / "annotations" / "v7labs-lung-masks")
    return root


@pytest.fixture(scope="session")
def mini_dark(data_dir: Path, tmp_path_factory) -> Path:
    """darkcovidnet in its layout, 3 images per class."""
    root = tmp_path_factory.mktemp("dark") / "darkcovidnet"
    for folder in ("Covid-19", "No_findings", "Pneumonia"):
        target = root / "X-Ray Image DataSet" / folder
        target.mkdir(parents=True)
        for image in sorted((DARK / folder).iterdir())[:3]:
            shutil.copy(image, target)
    return root


@pytest.fixture(scope="session")
def mini_radiography(data_dir: Path, tmp_path_factory) -> Path:
    """COVID-19 Radiography Database in its layout, 3 images per class."""
    root = tmp_path_factory.mktemp("radiography") / "covid19-radiography-database"
    for folder in ("COVID", "Normal"):
        target = root / "COVID-19_Radiography_Dataset" / folder
        target.mkdir(parents=True)
        for image in sorted((RADIOGRAPHY / folder).iterdir())[:3]:
            shutil.copy(image, target)
    return root


@pytest.fixture()
def real_png(data_dir: Path) -> Path:
    return sorted((RADIOGRAPHY / "Normal").iterdir())[0]


@pytest.fixture()
def real_jpeg(data_dir: Path) -> Path:
    return sorted((COHEN / "images").glob("*.jpg"))[0]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(checkpoint, split): a real xray-cnn trained for a few epochs on generated images."""
    from covidxray.training.loop import TrainConfig, train
    from tests.synthetic_xrays import write_split

    folder = tmp_path_factory.mktemp("tiny-model")
    split = write_split(folder / "images", {"train": 16, "val": 6, "test": 8})
    config = TrainConfig(model="xray-cnn", task="binary", split=split, out=folder / "run", epochs=3, batch_size=8,
                         size=32, cache_dir=folder / "cache", threads=1, show_progress=False, lr=3e-3)
    return train(config).best_path, split

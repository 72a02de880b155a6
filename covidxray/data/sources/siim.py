"""Reader for SIIM-FISABIO-RSNA COVID-19 Detection (Kaggle, 2021): graded films of test-positive patients.

Two layouts: the competition's `train/<study>/<series>/<image>.dcm`, and the redistributed copy
`train/<image>.jpg`; both with `train_study_level.csv` (one-hot grade per `<study>_study`) and
`train_image_level.csv` (`<image>_image`, `StudyInstanceUID`, `opacity ...` / `none ...`). There are
no patient ids, so the study stands for the patient. Its value to covidxray is that both grades
come from the same hospitals and pipeline: the within-hospital yardstick (docs/evaluation.md).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from covidxray.data.labels import SIIM_GRADES, label_siim_grade
from covidxray.data.schema import empty_row
from covidxray.errors import DatasetError

LAYOUT = "siim-covid19-detection"
SOURCE = "siim-covid19-detection"
STUDY_TABLE = "train_study_level.csv"
IMAGE_TABLE = "train_image_level.csv"
IMAGE_SUFFIXES = (".dcm", ".dicom", ".jpg", ".jpeg", ".png")


def detect(root: Path) -> bool:
    return root.is_dir() and (root / STUDY_TABLE).is_file() and (root / IMAGE_TABLE).is_file()


def read(root: Path, include_uncertain: bool = False) -> list[dict]:
    """One row per image listed in the image table whose file exists or not (verify reports absent ones)."""
    root = root.resolve()
    grades = read_study_grades(root / STUDY_TABLE)
    files = _image_files(root / "train")
    rows = []
    for record in _read_csv(root / IMAGE_TABLE, ("id", "StudyInstanceUID", "label")):
        image_id = record["id"].strip().removesuffix("_image")
        study = record["StudyInstanceUID"].strip()
        if not image_id or not study:
            continue
        row = empty_row()
        path = files.get(image_id)
        row["path"] = str(path) if path else str(root / "train" / f"{image_id}.jpg")
        row["source"] = SOURCE
        row["patient_id"] = f"siim:{study}"
        row["finding"] = grades.get(study, "")
        row["label"], row["exclusion"] = label_siim_grade(row["finding"], include_uncertain)
        row["modality"] = "X-ray"
        row["view"] = "frontal"
        row["opacity"] = "1" if "opacity" in record["label"].lower() else "0"
        row["study_id"] = study
        rows.append(row)
    if any(Path(r["path"]).suffix.lower() in {".dcm", ".dicom"} for r in rows):
        _add_dicom_headers(rows)
    return rows


def read_study_grades(path: Path) -> dict[str, str]:
    """study id -> grade name (one of SIIM_GRADES), from the one-hot study table."""
    grades = {}
    for number, record in enumerate(_read_csv(path, ("id",) + SIIM_GRADES), start=2):
        chosen = [grade for grade in SIIM_GRADES if (record.get(grade) or "").strip() == "1"]
        if len(chosen) != 1:
            raise DatasetError(f"{path}: line {number} has {len(chosen)} grades set; each study needs exactly one of "
                               f"{', '.join(SIIM_GRADES)}")
        grades[record["id"].strip().removesuffix("_study")] = chosen[0]
    return grades


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing required column(s) {', '.join(missing)}")
            return list(reader)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None


def _image_files(folder: Path) -> dict[str, Path]:
    """image id (file stem) -> file, for both layouts (flat copy, or study/series/image.dcm)."""
    found: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory) / name
            if not name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
                found.setdefault(path.stem, path)
    return found


def _add_dicom_headers(rows: list[dict]) -> None:
    """View and modality from each DICOM's header (the competition's files carry them)."""
    import pydicom

    for row in rows:
        if Path(row["path"]).suffix.lower() not in {".dcm", ".dicom"} or not Path(row["path"]).is_file():
            continue
        try:
            header = pydicom.dcmread(row["path"], stop_before_pixels=True,
                                     specific_tags=["Modality", "ViewPosition", "PatientSex"])
        except Exception:  # noqa: BLE001 - an unreadable header is reported by `data verify`
            continue
        view = str(getattr(header, "ViewPosition", "") or "").strip().upper()
        row["view"] = {"LL": "L", "RL": "L", "LAT": "L"}.get(view, view) or "frontal"
        modality = str(getattr(header, "Modality", "") or "").strip().upper()
        row["modality"] = "X-ray" if modality in {"CR", "DX", "DR", ""} else modality
        row["sex"] = {"M": "M", "F": "F"}.get(str(getattr(header, "PatientSex", "") or "").strip().upper(), "")

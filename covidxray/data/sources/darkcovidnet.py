"""Reader for the DarkCovidNet set (Ozturk et al. 2020; github muhammedtalo/COVID-19).

Layout: `X-Ray Image DataSet/{Covid-19, No_findings, Pneumonia}/`. The No_findings and Pneumonia
images are NIH ChestX-ray8 files named `PPPPPPPP_SSS.png` (patient, study), which gives patient
ids; the Covid-19 images are copies from the COVID-19 image data collection and carry none
(dedupe links them to their originals).
"""

from __future__ import annotations

import re
from pathlib import Path

from covidxray.data.labels import label_class_folder
from covidxray.data.schema import empty_row
from covidxray.data.sources.files import class_folders, list_images

LAYOUT = "darkcovidnet"
SOURCE = "darkcovidnet"
INNER = "X-Ray Image DataSet"
CLASS_FOLDERS = {"Covid-19", "No_findings", "Pneumonia"}
NIH_NAME = re.compile(r"^(\d{8})_(\d{3})$")


def _dataset_folder(root: Path) -> Path:
    return root / INNER if (root / INNER).is_dir() else root


def detect(root: Path) -> bool:
    names = {p.name for p in class_folders(_dataset_folder(root))}
    return CLASS_FOLDERS <= names


def read(root: Path) -> list[dict]:
    rows = []
    for folder in class_folders(_dataset_folder(root.resolve())):
        label, exclusion = label_class_folder(folder.name)
        for image in list_images(folder):
            row = empty_row()
            row.update(path=str(image), source=SOURCE, finding=folder.name, label=label,
                       exclusion=exclusion, view="frontal", modality="X-ray")
            match = NIH_NAME.match(image.stem)
            if match:
                row["patient_id"] = f"nih:{match.group(1)}"
            rows.append(row)
    return rows

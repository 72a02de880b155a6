"""Reader for the COVID-19 Radiography Database (Chowdhury, Rahman et al.; Kaggle).

Layout: `COVID-19_Radiography_Dataset/{COVID, Normal, Lung_Opacity, Viral Pneumonia}/`, each
class folder holding the images directly or, in later releases, `images/` and `masks/`.
The database gives no patient ids.
"""

from __future__ import annotations

from pathlib import Path

from covidxray.data.labels import label_class_folder
from covidxray.data.schema import empty_row
from covidxray.data.sources.files import class_folders, list_images

LAYOUT = "covid19-radiography-database"
SOURCE = "covid19-radiography-database"
INNER = "COVID-19_Radiography_Dataset"
KNOWN_CLASSES = {"COVID", "Normal", "Lung_Opacity", "Viral Pneumonia"}


def _dataset_folder(root: Path) -> Path:
    return root / INNER if (root / INNER).is_dir() else root


def detect(root: Path) -> bool:
    if (root / INNER).is_dir() or root.name == INNER:
        return True
    names = {p.name for p in class_folders(root)}
    return {"COVID", "Normal"} <= names and names <= KNOWN_CLASSES


def read(root: Path) -> list[dict]:
    rows = []
    for folder in class_folders(_dataset_folder(root.resolve())):
        label, exclusion = label_class_folder(folder.name)
        image_folder = folder / "images" if (folder / "images").is_dir() else folder
        mask_folder = folder / "masks"
        for image in list_images(image_folder):
            if image_folder == folder and mask_folder in image.parents:
                continue
            row = empty_row()
            row.update(path=str(image), source=SOURCE, finding=folder.name, label=label,
                       exclusion=exclusion, view="frontal", modality="X-ray")
            mask = mask_folder / image.name
            row["lung_mask"] = str(mask) if mask.is_file() else ""
            rows.append(row)
    return rows

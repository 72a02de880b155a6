"""Reader for a user's own folder-per-class tree: ROOT/<class>/... images, any depth below.

Class folder names are matched to labels by covidxray.data.labels.label_class_folder
(covid, COVID-19, normal, No_findings, pneumonia, ...). The source is named after ROOT.
"""

from __future__ import annotations

from pathlib import Path

from covidxray.data.labels import label_class_folder
from covidxray.data.schema import empty_row
from covidxray.data.sources.files import class_folders, list_images

LAYOUT = "folder"


def detect(root: Path) -> bool:
    return any(label_class_folder(p.name)[0] for p in class_folders(root))


def read(root: Path) -> list[dict]:
    root = root.resolve()
    rows = []
    for folder in class_folders(root):
        label, exclusion = label_class_folder(folder.name)
        for image in list_images(folder):
            row = empty_row()
            row.update(path=str(image), source=root.name, finding=folder.name, label=label,
                       exclusion=exclusion, modality="X-ray")
            rows.append(row)
    return rows

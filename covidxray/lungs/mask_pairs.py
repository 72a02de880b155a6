"""Hand-drawn lung masks of the COVID-19 image data collection, paired with image and patient.

A mask is named after its image's stem; its patient comes from metadata.csv, and a mask whose
image has no metadata row is its own patient. Splits are by patient so no patient is in both.
Some published masks are empty (the image was never outlined); they are set aside, not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covidxray.data.sources import cohen
from covidxray.errors import DatasetError
from covidxray.imaging.read import IMAGE_SUFFIXES


@dataclass(frozen=True)
class MaskedImage:
    """One radiograph with a hand lung mask: image path, mask path, patient id."""

    image: Path
    mask: Path
    patient_id: str

    @property
    def name(self) -> str:
        return self.image.name


def check_collection(data: Path, needed: str) -> Path:
    """data as given, when it is a folder holding needed (relative to it); else one line saying what --data wants."""
    if not Path(data).is_dir():
        raise DatasetError(f"{data}: no such folder; --data wants the covid-chestxray-dataset folder "
                           f"(relative paths are taken from the current folder, {Path.cwd()})")
    if not (Path(data) / needed).exists():
        raise DatasetError(f"{data}: no {needed} here; --data wants the covid-chestxray-dataset folder")
    return Path(data)


def find_masked_images(root: Path) -> list[MaskedImage]:
    """Every mask in root/annotations/v7labs-lung-masks whose image is in root/images, sorted by name."""
    root = Path(root)
    folder = root / cohen.MASK_FOLDER
    if not folder.is_dir():
        raise DatasetError(f"{root}: no {cohen.MASK_FOLDER} folder (expected the covid-chestxray-dataset layout)")
    patient_of = {}
    if cohen.detect(root):
        for row in cohen.read(root):
            patient_of.setdefault(Path(row["path"]).name, row["patient_id"])
    images = {p.stem: p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES} \
        if (root / "images").is_dir() else {}
    pairs = []
    for mask in sorted(folder.glob("*.png")):
        image = images.get(mask.stem)
        if image is None:
            continue
        patient = patient_of.get(image.name) or f"mask:{mask.stem}"
        pairs.append(MaskedImage(image, mask, patient))
    if not pairs:
        raise DatasetError(f"{folder}: no mask has an image of the same stem in {root / 'images'}")
    return pairs


def drop_empty_masks(pairs: list[MaskedImage]) -> tuple[list[MaskedImage], list[str]]:
    """(pairs whose mask has lung pixels, names of images whose mask is empty)."""
    from covidxray.lungs.segmenter import read_lung_mask

    kept, empty = [], []
    for pair in pairs:
        if read_lung_mask(pair.mask).any():
            kept.append(pair)
        else:
            empty.append(pair.name)
    return kept, empty


def split_by_patient(pairs: list[MaskedImage], held_out: float = 0.2, seed: int = 0) -> tuple[list[MaskedImage], list[MaskedImage]]:
    """Hold out a seeded random share of patients, with all their images, for honest figures.

    Args:
        pairs: the masked images.
        held_out: share of patients held out.
        seed: seed of the draw.

    Returns:
        (train, held-out).
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held-out share must be between 0 and 1, got {held_out}")
    patients = sorted({p.patient_id for p in pairs})
    order = np.random.default_rng(seed).permutation(len(patients))
    chosen = {patients[k] for k in order[:max(1, round(held_out * len(patients)))]}
    return [p for p in pairs if p.patient_id not in chosen], [p for p in pairs if p.patient_id in chosen]

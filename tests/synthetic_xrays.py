"""Generated 'radiographs' whose class is a visible pattern, and split files over them.

Used by the training tests: small enough for a few CPU steps, easy enough to learn in them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SPLIT_COLUMNS = [
    "path", "source", "patient_id", "finding", "label", "exclusion", "view", "modality", "sex", "age",
    "survival", "location", "date", "license", "severity_extent", "severity_opacity", "lung_mask",
    "dup_cluster", "group", "split",
]


def fake_xray(label: str, rng: np.random.Generator, side: int = 48) -> np.ndarray:
    """Two dark 'lungs' on grey; covid adds bright patches low in both lungs, pneumonia one big patch."""
    image = np.full((side, side), 0.55) + rng.normal(0, 0.04, (side, side))
    third = side // 3
    image[side // 6: side - side // 6, side // 8: side // 8 + third] -= 0.3
    image[side // 6: side - side // 6, side - side // 8 - third: side - side // 8] -= 0.3
    if label == "covid":
        image[side // 2: side - side // 5, side // 8: side - side // 8] += 0.35
    elif label == "pneumonia":
        image[side // 5: side // 2, side // 8: side // 2] += 0.35
    return np.clip(image, 0, 1).astype(np.float32)


def write_split(folder: Path, counts: dict[str, int], seed: int = 0, side: int = 48,
                labels: tuple[str, ...] = ("covid", "pneumonia", "normal"), sources: tuple[str, ...] = ("alpha", "beta")) -> Path:
    """PNG images and a split.csv with counts[part] images per label in each part."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for part, per_label in counts.items():
        for label in labels:
            for number in range(per_label):
                path = folder / f"{part}_{label}_{number}.png"
                Image.fromarray((fake_xray(label, rng, side) * 255).astype(np.uint8)).save(path)
                row = {column: "" for column in SPLIT_COLUMNS}
                row.update(path=str(path), source=sources[number % len(sources)], patient_id=f"p{part}{label}{number}",
                           finding=label, label=label, view="PA", modality="X-ray", split=part)
                rows.append(row)
    split_path = folder / "split.csv"
    pd.DataFrame(rows, columns=SPLIT_COLUMNS).to_csv(split_path, index=False)
    return split_path


#: Input side of the quick training runs: small enough for a few CPU steps.
QUICK_SIZE = 32


def quick_train_config(split_file, out, **changes):
    """A TrainConfig for a few quick CPU steps on a generated split; changes override any field."""
    from covidxray.training.loop import TrainConfig

    settings = dict(model="xray-cnn", task="binary", split=split_file, out=out, epochs=2, batch_size=8, size=QUICK_SIZE,
                    cache_dir=out.parent / "cache", threads=1, show_progress=False, lr=3e-3)
    settings.update(changes)
    return TrainConfig(**settings)

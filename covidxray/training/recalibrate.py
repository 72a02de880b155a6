"""Refit a checkpoint's calibration and decision threshold on its validation part.

For checkpoints made before the binary logit bias existed (temperature only), or trained from a
pack (validated on shrunk JPEG copies): the refit reads the original images, so the calibration
matches what predict will see. Only a validation part is accepted: fitting on test or external
would leak the figures that are meant to judge the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covidxray.console import progress
from covidxray.data.dataset import split_part, targets_for
from covidxray.data.schema import read_table
from covidxray.errors import CovidxrayError, DatasetError
from covidxray.hashing import sha256_file
from covidxray.inference.checkpoint import read_checkpoint, write_content
from covidxray.inference.classifier import load_checkpoint
from covidxray.inference.inputs import read_image_or_error, read_in_batches
from covidxray.training.calibration import fit_decision, task_auroc

REFUSED_PARTS = ("test", "external", "excluded")


__all__ = ["REFUSED_PARTS", "Recalibration", "recalibrate"]


@dataclass(frozen=True)
class Recalibration:
    """What a recalibration wrote and fitted, and on how many images."""

    path: Path
    images: int
    temperature: float
    bias: float
    threshold: float
    val_auroc: float


def recalibrate(checkpoint: str | Path, split: str | Path, out: str | Path, part: str = "val",
                batch_size: int = 32) -> Recalibration:
    """Write a copy of checkpoint whose temperature, bias and threshold are refitted on part, read from the
    original files (for checkpoints trained from a pack, or before the bias existed).

    Args:
        checkpoint: the checkpoint to recalibrate (kept as it is).
        split: the split CSV it was trained on.
        out: where the copy goes.
        part: the validation part to fit on; test, external and excluded are refused.
        batch_size: images per forward pass.

    Returns:
        The Recalibration: path written, images used, the fitted values and the part's AUROC.
    """
    if part in REFUSED_PARTS:
        raise CovidxrayError(f"refusing to calibrate on the '{part}' part: calibration and threshold are "
                             "fitted on validation only, so that test and external figures stay honest")
    content = read_checkpoint(checkpoint)
    classifier = load_checkpoint(checkpoint)
    rows = split_part(read_table(split), part, split)
    if len(rows) == 0:
        raise DatasetError(f"{split}: no labelled rows with split == '{part}'")
    paths, targets = rows["path"].tolist(), targets_for(rows["label"], classifier.task)
    logits, kept = [], []
    with progress() as bar:
        task = bar.add_task(f"predicting {part}", total=len(paths))
        for start, read in zip(range(0, len(paths), batch_size),
                               read_in_batches(paths, batch_size, reader=read_image_or_error)):
            images = [image for image, _ in read]
            good = [i for i, image in enumerate(images) if image is not None]
            if good:
                logits.append(classifier.logits([images[i] for i in good]))
                kept.extend(start + i for i in good)
            bar.advance(task, len(images))
    if not kept:
        raise DatasetError(f"{split}: none of the {len(paths)} '{part}' images could be read")
    logits_array, seen = np.concatenate(logits), targets[kept]
    temperature, bias, threshold = fit_decision(logits_array, seen, classifier.task, classifier.labels)
    content.update(temperature=temperature, logit_bias=bias, threshold=threshold)
    content["record"] = {**content.get("record", {}), "recalibrated_on": {
        "split_file": Path(split).name, "split_sha256": sha256_file(split), "part": part,
        "images": len(kept), "from_checkpoint_sha256": sha256_file(checkpoint)}}
    out = write_content(content, out)
    return Recalibration(out, len(kept), temperature, bias, threshold, task_auroc(logits_array, seen, classifier.task))

"""Score a lung segmenter against hand masks: Dice and 95% Hausdorff distance, CIs by patient.

Both are measured at each image's stored size (longest side at most 512 px in the shared data),
on the cleaned masks that LungSegmenter.mask returns, so the figures describe what users get.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from covidxray.evaluation.metrics import Estimate
from covidxray.lungs.segmenter import LungSegmenter, read_lung_mask
from covidxray.imaging.read import read_image
from covidxray.lungs.bootstrap import patient_bootstrap
from covidxray.lungs.mask_pairs import MaskedImage


@dataclass
class SegmentationScores:
    """Per-image Dice and HD95 (pixels) with the image names and patients they belong to."""

    names: list[str]
    patients: list[str]
    dice: np.ndarray
    hd95: np.ndarray

    def summary(self, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
        """Mean and median Dice, mean and median HD95 with patient-bootstrap 95% CIs; n counts the
        images where the metric is defined (HD95 needs both masks non-empty)."""
        figures = {}
        for name, values, statistic in (("dice_mean", self.dice, np.mean), ("dice_median", self.dice, np.median),
                                        ("hd95_mean_px", self.hd95, np.mean), ("hd95_median_px", self.hd95, np.median)):
            defined = np.isfinite(values)
            kept = values[defined]
            figures[name] = patient_bootstrap(lambda rows, v=kept, f=statistic: f(v[rows]),
                                              np.asarray(self.patients)[defined], resamples, seed)
        return figures


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(Dice, 95th-percentile Hausdorff distance in pixels) of two boolean masks of one size."""
    prediction = torch.from_numpy(np.asarray(predicted, dtype=np.float32))[None, None]
    reference = torch.from_numpy(np.asarray(truth, dtype=np.float32))[None, None]
    dice = float(compute_dice(prediction, reference, include_background=True)[0, 0])
    if not predicted.any() or not truth.any():
        return dice, float("nan")
    with warnings.catch_warnings():  # MONAI 1.5+ warns about one of its own internal arguments
        warnings.simplefilter("ignore", FutureWarning)
        hd95 = float(compute_hausdorff_distance(prediction, reference, include_background=True, percentile=95)[0, 0])
    return dice, hd95


def score_segmenter(segmenter: LungSegmenter, pairs: Sequence[MaskedImage]) -> SegmentationScores:
    """Run the segmenter on each pair's image and compare with its hand mask."""
    dice, hd95 = [], []
    for pair in pairs:
        image = read_image(pair.image)
        truth = read_lung_mask(pair.mask, image.shape)
        scores = mask_scores(segmenter.mask(image), truth)
        dice.append(scores[0])
        hd95.append(scores[1])
    return SegmentationScores([p.name for p in pairs], [p.patient_id for p in pairs], np.asarray(dice), np.asarray(hd95))

"""Shortcut audits: does the model see the hospital rather than the disease?

1. Source probe: a linear classifier, cross-validated by patient, predicts the data source from
   the model's penultimate features. Far above chance means the representation encodes the
   source, which on these collections is confounded with the label.
2. Lungs hidden / lungs only: with the lung fields blanked, a model that still separates the
   classes well above chance (AUROC 0.5) is reading cues outside the lungs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from covidxray.errors import ImageReadError
from covidxray.imaging.read import read_image


def source_probe(features: np.ndarray, sources: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """How well the features tell the data source apart: a shortcut the model may be using.

    Args:
        features: (n, d) penultimate features.
        sources: each row's source.
        groups: patient groups (folds never split one).
        folds: cross-validation folds.
        seed: seed of the folds.

    Returns:
        {applicable, balanced_accuracy, chance, n, ...}: patient-grouped CV balanced accuracy vs chance.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sources, groups = np.asarray(sources), np.asarray(groups)
    counts = pd.Series(sources).value_counts()
    usable = counts[counts >= folds].index
    keep = np.isin(sources, usable) & ~np.isnan(features).any(axis=1)
    if len(usable) < 2:
        return {"applicable": False, "reason": "fewer than two sources with enough images", "n": int(keep.sum())}
    x, y, g = features[keep], sources[keep], groups[keep]
    predicted = np.empty(len(y), dtype=object)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y, g):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced"))
        probe.fit(x[train], y[train])
        predicted[test] = probe.predict(x[test])
    return {
        "applicable": True,
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted.astype(str))),
        "chance": 1.0 / len(usable),
        "sources": sorted(map(str, usable)),
        "n": int(len(y)),
    }


def read_mask(path: str, shape: tuple[int, int]) -> np.ndarray:
    """A boolean lung mask at the image's shape (masks may be stored at another size)."""
    mask = read_image(path) > 0.5
    if mask.shape != shape:
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
        mask = np.asarray(resized) > 127
    return mask


def hide(image: np.ndarray, mask: np.ndarray, region: str) -> np.ndarray:
    """Blank part of the image with its mean, to see what the model reads there.

    Args:
        image: 2-D float [0, 1].
        mask: boolean lung mask, the image's size.
        region: 'lungs' blanks the lungs, 'outside' everything else.

    Returns:
        The altered copy.
    """
    out = image.copy()
    target = mask if region == "lungs" else ~mask
    out[target] = float(image.mean())
    return out


class LungMasks:
    """Each row's lung mask: the hand mask where the row has one, else the segmenter's, found once
    and kept bit-packed, since the lungs-hidden and lungs-only passes need the same masks."""

    def __init__(self, mask_paths: list[str], segmenter=None) -> None:
        self.mask_paths, self.segmenter = mask_paths, segmenter
        self._packed: dict[int, tuple[np.ndarray, tuple[int, int]]] = {}

    def get(self, index: int, image: np.ndarray) -> np.ndarray:
        if self.mask_paths[index]:
            return read_mask(self.mask_paths[index], image.shape)
        if index not in self._packed:
            self._packed[index] = (np.packbits(self.segmenter.mask(image)), image.shape)
        packed, shape = self._packed[index]
        return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)


def masked_transform(masks: LungMasks, region: str):
    """A transform for predict_paths that hides a region of each row's image using its lung mask."""
    def transform(image: np.ndarray, index: int) -> np.ndarray:
        return hide(image, masks.get(index, image), region)
    return transform


def readable_masks(mask_paths: list[str]) -> np.ndarray:
    """Which rows have a lung mask that can be read (checked up front, so audits never guess)."""
    ok = []
    for path in mask_paths:
        try:
            ok.append(bool(path) and read_image(path).max() > 0.5)
        except ImageReadError:
            ok.append(False)
    return np.array(ok, dtype=bool)


def mask_at_model_input(mask: np.ndarray, image: np.ndarray, preprocessing) -> np.ndarray:
    """The lung mask taken through the same geometry as the image, so the two align at the model's input.

    Args:
        mask: boolean lung mask, the image's size.
        image: the read image.
        preprocessing: the checkpoint's Preprocessing (lung or border crop, resize).

    Returns:
        Boolean mask (size, size).
    """
    import dataclasses

    from covidxray.imaging.preprocess import prepare_array

    values = mask.astype(np.float32)
    if preprocessing.lung_crop:
        from covidxray.lungs.segmenter import bundled_segmenter, lung_crop

        values = lung_crop(values, bundled_segmenter().mask(image))
    geometry = dataclasses.replace(preprocessing, equalise=False, lung_crop=False, hide_outside_lungs=False)
    return prepare_array(values, geometry) > 0.5


def cam_lung_share(classifier, images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """How much of the covid Grad-CAM map falls inside the lungs: evidence drawn from the lungs or not.

    The area share is what a map spread evenly would score, the chance level of the first figure.

    Args:
        classifier: a torch Classifier.
        images: read images, 2-D float [0, 1].
        masks: their boolean lung masks.

    Returns:
        (share of each map's mass inside the lungs, NaN for an empty map; share of the area the lungs take).
    """
    from covidxray.explain.gradcam import gradcam_maps

    shares, areas = [], []
    for image, mask in zip(images, masks):
        heat = gradcam_maps(classifier, [image], "covid")[0]
        lungs = mask_at_model_input(mask, image, classifier.preprocessing)
        if lungs.shape != heat.shape:
            resized = Image.fromarray(lungs.astype(np.uint8) * 255).resize(heat.shape[::-1], Image.Resampling.NEAREST)
            lungs = np.asarray(resized) > 127
        total = float(heat.sum())
        shares.append(float(heat[lungs].sum()) / total if total > 0 else np.nan)
        areas.append(float(lungs.mean()))
    return np.asarray(shares, float), np.asarray(areas, float)

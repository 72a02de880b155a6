"""Fit the input gate on the four collections (read through the project's readers) and save it.

Run: covidxray gate fit --data ../shared/data --out covidxray/weights/gate.npz --release
benchmarks/gate_generalisation.py measures it honestly: leave one collection out, per view, and
on a corpus of what must be refused or flagged (tests/refusal_corpus.py: test material, which
fitting never reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from covidxray.errors import ImageReadError
from covidxray.gate.runtime import THUMB_SIZE, GateModel, describe, is_blank, scene_likeness, scene_measures, verdict
from covidxray.imaging.read import read_image

#: Out-of-distribution: kept PCA components; warned above this share of held-out radiographs,
#: refused above REFUSE_MARGIN times the highest held-out score of the fitting collections.
OOD_COMPONENTS = 24
OOD_WARN_QUANTILE = 0.98
REFUSE_MARGIN = 1.5
#: Lateral and inversion detectors: PCA components of the thumbnail before the logistic regression.
DETECTOR_COMPONENTS = 24
LATERAL_WARN = 0.3
LATERAL_REFUSE = 0.95
INVERTED_WARN = 0.5
FRAGMENT_WARN = 0.5
#: Fragments the fragment detector learns from: a crop of this share of each side of a frontal image.
FRAGMENT_SHARE = (0.2, 0.45)
FOLDS = 5
SEED = 20200601
#: Images sampled per collection (all of the COVID-19 collection's X-rays are kept).
PER_COLLECTION = 1500
COHEN = "covid-chestxray-dataset"


@dataclass
class Radiograph:
    """One real image: what the gate sees of it (describe()) upright and inverted, its view
    ('frontal' or 'lateral'), the manifest's view, collection and patient group, and how much it
    looks like a photograph of a scene (runtime.scene_likeness; not fitted, measured for verdicts)."""

    pixels: np.ndarray
    stats: np.ndarray
    inverted: tuple[np.ndarray, np.ndarray]
    fragment: tuple[np.ndarray, np.ndarray]
    view: str
    manifest_view: str
    collection: str
    group: str
    blank: bool
    path: str
    scene: float = float("-inf")


def manifest_rows(data: Path, per_collection: int = PER_COLLECTION, seed: int = SEED):
    """X-ray rows of the manifest (all four collections) whose view is frontal or lateral and whose file exists.

    darkcovidnet's Covid-19 folder is left out: it copies images of the COVID-19 collection.

    Args:
        data: the folder holding the collections.
        per_collection: a collection with more such rows is sampled.
        seed: seed of the sample.

    Returns:
        The manifest rows.
    """
    import pandas as pd

    from covidxray.data.manifest import build_manifest
    from covidxray.data.schema import is_frontal

    manifest = build_manifest([Path(data)])
    keep = (manifest["modality"] == "X-ray") & ~((manifest["source"] == "darkcovidnet") & (manifest["finding"] == "Covid-19"))
    keep &= manifest["view"].map(is_frontal) | (manifest["view"].str.upper() == "L")
    rows = manifest[keep & manifest["path"].map(lambda p: Path(p).is_file())]
    rng = np.random.default_rng(seed)
    parts = []
    for _, part in rows.groupby("source", sort=True):
        if len(part) > per_collection:
            part = part.iloc[np.sort(rng.choice(len(part), per_collection, replace=False))]
        parts.append(part)
    return pd.concat(parts).reset_index(drop=True)


def load_radiographs(data: Path, per_collection: int = PER_COLLECTION) -> list[Radiograph]:
    """Read and describe the manifest_rows images (groups: patient_id, else the file)."""
    radiographs = []
    rng = np.random.default_rng(SEED + 3)
    for row in manifest_rows(data, per_collection).itertuples():
        try:
            image = read_image(row.path)
        except ImageReadError as error:
            print(f"skipped: {error}")
            continue
        view = "lateral" if row.view.upper() == "L" else "frontal"
        radiographs.append(Radiograph(*describe(image), describe(1.0 - image), describe(random_fragment(image, rng)),
                                      view, row.view, row.source,
                                      row.patient_id or row.path, is_blank(image)[0], row.path,
                                      scene_likeness(scene_measures(image))))
    return radiographs


def random_fragment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of FRAGMENT_SHARE of each side: what a heavily cropped radiograph looks like."""
    height, width = image.shape
    fh, fw = (max(8, int(side * rng.uniform(*FRAGMENT_SHARE))) for side in (height, width))
    top, left = int(rng.integers(0, height - fh + 1)), int(rng.integers(0, width - fw + 1))
    return image[top: top + fh, left: left + fw]


def _ood_parts(pixels: np.ndarray, stats: np.ndarray) -> dict:
    """Probabilistic PCA of the thumbnails and a shrunk Gaussian of the statistics."""
    pca = PCA(n_components=OOD_COMPONENTS, random_state=SEED).fit(pixels)
    total = float(pixels.var(axis=0, ddof=1).sum())
    residual = max(total - float(pca.explained_variance_.sum()), 1e-8) / (pixels.shape[1] - OOD_COMPONENTS)
    gaussian = LedoitWolf().fit(stats)
    return dict(mean=pca.mean_, components=pca.components_, variances=pca.explained_variance_,
                residual_variance=residual, stats_mean=gaussian.location_, stats_precision=gaussian.precision_)


def _score(parts: dict, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    return _model(parts).ood_score(pixels, stats)


def _model(parts: dict, **rest) -> GateModel:
    size = THUMB_SIZE * THUMB_SIZE + len(parts["stats_mean"])
    values = dict(ood_warn=np.inf, ood_refuse=np.inf, lateral_weights=np.zeros(size), lateral_bias=-50.0,
                  lateral_warn=LATERAL_WARN, lateral_refuse=LATERAL_REFUSE, inverted_weights=np.zeros(size),
                  inverted_bias=-50.0, inverted_warn=INVERTED_WARN, fragment_weights=np.zeros(size),
                  fragment_bias=-50.0, fragment_warn=FRAGMENT_WARN)
    values.update(rest)
    return GateModel(**parts, **values)


def fit_linear_detector(pixels: np.ndarray, stats: np.ndarray, labels: np.ndarray, mirror: bool) -> tuple[np.ndarray, float]:
    """PCA of the thumbnail + the statistics -> balanced logistic regression, folded into one linear
    function of gate.features(pixels, stats), which the runtime evaluates without scikit-learn.

    Args:
        pixels: (n, THUMB_SIZE**2) standardised thumbnails.
        stats: (n, statistics) texture statistics.
        labels: boolean, the class to detect.
        mirror: add left-right mirrored copies (laterals face either way; the statistics do not
            change under mirroring).

    Returns:
        (weights over features(pixels, stats), bias).
    """
    if mirror:
        flipped = pixels.reshape(-1, THUMB_SIZE, THUMB_SIZE)[:, :, ::-1].reshape(len(pixels), -1)
        pixels, stats, labels = np.concatenate([pixels, flipped]), np.concatenate([stats, stats]), np.concatenate([labels, labels])
    pca = PCA(n_components=DETECTOR_COMPONENTS, random_state=SEED).fit(pixels)
    inputs = np.hstack([pca.transform(pixels), stats])
    centre, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-9
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000).fit((inputs - centre) / scale, labels.astype(int))
    coef = classifier.coef_[0] / scale
    bias = float(classifier.intercept_[0] - coef @ centre)
    k = DETECTOR_COMPONENTS
    pixel_weights = pca.components_.T @ coef[:k]
    bias -= float(pixel_weights @ pca.mean_)
    return np.concatenate([pixel_weights, coef[k:]]), bias


def fit_gate(radiographs: list[Radiograph]) -> GateModel:
    """The whole fitted gate from these radiographs (frontal ones for the score; laterals as they come).

    Thresholds: ood_warn = OOD_WARN_QUANTILE of patient-grouped out-of-fold scores; ood_refuse =
    REFUSE_MARGIN x the highest out-of-fold score.
    """
    frontal = [r for r in radiographs if r.view == "frontal"]
    pixels, stats = np.stack([r.pixels for r in frontal]), np.stack([r.stats for r in frontal])
    groups = np.array([r.group for r in frontal])
    out_of_fold = np.empty(len(frontal))
    for train, held_out in GroupKFold(FOLDS).split(pixels, groups=groups):
        out_of_fold[held_out] = _score(_ood_parts(pixels[train], stats[train]), pixels[held_out], stats[held_out])
    parts = _ood_parts(pixels, stats)
    all_pixels = np.stack([r.pixels for r in radiographs])
    all_stats = np.stack([r.stats for r in radiographs])
    is_lateral = np.array([r.view == "lateral" for r in radiographs])
    lateral_weights, lateral_bias = fit_linear_detector(all_pixels, all_stats, is_lateral, mirror=True)
    inverted_pixels = np.stack([r.inverted[0] for r in frontal])
    inverted_stats = np.stack([r.inverted[1] for r in frontal])
    inverted_weights, inverted_bias = fit_linear_detector(
        np.concatenate([pixels, inverted_pixels]), np.concatenate([stats, inverted_stats]),
        np.r_[np.zeros(len(frontal)), np.ones(len(frontal))], mirror=False)
    fragment_pixels = np.stack([r.fragment[0] for r in frontal])
    fragment_stats = np.stack([r.fragment[1] for r in frontal])
    fragment_weights, fragment_bias = fit_linear_detector(
        np.concatenate([pixels, fragment_pixels]), np.concatenate([stats, fragment_stats]),
        np.r_[np.zeros(len(frontal)), np.ones(len(frontal))], mirror=True)
    return _model(parts, fragment_weights=fragment_weights, fragment_bias=fragment_bias, ood_warn=float(np.quantile(out_of_fold, OOD_WARN_QUANTILE)),
                  ood_refuse=float(REFUSE_MARGIN * out_of_fold.max()),
                  lateral_weights=lateral_weights, lateral_bias=lateral_bias,
                  inverted_weights=inverted_weights, inverted_bias=inverted_bias)


def verdicts(model: GateModel, radiographs: list[Radiograph]) -> list[str]:
    """'ok', 'warning' or 'refused' for each radiograph, as assess_input would decide from its features."""
    pixels = np.stack([r.pixels for r in radiographs])
    stats = np.stack([r.stats for r in radiographs])
    score = model.ood_score(pixels, stats)
    lateral = model.lateral_probability(pixels, stats)
    inverted = model.inverted_probability(pixels, stats)
    fragment = model.fragment_probability(pixels, stats)
    found = []
    for r, s, p, q, f in zip(radiographs, score, lateral, inverted, fragment):
        flags = (["blank"] if r.blank else []) + model.flags(s, p, q, f, r.scene)
        found.append(verdict(flags).status)
    return found

"""Fit and honestly score the severity model: patient-grouped cross-validation, then a fit on all.

Figures (MAE, Pearson r, R², 95% CIs by patient bootstrap) stand beside a predict-the-mean
baseline computed inside the same folds, and beside the published anchor, a different protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold

from covidxray.data.sources import cohen
from covidxray.errors import DatasetError
from covidxray.imaging.read import read_image
from covidxray.lungs.bootstrap import patient_bootstrap
from covidxray.lungs.severity import FEATURE_NAMES, SeverityModel, classifier_feature_names, severity_features

TARGETS = ("extent", "opacity")
#: Cohen et al. 2020 (REFERENCES.md): MAE on 94 images of the same collection, their own protocol.
PUBLISHED_MAE = {"extent": 1.14, "opacity": 0.78}
ANCHOR_NOTE = ("Published anchor: Cohen et al. 2020, MAE extent 1.14 / opacity 0.78 on 94 images of the same "
               "collection with their own features and protocol - a different protocol, not measured on our folds.")
RIDGE_ALPHAS = np.logspace(-1, 3, 17)


@dataclass
class ScoredImages:
    """Images with radiologists' scores: names, patients, features (N, F) and scores (N, 2); with a
    classifier, its penultimate features follow the lung features and classifier_sha256 names it."""

    names: list[str]
    patients: np.ndarray
    features: np.ndarray
    scores: np.ndarray
    classifier_sha256: str = ""

    @property
    def classifier_features(self) -> int:
        """How many of the features are the classifier's (0: lung features only)."""
        return self.features.shape[1] - len(FEATURE_NAMES)

    def lungs_only(self) -> "ScoredImages":
        """The same images with the lung features alone: the comparison a classifier's features must beat."""
        return ScoredImages(self.names, self.patients, self.features[:, :len(FEATURE_NAMES)], self.scores)


@dataclass
class FitResult:
    """What `covidxray severity fit` prints: a header line and the figures table."""

    header: str
    table: pd.DataFrame
    model: SeverityModel


def load_scored_images(root: Path, segmenter_path: Path | None = None, classifier_path: Path | None = None) -> ScoredImages:
    """Every image of covid-severity-scores.csv present in root/images, with the features prediction sees.

    Features are measured on the segmenter's lung mask (as at prediction time, not the hand mask),
    followed, given a classifier checkpoint, by its penultimate features of the same image.

    Args:
        root: the covid-chestxray-dataset folder.
        segmenter_path: lung-segmenter weights; None for the bundled ones.
        classifier_path: a checkpoint whose features are appended; None for lungs only.

    Returns:
        ScoredImages.
    """
    from covidxray.lungs.segmenter import LungSegmenter

    root = Path(root)
    severity = cohen.read_severity(root / cohen.SEVERITY_FILE)
    if not severity:
        raise DatasetError(f"{root / cohen.SEVERITY_FILE}: no severity scores found")
    patient_of = {}
    if cohen.detect(root):
        for row in cohen.read(root):
            patient_of.setdefault(Path(row["path"]).name, row["patient_id"])
    segmenter = LungSegmenter.load(segmenter_path)
    names, patients, features, scores, images = [], [], [], [], []
    for filename, (extent, opacity) in sorted(severity.items()):
        path = root / "images" / filename
        if not path.is_file() or not extent or not opacity:
            continue
        image = read_image(path)
        features.append(severity_features(image, segmenter.mask(image)))
        if classifier_path is not None:
            images.append(image)
        names.append(filename)
        patients.append(patient_of.get(filename) or f"image:{filename}")
        scores.append((float(extent), float(opacity)))
    if len(names) < 10:
        raise DatasetError(f"{root}: only {len(names)} scored images found in images/; need at least 10")
    data = ScoredImages(names, np.asarray(patients), np.asarray(features), np.asarray(scores))
    return with_classifier_features(data, images, classifier_path) if classifier_path is not None else data


def with_classifier_features(data: ScoredImages, images: list[np.ndarray], classifier_path: Path) -> ScoredImages:
    """data with a classifier's penultimate features of its images appended, tied to the checkpoint's sha256.

    Args:
        data: the scored images' lung features.
        images: the same images, read.
        classifier_path: the checkpoint.

    Returns:
        ScoredImages with the wider feature matrix.
    """
    from covidxray.hashing import sha256_file
    from covidxray.inference.classifier import load_checkpoint

    _, extra = load_checkpoint(classifier_path).outputs(images)
    return ScoredImages(data.names, data.patients, np.hstack([data.features, extra.astype(np.float64)]), data.scores,
                        sha256_file(classifier_path))


def fit_model(features: np.ndarray, scores: np.ndarray, classifier_sha256: str = "") -> SeverityModel:
    """Standardise, then a ridge regression per score with alpha chosen by leave-one-out on these rows.

    Args:
        features: (N, F) features; those past the lung features are a classifier's.
        scores: (N, 2) extent and opacity.
        classifier_sha256: the classifier whose features the model reads ('' for lungs only).

    Returns:
        SeverityModel.
    """
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    standard = (features - mean) / scale
    coefficients, intercepts = [], []
    for column in range(scores.shape[1]):
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(standard, scores[:, column])
        coefficients.append(ridge.coef_)
        intercepts.append(ridge.intercept_)
    names = FEATURE_NAMES + classifier_feature_names(features.shape[1] - len(FEATURE_NAMES))
    return SeverityModel(mean, scale, np.asarray(coefficients), np.asarray(intercepts), names, classifier_sha256)


def cross_validate(data: ScoredImages, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of the model and of the mean baseline; folds never split a patient.

    Args:
        data: the scored images.
        folds: patient-grouped folds.
        seed: seed of the folds.

    Returns:
        (model, mean-baseline) predictions, each (N, 2).
    """
    model_out = np.zeros_like(data.scores)
    baseline_out = np.zeros_like(data.scores)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_rows, test_rows in splitter.split(data.features, groups=data.patients):
        model = fit_model(data.features[train_rows], data.scores[train_rows])
        model_out[test_rows] = model.predict_features(data.features[test_rows])
        baseline_out[test_rows] = data.scores[train_rows].mean(axis=0)
    return model_out, baseline_out


def mae(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(truth - predicted)))


def pearson_r(truth: np.ndarray, predicted: np.ndarray) -> float:
    if np.std(truth) < 1e-12 or np.std(predicted) < 1e-12:
        return float("nan")
    return float(np.corrcoef(truth, predicted)[0, 1])


def r_squared(truth: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SSE / SST around the evaluated rows' own mean (negative when worse than that mean)."""
    total = np.sum((truth - truth.mean()) ** 2)
    return float(1 - np.sum((truth - predicted) ** 2) / total) if total > 0 else float("nan")


def _cell(estimate) -> str:
    if np.isnan(estimate.value):
        return "-"
    return f"{estimate.value:.2f} [{estimate.ci_low:.2f}, {estimate.ci_high:.2f}]"


def figures_table(data: ScoredImages, models: dict[str, np.ndarray], baseline_out: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """One row per (score, predictor): MAE, Pearson r, R² with patient-bootstrap CIs, then the anchor.

    The MAE gain of the last (the fitted) model over the baseline and over each other model is given.

    Args:
        data: the scored images.
        models: label -> out-of-fold predictions (N, 2).
        baseline_out: the mean baseline's out-of-fold predictions.
        seed: seed of the bootstrap.

    Returns:
        The table printed and quoted in docs/lungs-and-severity.md.
    """
    rows = []
    patients = len(set(data.patients))
    fitted = list(models)[-1]
    for column, target in enumerate(TARGETS):
        truth = data.scores[:, column]
        compared = [(label, out[:, column]) for label, out in models.items()] + [("mean baseline (in CV)", baseline_out[:, column])]
        for predictor, predicted in compared:
            figures = {name: patient_bootstrap(lambda rows, f=function: f(truth[rows], predicted[rows]), data.patients, seed=seed)
                       for name, function in (("MAE", mae), ("Pearson r", pearson_r), ("R²", r_squared))}
            if predictor.startswith("mean baseline"):
                figures["Pearson r"].value = float("nan")  # constant within each fold: r is meaningless
            rows.append({"score": target, "predictor": predictor, **{k: _cell(v) for k, v in figures.items()},
                         "images": len(truth), "patients": patients})
        others = {"baseline": baseline_out} | {label: out for label, out in models.items() if label != fitted}
        for other, out in others.items():
            gain = patient_bootstrap(lambda rows, o=out: mae(truth[rows], o[rows, column]) - mae(truth[rows], models[fitted][rows, column]),
                                     data.patients, seed=seed)
            rows.append({"score": target, "predictor": f"MAE gain vs {other}", "MAE": _cell(gain), "Pearson r": "-", "R²": "-",
                         "images": len(truth), "patients": patients})
        rows.append({"score": target, "predictor": "Cohen 2020, OTHER protocol",
                     "MAE": f"{PUBLISHED_MAE[target]:.2f}", "Pearson r": "-", "R²": "-", "images": 94, "patients": "-"})
    return pd.DataFrame(rows)


LUNGS_ONLY = "ridge, lung features"
WITH_CLASSIFIER = "ridge, lung + classifier features"


def fit_severity(root: Path, out: Path, segmenter_path: Path | None = None, folds: int = 5, seed: int = 0,
                 classifier_path: Path | None = None) -> FitResult:
    """Cross-validate, fit on all scored images, save to out (what `covidxray severity fit` runs).

    With a classifier, the lungs-only model is cross-validated beside it on the same folds.

    Args:
        root: the covid-chestxray-dataset folder.
        out: the severity model to write (.npz).
        segmenter_path: lung-segmenter weights; None for the bundled ones.
        folds: patient-grouped folds.
        seed: seed of the folds and bootstrap.
        classifier_path: a checkpoint whose features the model also reads.

    Returns:
        FitResult: the figures to print.
    """
    data = load_scored_images(root, segmenter_path, classifier_path)
    model_out, baseline_out = cross_validate(data, folds, seed)
    models = {LUNGS_ONLY: model_out}
    if data.classifier_features:
        models = {LUNGS_ONLY: cross_validate(data.lungs_only(), folds, seed)[0], WITH_CLASSIFIER: model_out}
    table = figures_table(data, models, baseline_out, seed)
    model = fit_model(data.features, data.scores, data.classifier_sha256)
    model.save(out, fitted_on=np.array(data.names), cv_figures=np.array(table.astype(str).to_csv(index=False)))
    header = (f"{len(data.names)} scored images of {len(set(data.patients))} patients; {folds}-fold cross-validation "
              f"grouped by patient; {len(FEATURE_NAMES)} lung features from the segmenter's masks")
    if data.classifier_features:
        header += (f", then {data.classifier_features} penultimate features of the classifier "
                   f"{Path(classifier_path).name} (sha256 {data.classifier_sha256[:12]}), to which the saved model is tied")
    return FitResult(header, table, model)

"""Classification metrics from labels and probabilities, each with its n and a 95% CI.

Decisions come from the checkpoint's rule (binary: p_covid >= the validation threshold;
3-class: the most probable label), never from an argmax over a single sigmoid output, which
is how the seed study's confusion matrix collapsed to one class. Confidence intervals come
from a bootstrap that resamples patients, since images of one patient are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from covidxray.inference.decision import decide  # noqa: F401 - the one rule; evaluation decides through it

CONFIDENCE = 0.95


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def _area(kind, is_positive: np.ndarray, score: np.ndarray) -> float:
    if is_positive.min(initial=1) == is_positive.max(initial=0):
        return float("nan")
    return float(kind(is_positive, score))


def one_vs_rest(is_positive: np.ndarray, predicted_positive: np.ndarray, score: np.ndarray) -> dict[str, tuple[float, int]]:
    """The metrics of one class against the rest.

    Args:
        is_positive: boolean truth for the class.
        predicted_positive: boolean decision for the class.
        score: the class's probability (for the areas under the curves).

    Returns:
        {metric: (value, n)}, n the denominator of each.
    """
    tp = int(np.sum(is_positive & predicted_positive))
    fp = int(np.sum(~is_positive & predicted_positive))
    fn = int(np.sum(is_positive & ~predicted_positive))
    tn = int(np.sum(~is_positive & ~predicted_positive))
    precision, sensitivity = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    n = len(is_positive)
    return {
        "precision": (precision, tp + fp),
        "sensitivity": (sensitivity, tp + fn),
        "specificity": (_ratio(tn, tn + fp), tn + fp),
        "npv": (_ratio(tn, tn + fn), tn + fn),
        "f1": (f1, n),
        "roc_auc": (_area(roc_auc_score, is_positive, score), n),
        "pr_auc": (_area(average_precision_score, is_positive, score), n),
    }


def point_metrics(truth: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], threshold: float) -> dict[str, tuple[float, int]]:
    """Every metric of the task at the decision rule; binary reports covid as the positive class.

    Args:
        truth: class index per row (the checkpoint's label order).
        proba: (n, classes) calibrated probabilities.
        labels: the checkpoint's labels.
        threshold: the binary decision threshold on p(covid).

    Returns:
        {name: (value, n)}.
    """
    truth = np.asarray(truth, dtype=int)
    predicted = decide(proba, labels, threshold)
    results: dict[str, tuple[float, int]] = {"accuracy": (_ratio(np.sum(predicted == truth), len(truth)), len(truth))}
    if len(labels) == 2:
        covid = labels.index("covid")
        results.update(one_vs_rest(truth == covid, predicted == covid, proba[:, covid]))
        return results
    per_class = {}
    for index, label in enumerate(labels):
        per_class[label] = one_vs_rest(truth == index, predicted == index, proba[:, index])
        results.update({f"{label}/{name}": value for name, value in per_class[label].items()})
    for name in ("precision", "sensitivity", "specificity", "f1", "roc_auc", "pr_auc"):
        values = [per_class[label][name][0] for label in labels]
        results[f"macro/{name}"] = (float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan"), len(truth))
    return results


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """The confusion matrix in counts.

    Args:
        truth: class index per row.
        predicted: predicted class index per row.
        classes: number of classes.

    Returns:
        (classes, classes) counts: rows the true class, columns the predicted class.
    """
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


@dataclass
class Estimate:
    """A metric's value with its n and percentile-bootstrap 95% interval over patients."""

    value: float
    n: int
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {"value": self.value, "n": self.n, "ci_low": self.ci_low, "ci_high": self.ci_high}

    def __str__(self) -> str:
        if np.isnan(self.value):
            return f"n/a (n={self.n})"
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] (n={self.n})"


def patient_resamples(patients: np.ndarray, resamples: int = 1000, seed: int = 0) -> Iterator[np.ndarray]:
    """Bootstrap samples that draw whole patients with replacement, so the interval covers which patients were drawn.

    Args:
        patients: the patient (group) of each row.
        resamples: number of samples.
        seed: seed of the draws.

    Returns:
        An iterator of row-index arrays (none when there are no rows).
    """
    _, patient_index = np.unique(np.asarray(patients, dtype=str), return_inverse=True)
    members = [np.flatnonzero(patient_index == k) for k in range(patient_index.max(initial=-1) + 1)]
    rng = np.random.default_rng(seed)
    for _ in range(resamples if members else 0):
        chosen = rng.integers(0, len(members), len(members))
        yield np.concatenate([members[k] for k in chosen])


def patient_bootstrap(truth: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], threshold: float,
                      patients: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Point metrics plus 95% CIs from resampling whole patients with replacement.

    Args:
        truth: class index per row.
        proba: (n, classes) calibrated probabilities.
        labels: the checkpoint's labels.
        threshold: the binary decision threshold.
        patients: the patient (group) of each row.
        resamples: bootstrap samples.
        seed: seed of the draws.

    Returns:
        {metric: Estimate}.
    """
    truth, proba = np.asarray(truth, int), np.asarray(proba, float)
    point = point_metrics(truth, proba, labels, threshold)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for rows in patient_resamples(patients, resamples, seed):
        sample = point_metrics(truth[rows], proba[rows], labels, threshold)
        for name, (value, _) in sample.items():
            draws[name].append(value)
    tail = (1 - CONFIDENCE) / 2 * 100
    estimates = {}
    for name, (value, n) in point.items():
        values = np.asarray(draws[name], dtype=float)
        values = values[~np.isnan(values)]
        low, high = (np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan, np.nan))
        estimates[name] = Estimate(float(value), int(n), float(low), float(high))
    return estimates


def bootstrap_estimate(statistic: Callable[[np.ndarray], float], patients: np.ndarray,
                       resamples: int = 1000, seed: int = 0) -> Estimate:
    """Any statistic of a set of rows, with a patient-bootstrap 95% interval.

    Args:
        statistic: row indices -> the figure.
        patients: the patient (group) of each row.
        resamples: bootstrap samples.
        seed: seed of the draws.

    Returns:
        Estimate (value on all rows, interval, n rows).
    """
    patients = np.asarray(patients)
    value = float(statistic(np.arange(len(patients))))
    draws = np.asarray([statistic(rows) for rows in patient_resamples(patients, resamples, seed)], dtype=float)
    draws = draws[~np.isnan(draws)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return Estimate(value, int(len(patients)), float(low), float(high))


def auroc_estimate(is_positive: np.ndarray, score: np.ndarray, patients: np.ndarray,
                   resamples: int = 1000, seed: int = 0) -> Estimate:
    """AUROC of score for is_positive, with its patient-bootstrap CI.

    Args:
        is_positive: boolean truth.
        score: higher means more likely positive.
        patients: the patient (group) of each row.
        resamples: bootstrap samples.
        seed: seed of the draws.

    Returns:
        Estimate; NaN when one class is absent.
    """
    is_positive, score = np.asarray(is_positive, bool), np.asarray(score, float)
    return bootstrap_estimate(lambda rows: _area(roc_auc_score, is_positive[rows], score[rows]), patients, resamples, seed)

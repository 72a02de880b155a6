"""What is fitted on the validation split after training: decision threshold and temperature.

Both go into the checkpoint; the test and external parts are never looked at here.
"""

from __future__ import annotations

import numpy as np
import torch


def probabilities(logits: np.ndarray, task: str, temperature: float = 1.0) -> np.ndarray:
    """Logits -> class probabilities (N, classes); binary gives [p_not_covid, p_covid]."""
    scaled = torch.as_tensor(np.asarray(logits, dtype=np.float32)) / float(temperature)
    if task == "binary":
        p_covid = torch.sigmoid(scaled.reshape(-1))
        return torch.stack([1 - p_covid, p_covid], dim=1).numpy()
    return torch.softmax(scaled, dim=1).numpy()


def covid_probability(logits: np.ndarray, task: str, temperature: float = 1.0) -> np.ndarray:
    """p(covid) per image: column 'covid' of the task's probabilities."""
    proba = probabilities(logits, task, temperature)
    return proba[:, 1] if task == "binary" else proba[:, 0]


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, task: str, temperature: float) -> float:
    proba = probabilities(logits, task, temperature)
    chosen = proba[np.arange(len(targets)), targets] if task != "binary" else np.where(targets == 1, proba[:, 1], proba[:, 0])
    return float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0))))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, task: str) -> float:
    """The temperature in [0.05, 20] that minimises validation NLL (1.0 when val is empty)."""
    if len(targets) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
    losses = [negative_log_likelihood(logits, targets, task, t) for t in grid]
    return float(grid[int(np.argmin(losses))])


def youden_threshold(p_covid: np.ndarray, is_covid: np.ndarray) -> float:
    """p(covid) cut-off maximising sensitivity + specificity - 1 on validation (0.5 if undefined)."""
    from sklearn.metrics import roc_curve

    is_covid = np.asarray(is_covid).astype(int)
    if len(np.unique(is_covid)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(is_covid, p_covid)
    best = int(np.argmax(tpr - fpr))
    return float(np.clip(thresholds[best], 0.0, 1.0))


def auroc(is_positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    is_positive = np.asarray(is_positive).astype(int)
    if len(np.unique(is_positive)) < 2:
        return float("nan")
    return float(roc_auc_score(is_positive, score))


def task_auroc(logits: np.ndarray, targets: np.ndarray, task: str) -> float:
    """Binary: AUROC of covid vs rest; 3class: macro one-vs-rest AUROC over present classes."""
    if task == "binary":
        return auroc(targets == 1, covid_probability(logits, task))
    proba = probabilities(logits, task)
    scores = [auroc(targets == k, proba[:, k]) for k in range(proba.shape[1])]
    scores = [s for s in scores if not np.isnan(s)]
    return float(np.mean(scores)) if scores else float("nan")

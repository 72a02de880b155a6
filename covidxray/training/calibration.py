"""What is fitted on the validation split after training: decision threshold and calibration.

Calibration is a temperature T and, for the binary task, a logit bias b (Platt scaling):
p(covid) = sigmoid(logit / T + b). The bias matters: training weights the rarer class up, which
shifts every logit, and a temperature alone cannot undo a shift. All go into the checkpoint; the
test and external parts are never looked at here. Applying them is covidxray.inference.calibration's job.
"""

from __future__ import annotations

import numpy as np

from covidxray.inference.calibration import covid_probability, probabilities

__all__ = ["auroc", "covid_probability", "fit_calibration", "fit_decision", "fit_temperature", "negative_log_likelihood",
           "task_auroc", "youden_threshold"]


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, task: str, temperature: float,
                            bias: float = 0.0) -> float:
    """Mean negative log-likelihood of the targets under calibrated probabilities: what calibration minimises.

    Args:
        logits: (N, outputs) raw network outputs.
        targets: (N,) 0/1 (binary) or class indices.
        task: binary or 3class.
        temperature: divides the logits.
        bias: added to the binary logit after the temperature.

    Returns:
        The mean NLL (probabilities clipped at 1e-7).
    """
    proba = probabilities(logits, task, temperature, bias)
    chosen = proba[np.arange(len(targets)), targets] if task != "binary" else np.where(targets == 1, proba[:, 1], proba[:, 0])
    return float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0))))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, task: str) -> float:
    """The temperature in [0.05, 20] that minimises validation NLL (1.0 when val is empty).

    Args:
        logits: (N, outputs) validation logits.
        targets: (N,) validation targets.
        task: binary or 3class.

    Returns:
        The temperature, from a log-spaced grid.
    """
    if len(targets) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
    losses = [negative_log_likelihood(logits, targets, task, t) for t in grid]
    return float(grid[int(np.argmin(losses))])


def fit_calibration(logits: np.ndarray, targets: np.ndarray, task: str) -> tuple[float, float]:
    """(temperature, bias) minimising validation NLL; bias only for binary (0.0 for 3class).

    Temperature stays in [0.05, 20] and bias in [-10, 10]; starts from the best temperature alone.

    Args:
        logits: (N, outputs) validation logits.
        targets: (N,) validation targets.
        task: binary or 3class.

    Returns:
        (temperature, bias).
    """
    temperature = fit_temperature(logits, targets, task)
    if task != "binary" or len(targets) == 0 or len(np.unique(targets)) < 2:
        return temperature, 0.0
    from scipy.optimize import minimize

    bounds = [(np.log(0.05), np.log(20.0)), (-10.0, 10.0)]
    values = np.asarray(logits, dtype=np.float64).reshape(-1)
    signs = np.where(np.asarray(targets) == 1, 1.0, -1.0)

    def loss(x: np.ndarray) -> float:  # -mean log sigmoid(sign * (logit / T + b)), in float64
        return float(np.mean(np.logaddexp(0.0, -signs * (values / np.exp(x[0]) + x[1]))))

    start = np.array([np.log(temperature), 0.0])
    found = minimize(loss, x0=start, method="L-BFGS-B", bounds=bounds)
    if not np.isfinite(found.fun) or found.fun > loss(start):
        return temperature, 0.0
    return float(np.exp(found.x[0])), float(found.x[1])


def fit_decision(logits: np.ndarray, targets: np.ndarray, task: str, labels) -> tuple[float, float, float]:
    """(temperature, bias, threshold) from validation: the calibration, then the Youden cut-off on
    the calibrated p(covid), so a checkpoint's decision is fitted where its epoch was chosen.

    Args:
        logits: (N, outputs) validation logits.
        targets: (N,) validation targets.
        task: binary or 3class.
        labels: the task's labels (where 'covid' sits for 3class).

    Returns:
        (temperature, bias, threshold on the calibrated p(covid)).
    """
    temperature, bias = fit_calibration(logits, targets, task)
    is_covid = targets == (list(labels).index("covid") if task == "3class" else 1)
    return temperature, bias, youden_threshold(covid_probability(logits, task, temperature, bias), is_covid)


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
    """Binary: AUROC of covid vs rest; 3class: macro one-vs-rest AUROC over present classes.

    Args:
        logits: (N, outputs) logits.
        targets: (N,) targets.
        task: binary or 3class.

    Returns:
        The AUROC; NaN when no class can be scored.
    """
    if task == "binary":
        return auroc(targets == 1, covid_probability(logits, task))
    proba = probabilities(logits, task)
    scores = [auroc(targets == k, proba[:, k]) for k in range(proba.shape[1])]
    scores = [s for s in scores if not np.isnan(s)]
    return float(np.mean(scores)) if scores else float("nan")

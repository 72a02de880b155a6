"""How far the predicted probabilities are from observed frequencies: ECE, Brier, reliability bins."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10


def reliability_table(is_positive: np.ndarray, probability: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Per equal-width bin of predicted probability: count, mean prediction, observed frequency.

    Args:
        is_positive: boolean truth.
        probability: predicted probability of the positive class.
        bins: number of equal-width bins on [0, 1].

    Returns:
        One row per non-empty bin.
    """
    is_positive, probability = np.asarray(is_positive, float), np.asarray(probability, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    rows = []
    for index in range(bins):
        inside = which == index
        rows.append({
            "bin_low": edges[index], "bin_high": edges[index + 1], "count": int(inside.sum()),
            "mean_predicted": float(probability[inside].mean()) if inside.any() else float("nan"),
            "observed": float(is_positive[inside].mean()) if inside.any() else float("nan"),
        })
    return pd.DataFrame(rows)


def expected_calibration_error(is_positive: np.ndarray, probability: np.ndarray, bins: int = BINS) -> float:
    """Count-weighted mean |observed - predicted| over the bins.

    Args:
        is_positive: boolean truth.
        probability: predicted probability of the positive class.
        bins: number of equal-width bins on [0, 1].

    Returns:
        The ECE, 0 for a perfectly calibrated model.
    """
    table = reliability_table(is_positive, probability, bins)
    filled = table[table["count"] > 0]
    if filled.empty:
        return float("nan")
    gaps = (filled["observed"] - filled["mean_predicted"]).abs()
    return float((gaps * filled["count"]).sum() / filled["count"].sum())


def brier_score(is_positive: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared error of the probability against the 0/1 outcome."""
    is_positive, probability = np.asarray(is_positive, float), np.asarray(probability, float)
    return float(np.mean((probability - is_positive) ** 2)) if len(probability) else float("nan")

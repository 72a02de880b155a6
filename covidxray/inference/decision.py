"""The decision rule, written once: binary by the validation threshold on p(covid), else argmax.

The CLI row, the web answer, the Python API and every evaluation figure decide through here.
"""

from __future__ import annotations

import numpy as np


def decide(proba: np.ndarray, labels: tuple[str, ...], threshold: float) -> np.ndarray:
    """Predicted class index per row: binary by threshold on p(covid), otherwise argmax."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"probabilities must have shape (N, {len(labels)}), got {proba.shape}")
    if len(labels) == 2:
        covid = labels.index("covid")
        return np.where(proba[:, covid] >= threshold, covid, 1 - covid)
    return proba.argmax(axis=1)


def decide_labels(proba: np.ndarray, labels: tuple[str, ...], threshold: float) -> list[str]:
    """The decided label name per row."""
    return [labels[index] for index in decide(proba, labels, threshold)]

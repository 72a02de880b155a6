"""Applying a checkpoint's calibration: logits to calibrated probabilities (numpy only).

p(covid) = sigmoid(logit / T + b) for the binary task, softmax(logits / T) for three classes.
The temperature T and bias b are fitted on validation by covidxray.training.calibration.
"""

from __future__ import annotations

import numpy as np


def probabilities(logits: np.ndarray, task: str, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """Logits -> class probabilities (N, classes) float32; binary gives [p_not_covid, p_covid]."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    if task == "binary":
        p_covid = 1.0 / (1.0 + np.exp(-(scaled.reshape(-1) + float(bias))))
        return np.stack([1 - p_covid, p_covid], axis=1).astype(np.float32)
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def covid_probability(logits: np.ndarray, task: str, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """p(covid) per image: column 'covid' of the task's probabilities."""
    proba = probabilities(logits, task, temperature, bias)
    return proba[:, 1] if task == "binary" else proba[:, 0]

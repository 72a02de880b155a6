"""Confidence intervals that resample whole patients, for any statistic of per-image results.

Images of one patient are not independent, so segmentation and severity figures draw patients,
not images, with replacement (the same rule as covidxray.evaluation.metrics).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from covidxray.evaluation.metrics import CONFIDENCE, Estimate


def patient_bootstrap(statistic: Callable[[np.ndarray], float], patients: np.ndarray,
                      resamples: int = 1000, seed: int = 0) -> Estimate:
    """statistic(row indices) on all rows, with a percentile 95% CI over patient resamples.

    Args:
        statistic: row indices -> the figure.
        patients: each row's patient.
        resamples: bootstrap samples.
        seed: seed of the draws.

    Returns:
        Estimate; its n is the number of rows (images), the patients are counted by the caller.
    """
    patients = np.asarray(patients, dtype=str)
    _, patient_index = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(patient_index == k) for k in range(patient_index.max(initial=-1) + 1)]
    value = float(statistic(np.arange(len(patients))))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples if members else 0):
        chosen = rng.integers(0, len(members), len(members))
        draws.append(statistic(np.concatenate([members[k] for k in chosen])))
    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return Estimate(value, len(patients), float(low), float(high))

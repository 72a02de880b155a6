"""Severity scores: features of the lung field, clamping to the raters' ranges, the bundled model
loading without pickle and predicting a real scored image within a sensible distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covidxray.data.sources.cohen import SEVERITY_FILE, read_severity
from covidxray.imaging.read import read_image
from covidxray.lungs.severity import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    SeverityModel,
    SeverityModelError,
    severity_features,
    zone_masks,
)


def two_lungs(side: int = 100) -> np.ndarray:
    mask = np.zeros((side, side), dtype=bool)
    mask[15:85, 10:45] = True
    mask[15:80, 55:90] = True
    return mask


def test_predictions_are_clamped_to_the_score_ranges() -> None:
    count = len(FEATURE_NAMES)
    model = SeverityModel(np.zeros(count), np.ones(count), np.ones((2, count)), np.array([4.0, 3.0]))
    high = model.predict_features(np.full(count, 1e6))
    low = model.predict_features(np.full(count, -1e6))
    np.testing.assert_array_equal(high, [[8.0, 6.0]])
    np.testing.assert_array_equal(low, [[0.0, 0.0]])
    bundled = SeverityModel.load().predict_features(np.stack([np.full(count, 1e9), np.full(count, -1e9)]))
    assert ((bundled[:, 0] >= 0) & (bundled[:, 0] <= 8) & (bundled[:, 1] >= 0) & (bundled[:, 1] <= 6)).all()


def test_bundled_model_is_plain_arrays_and_a_wrong_file_is_named() -> None:
    with np.load(DEFAULT_WEIGHTS, allow_pickle=False) as saved:
        assert {"coefficients", "intercepts", "feature_mean", "feature_scale"} <= set(saved.files)
        assert saved["coefficients"].shape == (2, len(FEATURE_NAMES))


def test_wrong_file_is_reported_by_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(SeverityModelError, match="other.npz"):
        SeverityModel.load(tmp_path / "other.npz")


def test_zones_split_the_lungs_into_six_parts() -> None:
    mask = two_lungs()
    zones = zone_masks(mask)
    assert len(zones) == 6
    np.testing.assert_array_equal(np.sum(zones, axis=0), mask.astype(int))  # a partition of the lungs
    assert all(zone.any() for zone in zones)


def test_denser_lungs_raise_the_density_features() -> None:
    mask = two_lungs()
    rng = np.random.default_rng(0)
    body = np.full(mask.shape, 0.7)
    body[:, :6] = body[:, -6:] = 0.0  # air beside the chest
    body[:, 47:53] = 1.0  # spine: the film's brightest part
    clear = np.where(mask, 0.2, body) + rng.normal(0, 0.02, mask.shape)
    dense = np.where(mask, 0.6, body) + rng.normal(0, 0.02, mask.shape)
    clear_features, dense_features = (severity_features(np.clip(i, 0, 1), mask) for i in (clear, dense))
    assert clear_features.shape == (len(FEATURE_NAMES),) and np.isfinite(clear_features).all()
    mean = FEATURE_NAMES.index("lung_mean")
    assert dense_features[mean] > clear_features[mean] + 0.2


def test_real_scored_image_gets_a_sensible_score(data_dir: Path) -> None:
    root = data_dir / "covid-chestxray-dataset"
    scores = {name: (float(e), float(o)) for name, (e, o) in read_severity(root / SEVERITY_FILE).items()
              if e and o and (root / "images" / name).is_file()}
    model = SeverityModel.load()
    mildest, worst = min(scores, key=lambda n: scores[n][0]), max(scores, key=lambda n: scores[n][0])
    predicted = {}
    for name in (mildest, worst):
        extent, opacity = predicted[name] = model.predict(read_image(root / "images" / name))
        assert 0 <= extent <= 8 and 0 <= opacity <= 6
        assert abs(extent - scores[name][0]) < 3.5 and abs(opacity - scores[name][1]) < 2.5, (name, extent, opacity, scores[name])
    assert predicted[worst][0] > predicted[mildest][0] + 1  # (both were in the fit: a sanity check, not a measure)

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


def test_a_severity_model_tied_to_a_classifier_serves_that_classifier_only(tmp_path: Path) -> None:
    from covidxray.hashing import sha256_file
    from covidxray.inference.predictor import DEFAULT_MODEL
    from covidxray.lungs.severity import DEFAULT_MODEL_WEIGHTS, bundled_severity

    assert DEFAULT_MODEL_WEIGHTS.is_file(), "scripts/release_model.sh fits it (covidxray severity fit --classifier)"
    tied = bundled_severity(DEFAULT_MODEL)
    assert tied.classifier_sha256 == sha256_file(DEFAULT_MODEL) and tied.classifier_features > 0
    other = tmp_path / "other.pt"
    other.write_bytes(DEFAULT_MODEL.read_bytes() + b"\0")  # any other checkpoint: another sha256
    lungs_only = bundled_severity(other)
    assert lungs_only.classifier_features == 0 and lungs_only.classifier_sha256 == ""
    image, mask = np.full((100, 100), 0.5), two_lungs()
    with pytest.raises(ValueError, match="penultimate features"):
        tied.predict(image, mask)
    assert lungs_only.predict(image, mask) == lungs_only.predict(image, mask, np.zeros(tied.classifier_features))


def test_a_tied_model_round_trips_and_a_mangled_one_is_refused(tmp_path: Path) -> None:
    from covidxray.lungs.severity import classifier_feature_names

    count = len(FEATURE_NAMES) + 3
    names = FEATURE_NAMES + classifier_feature_names(3)
    model = SeverityModel(np.zeros(count), np.ones(count), np.ones((2, count)) * 1e-3, np.array([4.0, 3.0]), names, "ab" * 32)
    loaded = SeverityModel.load(model.save(tmp_path / "tied.npz"))
    assert loaded.classifier_sha256 == "ab" * 32 and loaded.classifier_features == 3
    untied = SeverityModel(np.zeros(count), np.ones(count), np.ones((2, count)), np.array([4.0, 3.0]), names, "")
    with pytest.raises(SeverityModelError, match="refit"):
        SeverityModel.load(untied.save(tmp_path / "untied.npz"))


def test_the_bundled_predictor_scores_severity_from_its_own_features_on_either_backend(data_dir: Path) -> None:
    from covidxray.inference.predictor import Predictor

    root = data_dir / "covid-chestxray-dataset"
    scores = {name: float(e) for name, (e, o) in read_severity(root / SEVERITY_FILE).items()
              if e and o and (root / "images" / name).is_file()}
    worst = str(root / "images" / max(scores, key=scores.get))
    by_backend = {}
    for backend in ("torch", "onnx"):
        predictor = Predictor(backend=backend)
        assert predictor.severity.classifier_features > 0  # the tied model, not the lungs-only fallback
        result = predictor.screen([worst])[0]
        assert result.prediction == "covid" and result.severity_extent is not None, result
        by_backend[backend] = (result.severity_extent, result.severity_opacity)
    assert np.allclose(by_backend["torch"], by_backend["onnx"], atol=0.02), by_backend


def test_severity_fit_on_a_classifier_cross_validates_it_beside_the_lungs_only_model(data_dir: Path, tmp_path: Path, capsys) -> None:
    from covidxray.cli import main
    from covidxray.hashing import sha256_file
    from covidxray.inference.predictor import DEFAULT_MODEL

    out = tmp_path / "tied.npz"
    assert main(["severity", "fit", "--data", str(data_dir / "covid-chestxray-dataset"), "--classifier", str(DEFAULT_MODEL),
                 "--out", str(out), "--folds", "3"]) == 0
    printed = capsys.readouterr().out
    for row in ("lung + classifier features", "lung features", "MAE gain vs baseline", "MAE gain vs ridge, lung features"):
        assert row in printed, row
    model = SeverityModel.load(out)
    assert model.classifier_sha256 == sha256_file(DEFAULT_MODEL) and model.classifier_features > 0
    assert main(["severity", "fit", "--data", str(data_dir / "covid-chestxray-dataset"), "--classifier", str(tmp_path / "no.pt"),
                 "--out", str(tmp_path / "x.npz")]) == 2

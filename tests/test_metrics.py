"""Metrics against hand-computed cases; CIs; calibration figures."""

import numpy as np
import pytest

from covidxray.evaluation.calibration import brier_score, expected_calibration_error, reliability_table
from covidxray.evaluation.metrics import confusion, decide, patient_bootstrap, point_metrics

BINARY = ("not_covid", "covid")
THREE = ("covid", "pneumonia", "normal")


def binary_proba(p_covid):
    p_covid = np.asarray(p_covid, float)
    return np.stack([1 - p_covid, p_covid], axis=1)


def test_binary_metrics_match_a_hand_computed_confusion():
    # truth: 4 covid, 6 not; threshold 0.5 gives TP=3, FN=1, FP=2, TN=4
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = [0.9, 0.8, 0.7, 0.2, 0.6, 0.55, 0.4, 0.3, 0.1, 0.05]
    metrics = point_metrics(truth, binary_proba(p), BINARY, threshold=0.5)
    assert metrics["accuracy"] == (0.7, 10)
    assert metrics["precision"] == (pytest.approx(3 / 5), 5)
    assert metrics["sensitivity"] == (pytest.approx(3 / 4), 4)
    assert metrics["specificity"] == (pytest.approx(4 / 6), 6)
    assert metrics["npv"] == (pytest.approx(4 / 5), 5)
    assert metrics["f1"][0] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # AUROC by hand: of 24 (pos, neg) pairs, the covid at 0.2 is beaten by 0.6, 0.55, 0.4, 0.3 -> 20/24
    assert metrics["roc_auc"][0] == pytest.approx(20 / 24)


def test_single_sigmoid_model_does_not_collapse_to_one_class():
    """The seed study's bug: argmax over a one-column output always says class 0."""
    p_covid = np.array([0.9, 0.8, 0.1, 0.2])
    single_column = p_covid[:, None]
    assert set(single_column.argmax(axis=1)) == {0}  # the bug, for the record
    predicted = decide(binary_proba(p_covid), BINARY, threshold=0.5)
    assert predicted.tolist() == [1, 1, 0, 0]
    matrix = confusion(np.array([1, 1, 0, 0]), predicted, 2)
    assert matrix.tolist() == [[2, 0], [0, 2]]


def test_threshold_is_applied_not_fixed_at_one_half():
    p = binary_proba([0.3, 0.35, 0.1])
    assert decide(p, BINARY, threshold=0.25).tolist() == [1, 1, 0]
    assert decide(p, BINARY, threshold=0.5).tolist() == [0, 0, 0]


def test_three_class_one_vs_rest_and_macro():
    truth = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8], [.5, .2, .3]])
    metrics = point_metrics(truth, proba, THREE, threshold=0.5)
    assert metrics["accuracy"][0] == pytest.approx(4 / 6)
    assert metrics["pneumonia/precision"] == (pytest.approx(2 / 3), 3)
    assert metrics["covid/sensitivity"] == (pytest.approx(1 / 2), 2)
    macro = np.mean([metrics[f"{c}/f1"][0] for c in THREE])
    assert metrics["macro/f1"][0] == pytest.approx(macro)
    assert confusion(truth, proba.argmax(1), 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_more_patients():
    rng = np.random.default_rng(0)
    def run(n):
        truth = rng.integers(0, 2, n)
        p = np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1)
        patients = np.arange(n) // 2  # two images per patient
        return patient_bootstrap(truth, binary_proba(p), BINARY, 0.5, patients, resamples=200)
    small, large = run(40), run(400)
    for name in ("accuracy", "roc_auc", "sensitivity"):
        estimate = small[name]
        assert estimate.ci_low <= estimate.value <= estimate.ci_high
    assert (large["roc_auc"].ci_high - large["roc_auc"].ci_low) < (small["roc_auc"].ci_high - small["roc_auc"].ci_low)


def test_bootstrap_resamples_patients_not_images():
    # one patient holds all the covid images: every resample either has all of them or none
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    patients = np.array(["a", "a", "a", "a", "b", "c", "d", "e"])
    estimates = patient_bootstrap(truth, binary_proba([.9, .9, .1, .1, .2, .2, .2, .2]), BINARY, 0.5, patients, resamples=300)
    # sensitivity is 0.5 whenever patient a is drawn, so the interval is a single point
    assert estimates["sensitivity"].ci_low == estimates["sensitivity"].ci_high == 0.5


def test_calibration_figures():
    truth = np.array([0, 0, 1, 1])
    assert brier_score(truth, [0, 0, 1, 1]) == 0
    assert brier_score(truth, [0.5] * 4) == 0.25
    assert expected_calibration_error(truth, [0.5] * 4) == pytest.approx(0.0)
    assert expected_calibration_error(truth, [0.9, 0.9, 0.9, 0.9]) == pytest.approx(0.4)
    table = reliability_table(truth, [0.05, 0.15, 0.95, 0.95])
    assert table["count"].sum() == 4 and table.loc[9, "observed"] == 1.0

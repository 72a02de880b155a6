"""What a person reads in the evaluation report: metric names, and Grad-CAM tiles with a colour bar."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

from covidxray.evaluation.plots import HEAT_COLORMAP, montage
from covidxray.evaluation.report import metric_name


def test_metric_names_are_readable_and_keep_the_key():
    assert metric_name("roc_auc") == "AUROC (roc_auc)"
    assert metric_name("npv") == "NPV (npv)"
    assert metric_name("covid/roc_auc") == "covid: AUROC (covid/roc_auc)"
    assert metric_name("precision") == "PPV (precision)"
    assert metric_name("macro/sensitivity") == "macro/sensitivity" and metric_name("accuracy") == "accuracy"
    assert metric_name("something_else") == "something_else"


def _has_colour(png: bytes, rgb: np.ndarray, tolerance: int = 12) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return bool((np.abs(pixels - rgb).max(axis=2) <= tolerance).any())


def test_montage_draws_a_colour_bar_and_strong_heat():
    hottest = (np.array(colormaps[HEAT_COLORMAP](1.0)[:3]) * 255).round().astype(int)
    image = np.full((64, 64), 0.5)
    cold = montage([(image, np.zeros((8, 8)), "right: true covid, said covid\np(covid)=0.97")])
    assert _has_colour(cold, hottest)  # no tile is hot, so the hottest colour is the colour bar's
    hot = np.zeros((8, 8))
    hot[2:5, 2:5] = 1.0
    def near_hottest(png: bytes) -> int:
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        return int((np.abs(pixels - hottest).max(axis=2) <= 40).sum())

    with_spot = near_hottest(montage([(image, hot, "hot")], columns=1))
    without = near_hottest(montage([(image, np.zeros((8, 8)), "hot")], columns=1))
    assert with_spot - without > 500  # the hot spot is drawn near full colour over the grey, not pale

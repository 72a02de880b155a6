"""The numpy-only mask operations (covidxray.lungs.morphology) give what scipy.ndimage gives, so the
segmenter's masks and the heat maps' outlines are the ones scipy made, without its import."""

from __future__ import annotations

import numpy as np
import pytest

from covidxray.lungs.morphology import dilate, erode, fill_holes, label_regions

ndimage = pytest.importorskip("scipy.ndimage")


def spiral(side: int = 41) -> np.ndarray:
    """One long winding region: the most rounds for a union-find, and a hole that winds to the middle."""
    mask = np.zeros((side, side), bool)
    for k in range(0, side // 2, 2):
        mask[k, k:side - k] = mask[k:side - k, side - 1 - k] = True
        mask[side - 1 - k, k + 2:side - k] = mask[k + 2:side - k, k] = True
    return mask


def masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = [(1, 30), (30, 1), (2, 2), (17, 23), (64, 64), (100, 37)]
    random = [rng.random(shape) < share for share in (0.2, 0.45, 0.55, 0.8) for shape in shapes]
    rows, columns = np.mgrid[:90, :120]
    lungs = ((rows - 45) ** 2 / 35 ** 2 + (columns - 35) ** 2 / 20 ** 2 < 1) | ((rows - 45) ** 2 / 35 ** 2 + (columns - 85) ** 2 / 20 ** 2 < 1)
    lungs[40:46, 30:36] = False  # a hole in one lung
    edge_cases = [np.zeros((5, 7), bool), np.ones((5, 7), bool), np.ones((1, 1), bool), np.eye(6, dtype=bool)]
    return random + [lungs, ~lungs, spiral(), ~spiral()] + edge_cases


def test_regions_are_numbered_as_scipy_numbers_them():
    for mask in masks():
        labels, count = label_regions(mask)
        expected, expected_count = ndimage.label(mask)
        assert count == expected_count and labels.dtype == expected.dtype and np.array_equal(labels, expected), mask.shape


def test_holes_erosion_and_dilation_are_scipys():
    cross = ndimage.generate_binary_structure(2, 1)
    for mask in masks():
        assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask)), mask.shape
        assert np.array_equal(erode(mask), ndimage.binary_erosion(mask, structure=cross, border_value=0)), mask.shape
        for iterations in (1, 3):
            assert np.array_equal(dilate(mask, iterations), ndimage.binary_dilation(mask, iterations=iterations)), mask.shape

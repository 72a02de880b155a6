"""The few binary-image operations lung masks need, in numpy alone: importing scipy.ndimage costs about a
third of a second, more than `covidxray predict --heatmaps` spends on one picture.

Each gives what its scipy.ndimage namesake gives with its default structure (4-connected neighbours,
nothing outside the image): label_regions is `label`, fill_holes `binary_fill_holes`, erode
`binary_erosion`, dilate `binary_dilation`. tests/test_lung_morphology.py compares them to scipy.
Regions are found on runs (a row's unbroken stretches of pixels), so the work follows the masks'
edges, not their area.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dilate", "erode", "fill_holes", "label_regions"]


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels, count): the 4-connected regions of a 2-D mask numbered 1..count in the order a raster
    scan meets them, 0 elsewhere (int32), as scipy.ndimage.label numbers them."""
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, np.int32)
    row, start, end = _runs(mask)
    if not len(row):
        return labels, 0
    roots = _run_roots(row, start, end, mask.shape[1])
    firsts, number = np.unique(roots, return_inverse=True)
    _paint(labels, row, start, end, number.reshape(-1) + 1)
    return labels, len(firsts)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The 2-D mask with its holes (background not 4-connected to the image's edge) filled (bool)."""
    mask = np.asarray(mask, dtype=bool)
    filled = mask.copy()
    row, start, end = _runs(~mask)
    if not len(row):
        return filled
    roots = _run_roots(row, start, end, mask.shape[1])
    on_edge = (row == 0) | (row == mask.shape[0] - 1) | (start == 0) | (end == mask.shape[1])
    outside = np.zeros(len(row), bool)
    outside[roots[on_edge]] = True
    hole = ~outside[roots]
    _paint(filled, row[hole], start[hole], end[hole], True)
    return filled


def erode(mask: np.ndarray) -> np.ndarray:
    """The 2-D mask's pixels whose four neighbours are all in it (a neighbour off the image is not)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """The 2-D mask grown by iterations pixels (4-connected steps, a diamond), within the image."""
    grown = np.asarray(mask, dtype=bool).copy()
    for _ in range(iterations):
        padded = np.pad(grown, 1)
        grown |= padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return grown


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of each run of True in the 2-D mask (end exclusive), in raster order."""
    steps = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    row, start = np.nonzero(steps == 1)
    end = np.nonzero(steps == -1)[1]
    return row, start, end


def _touching(row: np.ndarray, start: np.ndarray, end: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) run numbers of each pair of runs in consecutive rows that share a column.

    Args:
        row, start, end: the runs, in raster order (see _runs).
        width: the mask's width.

    Returns:
        Two int arrays of equal length: the run above and the run below, one pair per contact.
    """
    stride = width + 1  # run keys row * stride + column sort the runs in raster order
    above = (row.astype(np.int64) - 1) * stride
    first = np.searchsorted(row * stride + end, above + start, side="right")  # above, ending after this starts
    last = np.searchsorted(row * stride + start, above + end, side="left")  # above, starting before this ends
    count = np.maximum(last - first, 0)
    lower = np.repeat(np.arange(len(row)), count)
    upper = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    return upper, lower


def _run_roots(row: np.ndarray, start: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Per run, the number of the first run (raster order) of its 4-connected region.

    Union-find over the touching pairs, all pairs at once: each root joins the smallest root it
    touches, then every run points straight at its root; each round leaves fewer roots.

    Args:
        row, start, end: the runs, in raster order (see _runs).
        width: the mask's width.

    Returns:
        int array, one root (the region's first run) per run.
    """
    upper, lower = _touching(row, start, end, width)
    parent = np.arange(len(row))
    while True:
        jumped = parent[parent]
        while not np.array_equal(jumped, parent):
            parent, jumped = jumped, jumped[jumped]
        first, second = parent[upper], parent[lower]
        apart = first != second
        if not apart.any():
            return parent
        first, second = first[apart], second[apart]
        smaller = np.minimum(first, second)
        np.minimum.at(parent, first, smaller)
        np.minimum.at(parent, second, smaller)


def _paint(target: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray, values) -> None:
    """Set each run's pixels of target to its value.

    Args:
        target: 2-D, C-ordered, changed in place.
        row, start, end: the runs (end exclusive).
        values: one per run, or one for all.
    """
    length = end - start
    flat = row.astype(np.int64) * target.shape[1] + start
    index = np.repeat(flat - np.cumsum(length) + length, length) + np.arange(length.sum())
    target.reshape(-1)[index] = np.repeat(values, length) if np.ndim(values) else values

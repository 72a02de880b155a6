"""The Gaussian blur that rounds the lung mask's stair-steps off before its outline is drawn, in numpy
alone: importing scipy.ndimage costs about a third of a second, more than `predict --heatmaps` spends
on one picture.

above_half(values, sigma) decides every pixel as `scipy.ndimage.gaussian_filter(values, sigma) > 0.5`
does (float32 values, mode "reflect", 4 sigmas): a fast FFT blur decides the pixels clear of 0.5, and
the few within UNSURE of it are summed again in scipy's own order and precision, so a picture's outline
is the one scipy drew, pixel for pixel. tests/test_heatmap_picture.py compares the two.
"""

from __future__ import annotations

import numpy as np

__all__ = ["above_half", "gaussian_weights"]

#: Kernel radius in sigmas (scipy.ndimage's default truncate).
TRUNCATE = 4.0
#: The FFT blur is within 1e-12 of the exact sums and scipy's float32 roundings move them by less than
#: 1e-6: a pixel nearer 0.5 than this is summed again as scipy sums it.
UNSURE = 1e-5
#: Pixels summed again at once (each reads a (2 radius + 1)^2 window): bounds the memory to about 32 MB.
WINDOW_VALUES = 4_000_000


def gaussian_weights(sigma: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian weights for sigma (radius TRUNCATE sigmas, centre in the middle)."""
    radius = int(TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (float(sigma) * float(sigma)) * x ** 2)
    return weights / weights.sum()


def above_half(values: np.ndarray, sigma: float) -> np.ndarray:
    """Where the 2-D float32 values, Gaussian-blurred by sigma, exceed one half (bool, values' shape)."""
    values = np.asarray(values, np.float32)
    weights = gaussian_weights(sigma)
    blurred = _fft_blur(_fft_blur(values.astype(np.float64), weights, 0), weights, 1)
    result = blurred > 0.5
    rows, columns = np.nonzero(np.abs(blurred - 0.5) < UNSURE)
    if len(rows) * len(weights) > values.size:  # many (a pattern finer than the blur): sum every pixel
        return _exact_blur(values, weights) > 0.5
    if len(rows):
        result[rows, columns] = _exact_at(values, weights, rows, columns) > 0.5
    return result


def _fft_blur(values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """values blurred along one axis by an FFT, edges mirrored as scipy's "reflect" mirrors them.

    Args:
        values: 2-D float64.
        weights: the odd-length kernel (gaussian_weights).
        axis: 0 (down the columns) or 1 (along the rows).

    Returns:
        float64, values' shape; within 1e-12 of the weighted sums.
    """
    radius, length = len(weights) // 2, values.shape[axis]
    padding = [(0, 0), (0, 0)]
    padding[axis] = (radius, radius)
    size = _fast_size(length + 2 * radius)  # long enough that no wrap-around reaches the kept span
    kernel = np.zeros(size)
    kernel[:radius + 1], kernel[size - radius:] = weights[radius:], weights[:radius]
    spectrum = np.fft.rfft(np.pad(values, padding, mode="symmetric"), size, axis=axis)
    spectrum *= np.fft.rfft(kernel).reshape((-1, 1) if axis == 0 else (1, -1))
    kept = [slice(None), slice(None)]
    kept[axis] = slice(radius, radius + length)
    return np.fft.irfft(spectrum, size, axis=axis)[tuple(kept)]


def _fast_size(minimum: int) -> int:
    """The smallest n >= minimum with no prime factor above 5 (fast for the FFT)."""
    size = minimum
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


def _exact_blur(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """values (float32) blurred as scipy.ndimage.gaussian_filter blurs them, to the last bit (float32)."""
    radius = len(weights) // 2
    columns = np.pad(values.astype(np.float64), ((radius, radius), (0, 0)), mode="symmetric")
    first = _ordered_sum(columns, weights, 0, values.shape[0]).astype(np.float32)
    rows = np.pad(first.astype(np.float64), ((0, 0), (radius, radius)), mode="symmetric")
    return _ordered_sum(rows, weights, 1, values.shape[1]).astype(np.float32)


def _exact_at(values: np.ndarray, weights: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """_exact_blur(values, weights)[rows, columns], each pixel from its own window, WINDOW_VALUES at a time.

    Args:
        values: 2-D float32.
        weights: the odd-length kernel (gaussian_weights).
        rows, columns: the pixels wanted.

    Returns:
        float32, one value per pixel, bit for bit scipy's.
    """
    radius = len(weights) // 2
    padded = np.pad(values.astype(np.float64), radius, mode="symmetric")
    span = np.arange(2 * radius + 1)
    step = max(1, WINDOW_VALUES // len(span) ** 2)
    out = np.empty(len(rows), np.float32)
    for begin in range(0, len(rows), step):
        pick = slice(begin, begin + step)
        windows = padded[rows[pick, None, None] + span[None, :, None], columns[pick, None, None] + span[None, None, :]]
        first = _ordered_sum(windows, weights, 1, 1)[:, 0, :].astype(np.float32)
        out[pick] = _ordered_sum(first.astype(np.float64), weights, 1, 1)[:, 0].astype(np.float32)
    return out


def _ordered_sum(padded: np.ndarray, weights: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Weighted sums along one axis, added in scipy's order (centre, then each mirrored pair from the
    farthest in), so that they round as scipy's do.

    Args:
        padded: float64, radius = len(weights) // 2 extra values on each side along axis.
        weights: the odd-length kernel (gaussian_weights).
        axis: the axis summed along.
        length: the centres wanted along axis (its length less the padding).

    Returns:
        float64, padded's shape with length along axis.
    """
    radius = len(weights) // 2

    def shifted(offset: int) -> np.ndarray:
        index = [slice(None)] * padded.ndim
        index[axis] = slice(radius + offset, radius + offset + length)
        return padded[tuple(index)]

    total = shifted(0) * weights[radius]
    for offset in range(radius, 0, -1):
        total += (shifted(-offset) + shifted(offset)) * weights[radius - offset]
    return total

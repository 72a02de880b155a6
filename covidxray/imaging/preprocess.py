"""Prepare a read radiograph (float greyscale in [0, 1]) for a model, exactly as in training.

The Preprocessing travels inside every checkpoint; check_intensity is the model's door check.
The torch half (the Screener: the door and the network) is covidxray.imaging.preprocess_torch.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, fields

import numpy as np
from PIL import Image

from covidxray.errors import CovidxrayError

#: The one intensity convention at the model's door: float greyscale, 0 = black, 1 = white.
UNIT_RANGE = (0.0, 1.0)
_TOLERANCE = 1e-3
INTENSITY_NORMALISATIONS = ("none", "per-image")


class IntensityRangeError(CovidxrayError):
    """An image or batch fed to a model is not float greyscale in [0, 1]."""


class PreprocessingError(CovidxrayError):
    """A preprocessing setting is out of its accepted range."""


@dataclass(frozen=True)
class Preprocessing:
    """Everything that turns a read radiograph into model input; saved with the model.

    size: side of the square model input (the image is resized without keeping aspect ratio,
    as the seed study did); channels: 1, or 3 for networks that want RGB (the grey plane is
    repeated); intensity: 'none' keeps [0, 1], 'per-image' standardises each image to mean 0,
    std 1 inside the model, after the door check; crop_border: fraction cut from each side
    (burned-in text, collimator edges); equalise: histogram equalisation before resizing;
    lung_crop: cut the image to the lungs found by the bundled segmenter (plus a 5% margin)
    before anything else, replacing crop_border, so that little outside the lungs reaches the model;
    hide_outside_lungs: fill everything outside the segmenter's lung mask (widened by 3% of the
    side, to keep the lung borders) with the lungs' median, so that no marker, tube, border or
    body habitus outside the lungs can reach the model (a whole image is kept when no lung is found).
    """

    size: int = 224
    channels: int = 1
    intensity: str = "none"
    crop_border: float = 0.0
    equalise: bool = False
    lung_crop: bool = False
    hide_outside_lungs: bool = False

    def __post_init__(self) -> None:
        if not 16 <= int(self.size) <= 2048:
            raise PreprocessingError(f"image size {self.size} is outside 16..2048 pixels")
        if self.channels not in (1, 3):
            raise PreprocessingError(f"channels must be 1 or 3, not {self.channels}")
        if self.intensity not in INTENSITY_NORMALISATIONS:
            raise PreprocessingError(
                f"intensity normalisation '{self.intensity}' unknown; use one of {', '.join(INTENSITY_NORMALISATIONS)}"
            )
        if not 0.0 <= float(self.crop_border) < 0.4:
            raise PreprocessingError(f"crop border {self.crop_border} must be a fraction in [0, 0.4)")

    @property
    def reads_lungs(self) -> bool:
        """True when preparing an image needs its lung mask (lung crop or outside-lung filling)."""
        return bool(self.lung_crop or self.hide_outside_lungs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocessing":
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def cache_key(self) -> str:
        """Hash of the settings that change the cached array (not channels or intensity)."""
        decoded = {"size": self.size, "crop_border": round(float(self.crop_border), 4), "equalise": bool(self.equalise)}
        if self.lung_crop:  # only when on, so caches made before this setting existed stay valid
            decoded["lung_crop"] = True
        if self.hide_outside_lungs:
            decoded["hide_outside_lungs"] = True
        return hashlib.sha256(json.dumps(decoded, sort_keys=True).encode()).hexdigest()[:16]


def check_intensity(image: "np.ndarray | torch.Tensor", what: str = "input") -> None:
    """Raise IntensityRangeError unless every value is finite and within [0, 1].

    The most common misuse of X-ray models is feeding 0-255 or 16-bit values; the model then
    answers the same for every image. This refuses it with what to do instead.
    """
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported; never import it here
    if torch is not None and isinstance(image, torch.Tensor):
        values = image.detach()
        empty, floating = values.numel() == 0, values.is_floating_point()
        finite = lambda: bool(torch.isfinite(values).all())  # noqa: E731
    else:
        values = np.asarray(image)
        empty, floating = values.size == 0, np.issubdtype(values.dtype, np.floating)
        finite = lambda: bool(np.isfinite(values).all())  # noqa: E731
    if empty:
        raise IntensityRangeError(f"{what} is empty")
    if not floating:
        raise IntensityRangeError(
            f"{what} has integer type {values.dtype}; covidxray models take float greyscale in [0, 1] "
            "(read images with covidxray.imaging.read.read_image)"
        )
    if not finite():
        raise IntensityRangeError(f"{what} contains NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low >= UNIT_RANGE[0] - _TOLERANCE and high <= UNIT_RANGE[1] + _TOLERANCE:
        return
    if high > 255.0 + _TOLERANCE:
        hint = "looks like 16-bit values (0-65535): divide by 65535"
    elif high > 1.0 + _TOLERANCE and low >= 0.0:
        hint = "looks like 8-bit values (0-255): divide by 255"
    else:
        hint = "looks already normalised (negative values): pass the unnormalised [0, 1] image"
    raise IntensityRangeError(f"{what} has values {low:.3g}..{high:.3g}, expected float greyscale in [0, 1]; {hint}")


def equalise_histogram(image: np.ndarray, bins: int = 1024) -> np.ndarray:
    """Histogram equalisation of a [0, 1] float image; returns float32 in [0, 1]."""
    counts, edges = np.histogram(image, bins=bins, range=(0.0, 1.0))
    cdf = np.cumsum(counts).astype(np.float64)
    if cdf[-1] <= 0 or cdf[-1] == cdf[0]:
        return image.astype(np.float32)
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    return np.interp(image, edges[1:], cdf).astype(np.float32)


def hide_outside(image: np.ndarray, mask: np.ndarray, widen: float = 0.03) -> np.ndarray:
    """The image with every pixel farther than widen x side from the lung mask set to the lungs' median.

    Args:
        image: 2-D float [0, 1].
        mask: boolean lung mask, the image's size.
        widen: margin around the mask kept, as a share of the image's side.

    Returns:
        The altered copy.
    """
    if not mask.any():
        return image
    from scipy import ndimage

    reach = max(1, int(round(widen * max(image.shape))))
    distance = ndimage.distance_transform_edt(~mask)
    hidden = image.copy()
    hidden[distance > reach] = float(np.median(image[mask]))
    return hidden


def prepare_array(image: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """2-D float [0, 1] radiograph -> cropped, equalised, resized 2-D float32 (size x size)."""
    _check_radiograph(image)
    return prepare_checked(image, preprocessing)


def _check_radiograph(image: np.ndarray) -> None:
    """The door check of a single radiograph: 2-D, float, within [0, 1]."""
    if image.ndim != 2:
        raise IntensityRangeError(f"expected a 2-D greyscale image, got shape {tuple(image.shape)}")
    check_intensity(image, "image")


def model_region(shape: tuple[int, int], preprocessing: Preprocessing,
                 lung_mask: np.ndarray | None = None) -> tuple[slice, slice]:
    """The (rows, columns) of an image that the model sees: the lung box of a lung-crop model, the image
    less its border for crop_border, else all of it. Heat maps are placed back on the same region.

    Args:
        shape: (rows, columns) of the image as read.
        preprocessing: the checkpoint's Preprocessing.
        lung_mask: the image's lung mask (its size); a lung-crop model without one sees the whole image.

    Returns:
        Slices for rows and columns.
    """
    rows, columns = shape[:2]
    if preprocessing.reads_lungs:
        if preprocessing.lung_crop and lung_mask is not None:
            from covidxray.lungs.segmenter import lung_box

            if lung_mask.shape != (rows, columns):
                raise ValueError(f"image {(rows, columns)} and lung mask {lung_mask.shape} differ in size")
            return lung_box(lung_mask)
        return slice(0, rows), slice(0, columns)
    dy, dx = int(rows * preprocessing.crop_border), int(columns * preprocessing.crop_border)
    return slice(dy, rows - dy or None), slice(dx, columns - dx or None)


def prepare_checked(image: np.ndarray, preprocessing: Preprocessing, lung_mask: np.ndarray | None = None) -> np.ndarray:
    """prepare_array for an image that already passed the door check (check_intensity, 2-D).

    Args:
        image: 2-D float [0, 1].
        preprocessing: the checkpoint's Preprocessing.
        lung_mask: the image's lung mask when the caller has it (the bundled segmenter's, the
            image's size), which spares finding it again.

    Returns:
        (size, size) float32 model input.
    """
    return _prepare(image, preprocessing, lung_mask, with_lungs=False)[0]


def prepare_with_lungs(image: np.ndarray, preprocessing: Preprocessing,
                       lung_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The model input and the lung mask in the same frame: what a training penalty on evidence
    outside the lungs compares the network's class maps with.

    Args:
        image: 2-D float radiograph in [0, 1] (checked as prepare_array checks it).
        preprocessing: the checkpoint's Preprocessing.
        lung_mask: the image's lung mask (the image's size); None: the bundled segmenter's.

    Returns:
        ((size, size) float32 model input, (size, size) float32 share of each input pixel inside the lungs).
    """
    _check_radiograph(image)
    return _prepare(image, preprocessing, lung_mask, with_lungs=True)


def _prepare(image: np.ndarray, preprocessing: Preprocessing, lung_mask: np.ndarray | None,
             with_lungs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The model input, and with_lungs the lung mask cut and resized the same way (else None)."""
    image = image.astype(np.float32, copy=False)
    mask = None
    if preprocessing.reads_lungs or with_lungs:
        from covidxray.lungs.segmenter import bundled_segmenter

        mask = bundled_segmenter().mask(image) if lung_mask is None else lung_mask
        if preprocessing.hide_outside_lungs:
            image = hide_outside(image, mask)
    region = model_region(image.shape, preprocessing, mask)
    image = image[region]
    if preprocessing.equalise:
        image = equalise_histogram(image)
    side = (preprocessing.size, preprocessing.size)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(side, Image.Resampling.BILINEAR)
    prepared = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    if not with_lungs:
        return prepared, None
    lungs = Image.fromarray(np.ascontiguousarray(mask[region], dtype=np.float32)).resize(side, Image.Resampling.BOX)
    return prepared, np.clip(np.asarray(lungs, dtype=np.float32), 0.0, 1.0)

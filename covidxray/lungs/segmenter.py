"""Find the lungs on a frontal chest X-ray: a small bundled U-Net, lung masks, crops and outlines.

Severity scoring, lung-crop preprocessing and heat-map outlines all need the lung field; this is
the one place that reads masks, runs the segmenter and turns its output into a clean mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from covidxray.errors import CovidxrayError, ImageReadError
from covidxray.imaging.read import check_file
from covidxray.paths.weights import WEIGHTS_DIR

DEFAULT_WEIGHTS = WEIGHTS_DIR / "lungs-unet.pt"
#: The ONNX export of DEFAULT_WEIGHTS (`covidxray export --onnx --lungs`), with its sidecar .onnx.json.
DEFAULT_ONNX = DEFAULT_WEIGHTS.with_suffix(".onnx")
WEIGHTS_FORMAT = "covidxray-lungs-unet/1"


class SegmenterError(CovidxrayError):
    """A lung-segmenter weights file is missing, unreadable or not of this format."""


@dataclass(frozen=True)
class LungSettings:
    """Everything the segmenter needs besides its weights; saved inside the weights file.

    size: side of the square network input (the image is resized to it, aspect ignored);
    threshold: probability above which a pixel is lung; channels / strides / res_units: the
    MONAI U-Net's shape; min_component: components smaller than this share of the largest one
    are dropped (so a speck never counts as the second lung).
    """

    size: int = 128
    threshold: float = 0.5
    channels: tuple[int, ...] = (8, 16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2)
    res_units: int = 1
    min_component: float = 0.02

    def as_dict(self) -> dict:
        record = asdict(self)
        record["channels"], record["strides"] = list(self.channels), list(self.strides)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "LungSettings":
        known = {k: record[k] for k in cls.__dataclass_fields__ if k in record}
        for key in ("channels", "strides"):
            if key in known:
                known[key] = tuple(int(v) for v in known[key])
        return cls(**known)


def build_unet(settings: LungSettings) -> "torch.nn.Module":
    """A 2-D MONAI U-Net, 1 channel in (the X-ray), 1 out (lung logit), shaped by settings."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=settings.channels,
                strides=settings.strides, num_res_units=settings.res_units)


def prepare_batch(images: Sequence[np.ndarray], size: int) -> "torch.Tensor":
    """(N, 1, size, size) float tensor: each 2-D [0, 1] image resized, then standardised per image."""
    import torch

    return standardise(torch.cat([resize_image(image, size) for image in images]))


def resize_image(image: np.ndarray, size: int) -> "torch.Tensor":
    """(1, 1, size, size) tensor of a 2-D [0, 1] image, resized with antialiasing (aspect ignored)."""
    import torch
    import torch.nn.functional as F

    check_image(image)
    pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def standardise(batch: "torch.Tensor") -> "torch.Tensor":
    """Each image of an (N, 1, H, W) batch shifted and scaled to mean 0, standard deviation 1."""
    mean = batch.mean(dim=(2, 3), keepdim=True)
    std = batch.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return (batch - mean) / std


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless image is a 2-D array in [0, 1] (as read_image returns)."""
    if image.ndim != 2 or min(image.shape) < 8:
        raise ValueError(f"expected a 2-D greyscale image of at least 8 x 8 pixels, got shape {image.shape}")
    if image.size and (float(np.nanmin(image)) < -1e-3 or float(np.nanmax(image)) > 1 + 1e-3):
        raise ValueError(f"expected intensities in [0, 1] (use covidxray.imaging.read.read_image), got "
                         f"[{float(np.nanmin(image)):.3g}, {float(np.nanmax(image)):.3g}]")


def clean_mask(probability: np.ndarray, threshold: float = 0.5, min_component: float = 0.02) -> np.ndarray:
    """Boolean lung mask from a probability map: threshold, keep the two largest components, fill holes.

    Args:
        probability: the network's map, [0, 1].
        threshold: probability above which a pixel is lung.
        min_component: the second component is kept only if at least this share of the first's area.

    Returns:
        Boolean mask, the map's shape.
    """
    from covidxray.lungs.morphology import fill_holes, label_regions

    mask = probability > threshold
    labels, count = label_regions(mask)
    if count == 0:
        return mask
    areas = np.bincount(labels.ravel())[1:]
    order = np.argsort(areas)[::-1][:2]
    keep = [k + 1 for k in order if areas[k] >= min_component * areas[order[0]]]
    return fill_holes(np.isin(labels, keep))


class _MaskMaker:
    """What both backends share: probability maps (each backend's own) made into clean masks."""

    settings: LungSettings

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def masks(self, images: Sequence[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
        """Boolean lung masks, one per image at its own size, run batch_size images at a time."""
        result = []
        for start in range(0, len(images), batch_size):
            for probability in self.probabilities(images[start:start + batch_size]):
                result.append(clean_mask(probability, self.settings.threshold, self.settings.min_component))
        return result

    def mask(self, image: np.ndarray) -> np.ndarray:
        """Boolean lung mask of one 2-D [0, 1] image, same shape as the image."""
        return self.masks([image])[0]


class LungSegmenter(_MaskMaker):
    """The U-Net plus its settings: `LungSegmenter.load().mask(image)` -> bool mask at the image's size."""

    def __init__(self, network: "torch.nn.Module", settings: LungSettings, record: dict | None = None) -> None:
        self.network = network.eval()
        self.settings = settings
        self.record = record or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "LungSegmenter":
        """Read a weights file written by covidxray.lungs.segmenter_training (default: the bundled one)."""
        import torch

        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise SegmenterError(f"{path}: lung-segmenter weights not found (train them with `covidxray lungs train`)")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle and zip errors come in many types
            raise SegmenterError(f"{path}: not a readable lung-segmenter weights file ({exc})") from None
        if not isinstance(saved, dict) or saved.get("format") != WEIGHTS_FORMAT:
            raise SegmenterError(f"{path}: not a lung-segmenter weights file (expected format {WEIGHTS_FORMAT})")
        settings = LungSettings.from_dict(saved["settings"])
        network = build_unet(settings)
        network.load_state_dict(saved["state_dict"])
        return cls(network, settings, saved.get("record", {}))

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Lung probability per pixel, each map at its image's own size."""
        import torch
        import torch.nn.functional as F

        if not len(images):
            return []
        with torch.inference_mode():
            logits = self.network(prepare_batch(images, self.settings.size))
            maps = []
            for logit, image in zip(logits, images):
                full = F.interpolate(logit[None], size=image.shape, mode="bilinear", align_corners=False)
                maps.append(torch.sigmoid(full)[0, 0].numpy())
        return maps



class OnnxLungSegmenter(_MaskMaker):
    """LungSegmenter's answers by ONNX Runtime, without torch or MONAI: the U-Net exported by
    `covidxray export --onnx --lungs`, with the same resizing, standardisation and mask cleaning
    done in numpy (PIL's antialiased bilinear resampling is the algorithm torch's antialias=True
    copies)."""

    def __init__(self, session, settings: LungSettings, record: dict | None = None, path: Path | None = None) -> None:
        self.session = session
        self.settings = settings
        self.record = record or {}
        self.path = path

    @classmethod
    def load(cls, weights: str | Path | None = None, onnx_path: str | Path | None = None) -> "OnnxLungSegmenter":
        """The fresh export of weights (default: the bundled U-Net); OnnxModelError saying why when there is none."""
        from covidxray.inference.onnx_files import inference_session, read_fresh_sidecar

        weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        path, meta = read_fresh_sidecar(weights, "lungs", onnx_path)
        return cls(inference_session(path), LungSettings.from_dict(meta["settings"]), meta.get("record", {}), path)

    def prepare_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """prepare_batch in numpy: (N, 1, size, size) float32, resized with antialiasing, standardised per image."""
        from PIL import Image

        side = self.settings.size
        batch = []
        for image in images:
            check_image(image)
            picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
            batch.append(np.asarray(picture.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32))
        batch = np.stack(batch)[:, None]
        mean = batch.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
        std = np.maximum(batch.std(axis=(2, 3), keepdims=True, ddof=1, dtype=np.float64), 1e-3)
        return ((batch - mean) / std).astype(np.float32)

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Lung probability per pixel, each map at its image's own size."""
        if not len(images):
            return []
        logits = self.session.run(None, {"image": self.prepare_batch(images)})[0]
        return [_sigmoid(_upsample_bilinear(logit[0], image.shape)) for logit, image in zip(logits, images)]


def _source_index(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps and weights as torch's interpolate(align_corners=False) computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    low = np.minimum(source.astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (source - low).astype(np.float32)


def _upsample_bilinear(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D array resized to shape like F.interpolate(mode='bilinear', align_corners=False)."""
    low, high, weight = _source_index(shape[0], array.shape[0])
    rows = array[low] * (1 - weight)[:, None] + array[high] * weight[:, None]
    low, high, weight = _source_index(shape[1], array.shape[1])
    return rows[:, low] * (1 - weight) + rows[:, high] * weight


def _sigmoid(array: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-array.astype(np.float64)))).astype(np.float32)


def best_segmenter(weights: str | Path | None = None) -> "LungSegmenter | OnnxLungSegmenter":
    """The fastest segmenter that answers exactly as the weights file says: its ONNX export when
    that is present, fresh (sidecar sha256 matches the .pt) and onnxruntime is installed, else the
    torch LungSegmenter (which imports MONAI)."""
    from covidxray.inference.onnx_files import OnnxModelError

    try:
        return OnnxLungSegmenter.load(weights)
    except OnnxModelError:
        return LungSegmenter.load(weights)


@lru_cache(maxsize=1)
def bundled_segmenter() -> "LungSegmenter | OnnxLungSegmenter":
    """The bundled segmenter, loaded once per process: best_segmenter() of the bundled weights
    (ONNX Runtime when its export is fresh, else torch and MONAI)."""
    return best_segmenter()


def read_lung_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask image (e.g. v7labs-lung-masks/*.png; lung > half intensity) as a bool array.

    With shape, the mask must have exactly that (height, width), the size of its radiograph.
    """
    from PIL import Image, UnidentifiedImageError

    path = check_file(path)
    try:
        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("L"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f"{path}: not a readable mask image ({exc})") from None
    if shape is not None and pixels.shape != tuple(shape):
        raise ImageReadError(f"{path}: mask is {pixels.shape[1]} x {pixels.shape[0]} px but its image is "
                             f"{shape[1]} x {shape[0]} px")
    return pixels > 127


def lung_box(mask: np.ndarray, margin: float = 0.05) -> tuple[slice, slice]:
    """(rows, columns) slices of the mask's bounding box, widened by margin x the box's side."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return slice(0, mask.shape[0]), slice(0, mask.shape[1])
    pad_rows = int(round(margin * (rows[-1] - rows[0] + 1)))
    pad_columns = int(round(margin * (columns[-1] - columns[0] + 1)))
    return (slice(max(rows[0] - pad_rows, 0), min(rows[-1] + 1 + pad_rows, mask.shape[0])),
            slice(max(columns[0] - pad_columns, 0), min(columns[-1] + 1 + pad_columns, mask.shape[1])))


def lung_crop(image: np.ndarray, mask: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """The image cut to the lungs' bounding box plus margin, so a model sees the lungs, not the labels around them.

    Args:
        image: 2-D image.
        mask: boolean lung mask, the image's size.
        margin: share of the box's size added on each side.

    Returns:
        The crop; the whole image if the mask is empty.
    """
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and lung mask {mask.shape} differ in size")
    rows, columns = lung_box(mask, margin)
    return image[rows, columns]


def lung_outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of the mask (lung pixels with a non-lung 4-neighbour or on the image edge)."""
    from covidxray.lungs.morphology import erode

    mask = np.asarray(mask, dtype=bool)
    return mask & ~erode(mask)

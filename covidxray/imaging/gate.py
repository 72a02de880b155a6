"""The input gate: flag inputs that are not frontal chest radiographs before a probability is given.

Blank images, colour photographs, non-X-ray DICOM modalities, lateral views and pictures unlike
chest radiographs are flagged with a reason, so the model is never asked about a cat or a CT slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from covidxray.errors import ImageReadError

#: Side of the greyscale thumbnail that the fitted parts of the gate look at.
THUMB_SIZE = 32
#: DICOM Modality values of projection radiography (RG: generic radiographic imaging).
XRAY_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
#: Modality values that say nothing (absent, "other"): left to the image checks.
UNKNOWN_MODALITIES = frozenset({"", "OT"})
#: Below this standard deviation (on [0, 1]) or this many distinct grey levels the image is blank.
MIN_SPREAD = 0.03
MIN_GREY_LEVELS = 16
#: Mean chroma (max - min of R, G, B, on [0, 1]) above which a file is a colour picture.
#: Radiographs saved as RGB score ~0 and coloured arrows on one stay below it; colour-tinted phone
#: photographs of a radiograph on a screen (8 of 554 Cohen files) score 0.08-0.27 and are flagged.
COLOURFUL_LIMIT = 0.08
DEFAULT_GATE_PATH = Path(__file__).resolve().parents[1] / "weights" / "gate.npz"


@dataclass
class GateResult:
    """ok is True when no flag was raised; flags are short codes; reason says why in words."""

    ok: bool
    flags: list[str] = field(default_factory=list)
    reason: str = ""


#: Side of the image on which the texture statistics are measured.
STATS_SIZE = 128
STATS_NAMES = ("mean", "spread", "log_fine_detail", "log_edge_density", "histogram_entropy", "extreme_fraction", "mirror_symmetry", "mediastinum_contrast")


@dataclass(frozen=True)
class GateModel:
    """Fitted parts of the gate (see covidxray.imaging.gate_fit).

    Out-of-distribution score, ~1 for a typical frontal radiograph, flagged above ood_threshold:
    (probabilistic-PCA distance of the standardised thumbnail per pixel) + (Mahalanobis distance
    of the texture statistics per statistic). Lateral: a linear logistic model on the thumbnail.
    """

    mean: np.ndarray  # (pixels,) of the standardised thumbnail
    components: np.ndarray  # (k, pixels), orthonormal rows
    variances: np.ndarray  # (k,)
    residual_variance: float
    stats_mean: np.ndarray  # (len(STATS_NAMES),)
    stats_precision: np.ndarray  # inverse covariance of the statistics
    ood_threshold: float
    lateral_weights: np.ndarray  # (pixels,)
    lateral_bias: float
    lateral_threshold: float

    def ood_score(self, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """Scores for rows of describe() output, (n, pixels) and (n, statistics); larger = stranger."""
        vectors = np.asarray(pixels, np.float64).reshape(-1, self.mean.size) - self.mean
        projected = vectors @ self.components.T
        residual = vectors - projected @ self.components
        pixel_distance = (projected**2 / self.variances).sum(axis=1) + (residual**2).sum(axis=1) / self.residual_variance
        offsets = np.asarray(stats, np.float64).reshape(-1, self.stats_mean.size) - self.stats_mean
        stats_distance = np.einsum("ni,ij,nj->n", offsets, self.stats_precision, offsets)
        return pixel_distance / self.mean.size + stats_distance / self.stats_mean.size

    def lateral_probability(self, pixels: np.ndarray) -> np.ndarray:
        vectors = np.asarray(pixels, np.float64).reshape(-1, self.mean.size)
        return 1.0 / (1.0 + np.exp(-(vectors @ self.lateral_weights + self.lateral_bias)))

    def save(self, path: Path) -> None:
        arrays = {name: np.asarray(getattr(self, name), np.float32) for name in self.__dataclass_fields__}
        np.savez_compressed(path, thumb_size=np.int32(THUMB_SIZE), **arrays)


def load_gate_model(path: str | Path = DEFAULT_GATE_PATH) -> GateModel:
    """Read a gate written by gate_fit (numpy arrays only, no pickle)."""
    return _load(str(path))


@lru_cache(maxsize=4)
def _load(path: str) -> GateModel:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if int(arrays["thumb_size"]) != THUMB_SIZE:
                raise ImageReadError(f"{path}: gate was fitted on {int(arrays['thumb_size'])}px thumbnails, expected {THUMB_SIZE}")
            values = {name: arrays[name].astype(np.float64) for name in GateModel.__dataclass_fields__}
    except (OSError, KeyError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot load the input gate ({exc})") from None
    scalars = {"residual_variance", "ood_threshold", "lateral_bias", "lateral_threshold"}
    return GateModel(**{name: float(v) if name in scalars else v for name, v in values.items()})


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """size x size float thumbnail of a [0, 1] greyscale image, by box averaging (as read_thumbnail)."""
    grey = Image.fromarray((np.clip(image, 0.0, 1.0) * 255).astype(np.uint8))
    return np.asarray(grey.resize((size, size), Image.Resampling.BOX), np.float32) / 255.0


def describe(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the fitted gate looks at: the standardised THUMB_SIZE^2 thumbnail, and texture statistics.

    Statistics (STATS_NAMES, on a STATS_SIZE^2 copy): mean and spread of intensity, fine detail
    (pixel-scale energy / spread), edge density, histogram entropy, share of near-black or
    near-white pixels, left-right mirror correlation (chests are nearly symmetric), and how much
    brighter the central column (mediastinum, spine) is than the lung fields either side of it.
    """
    thumb = thumbnail(image).astype(np.float64)
    pixels = ((thumb - thumb.mean()) / (thumb.std() + 1e-3)).ravel()
    small = thumbnail(image, STATS_SIZE).astype(np.float64)
    spread = small.std() + 1e-3
    smooth = (small[:-1, :-1] + small[1:, :-1] + small[:-1, 1:] + small[1:, 1:]) / 4
    fine = np.abs(small[:-1, :-1] - smooth).mean() / spread
    edges = (np.abs(np.diff(small, axis=0)).mean() + np.abs(np.diff(small, axis=1)).mean()) / spread
    counts = np.histogram(small, bins=32, range=(0.0, 1.0))[0] / small.size
    entropy = -(counts[counts > 0] * np.log2(counts[counts > 0])).sum()
    extreme = np.mean((small < 0.02) | (small > 0.98))
    centred = thumb - thumb.mean()
    mirror = (centred * centred[:, ::-1]).sum() / ((centred**2).sum() + 1e-9)
    standard = pixels.reshape(THUMB_SIZE, THUMB_SIZE)
    rows, third = slice(THUMB_SIZE // 4, 7 * THUMB_SIZE // 8), THUMB_SIZE // 3
    middle = standard[rows, 7 * THUMB_SIZE // 16: 9 * THUMB_SIZE // 16].mean()
    lungs = (standard[rows, THUMB_SIZE // 6: third].mean() + standard[rows, 2 * third: 5 * THUMB_SIZE // 6].mean()) / 2
    stats = np.array([small.mean(), spread, np.log(fine + 1e-3), np.log(edges + 1e-3), entropy, extreme, mirror,
                      middle - lungs])
    return pixels, stats


def colourfulness(path: str | Path | BinaryIO) -> float:
    """Mean chroma (max - min of R, G, B) of the raw file's pixels on [0, 1]; 0 for greyscale files.

    Cheap: decoded at reduced scale where JPEG allows, and on at most 256 x 256 pixels.
    """
    try:
        with Image.open(path) as picture:
            if picture.mode in {"L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "1"}:
                return 0.0
            picture.draft("RGB", (256, 256))
            rgb = picture.convert("RGB")
            rgb.thumbnail((256, 256))
            pixels = np.asarray(rgb, np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as exc:
        label = path if isinstance(path, (str, Path)) else getattr(path, "name", "in-memory image")
        raise ImageReadError(f"{label}: cannot measure colour ({exc})") from None
    return float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean())


def is_blank(image: np.ndarray) -> tuple[bool, str]:
    """(True, why) when the image has almost no spread or only a few grey levels."""
    spread = float(np.std(image))
    levels = int(np.unique(np.round(np.asarray(image) * 255).astype(np.uint8)).size)
    if spread < MIN_SPREAD or levels < MIN_GREY_LEVELS:
        return True, f"blank or nearly constant image (spread {spread:.3f}, {levels} grey levels)"
    return False, ""


def assess_input(
    image: np.ndarray,
    *,
    modality: str | None = None,
    is_colour_photo: bool = False,
    model: GateModel | None = None,
) -> GateResult:
    """Decide whether image (2-D float [0, 1], as read_image gives) looks like a frontal chest X-ray.

    modality: the DICOM Modality when the file was DICOM (dicom_modality), else None.
    is_colour_photo: colourfulness(path) > COLOURFUL_LIMIT for the raw file.
    model: the fitted gate; the bundled covidxray/weights/gate.npz when None.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 2 or min(image.shape) < 2:
        return GateResult(False, ["not_an_image"], f"expected a 2-D greyscale image, got shape {image.shape}")
    flags: list[str] = []
    reasons: list[str] = []
    code = (modality or "").strip().upper()
    if code not in XRAY_MODALITIES and code not in UNKNOWN_MODALITIES:
        flags.append("not_xray_modality")
        reasons.append(f"DICOM modality {code} is not projection radiography (CR/DX)")
    if is_colour_photo:
        flags.append("colour_photo")
        reasons.append("colour picture, radiographs are greyscale")
    blank, why = is_blank(image)
    if blank:
        flags.append("blank")
        reasons.append(why)
    else:
        model = model or load_gate_model()
        pixels, stats = describe(image)
        score = float(model.ood_score(pixels, stats)[0])
        if score > model.ood_threshold:
            flags.append("unlike_chest_xray")
            reasons.append(f"unlike the chest radiographs the gate was fitted on (score {score:.2f} > {model.ood_threshold:.2f})")
        p_lateral = float(model.lateral_probability(pixels)[0])
        if p_lateral > model.lateral_threshold:
            flags.append("lateral_view")
            reasons.append(f"looks like a lateral view (p={p_lateral:.2f}); the model reads frontal views")
    return GateResult(not flags, flags, "; ".join(reasons) if reasons else "looks like a frontal chest radiograph")

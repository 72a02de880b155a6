"""The input gate: is this a frontal chest radiograph? Two levels of answer, each with a reason in words.

REFUSED (no probability) only for what is certainly not a frontal chest radiograph: a non-X-ray
DICOM modality or a DICOM of CT values (Hounsfield units), a colour photograph, a grey photograph
of a scene, a blank picture, a strip or fragment, a clear side view, a picture nothing like a radiograph. WARNING (probability given, with the reason) for a plausible
but unusual radiograph: unlike the ones the gate was fitted on, possibly lateral, inverted, tinted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from covidxray.errors import ImageReadError
from covidxray.paths.weights import WEIGHTS_DIR

#: Side of the greyscale thumbnail that the fitted parts of the gate look at.
THUMB_SIZE = 32
#: DICOM Modality values of projection radiography (RG: generic radiographic imaging).
XRAY_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
#: Modality values that say nothing (absent, "other"): left to the image checks.
UNKNOWN_MODALITIES = frozenset({"", "OT"})
#: Below this standard deviation (on [0, 1]) or this many distinct grey levels the image is blank.
MIN_SPREAD = 0.03
MIN_GREY_LEVELS = 16
#: Mean chroma (max - min of R, G, B, on [0, 1]) above which a file is coloured. Radiographs saved
#: as RGB score ~0; phone photographs of a radiograph on a screen (8 of 554 Cohen files) 0.08-0.27.
COLOURFUL_LIMIT = 0.08
#: Hue spread (covidxray.imaging.decoding.colour_measures) above which a coloured file is a photograph
#: of many colours, refused; below it, one tint (a photographed screen), warned. Tinted Cohen
#: radiographs score <= 0.007; real photographs 0.5-0.9.
HUE_SPREAD_LIMIT = 0.05
#: A chest radiograph is at least this many pixels across and at most this elongated
#: (the four collections: shortest side >= 156 px, aspect ratio <= 2.24).
MIN_SIDE = 64
MAX_ASPECT = 3.0
#: Side of the copy the gate works on (large images are box-averaged down to it first).
WORK_SIDE = 512
#: A photograph of a scene (scene_measures): a smooth, even, bright sky above textured ground. Each
#: limit, and the step that counts as one unit of margin in scene_likeness. On the four collections'
#: 4,461 frontal radiographs, upright and inverted, none meets all four even with every limit loosened
#: by half a step; the nearest is a radiograph overexposed above the shoulders (textured lungs, but a
#: bright band broken by the neck). Real radiographs: sky brightness <= 1.05, sky smoothness >= -0.81,
#: ground texture <= 0.21 (99.9 % <= 0.12).
SKY_BRIGHTNESS_MIN = (1.2, 0.5)  # top band minus the lower half, in standard deviations of the picture
SKY_SMOOTHNESS_MAX = (-1.2, 0.5)  # log of the band's fine detail over the lower half's
SKY_EVENNESS_MAX = (0.45, 0.2)  # spread of the band's column means, in standard deviations
GROUND_TEXTURE_MIN = (0.10, 0.03)  # fine detail of the lower half relative to its own spread
#: Share of the picture's height that the sky band covers, below any flat black or white border.
SKY_BAND = 0.15
DEFAULT_GATE_PATH = WEIGHTS_DIR / "gate.npz"

OK, WARNING, REFUSED = "ok", "warning", "refused"
#: Plain-words reasons for each flag; the numbers behind them go in GateResult.scores.
REASONS = {
    "not_an_image": "is not a 2-D picture",
    "not_xray_modality": "is a {modality} scan according to its DICOM header, not a radiograph (CR/DX)",
    "ct_values": "holds values from {hu_low} to {hu_high}, the Hounsfield units of a CT slice, not a radiograph",
    "colour_photo": "looks like a colour photograph; radiographs are grey",
    "blank": "is blank or nearly a single shade",
    "wrong_shape": "is {width} x {height} pixels, not the shape of a chest radiograph (a strip or a fragment)",
    "lateral_view": "looks like a side (lateral) view; the model reads front (PA/AP) views",
    "not_chest_xray": "does not look like a chest radiograph at all",
    "photograph": "looks like a photograph of a scene (a smooth bright sky over textured ground), not a radiograph",
    "maybe_lateral": "may be a side (lateral) view; the model reads front (PA/AP) views",
    "unusual": "is unusual for a chest radiograph (cropped, rotated, heavily processed, or a different body part); check it",
    "inverted": "looks like a negative (inverted) image: bones dark, air bright",
    "tinted": "is tinted in one colour, like a photograph of a screen",
    "fragment": "looks like a small part of a radiograph, not the whole chest",
}
REFUSING_FLAGS = frozenset({"not_an_image", "not_xray_modality", "ct_values", "colour_photo", "photograph", "blank",
                            "wrong_shape", "lateral_view", "not_chest_xray"})


@dataclass
class GateResult:
    """status: 'ok', 'warning' (probability given, with reason) or 'refused' (no probability).

    flags are short codes; reason says why in plain words; scores hold the numbers behind them.
    ok is True unless refused.
    """

    ok: bool
    flags: list[str] = field(default_factory=list)
    reason: str = ""
    status: str = OK
    scores: dict[str, float] = field(default_factory=dict)


#: Side of the image on which the texture statistics are measured.
STATS_SIZE = 128
STATS_NAMES = ("mean", "spread", "log_fine_detail", "log_edge_density", "histogram_entropy", "extreme_fraction",
               "mirror_symmetry", "mediastinum_contrast")


@dataclass(frozen=True)
class GateModel:
    """Fitted parts of the gate (see covidxray.gate.fit).

    Out-of-distribution score, ~1 for a typical frontal radiograph: (probabilistic-PCA distance of
    the standardised thumbnail per pixel) + (Mahalanobis distance of the texture statistics per
    statistic); warned above ood_warn, refused above ood_refuse. Lateral and inverted: linear
    logistic models on the thumbnail pixels and statistics; lateral refused above lateral_refuse,
    warned above lateral_warn; inverted and fragment (a small part of a radiograph) warned above
    inverted_warn, fragment_warn.
    """

    mean: np.ndarray  # (pixels,) of the standardised thumbnail
    components: np.ndarray  # (k, pixels), orthonormal rows
    variances: np.ndarray  # (k,)
    residual_variance: float
    stats_mean: np.ndarray  # (len(STATS_NAMES),)
    stats_precision: np.ndarray  # inverse covariance of the statistics
    ood_warn: float
    ood_refuse: float
    lateral_weights: np.ndarray  # (pixels + statistics,)
    lateral_bias: float
    lateral_warn: float
    lateral_refuse: float
    inverted_weights: np.ndarray  # (pixels + statistics,)
    inverted_bias: float
    inverted_warn: float
    fragment_weights: np.ndarray  # (pixels + statistics,)
    fragment_bias: float
    fragment_warn: float

    def ood_score(self, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """Scores for rows of describe() output, (n, pixels) and (n, statistics); larger = stranger."""
        vectors = np.asarray(pixels, np.float64).reshape(-1, self.mean.size) - self.mean
        projected = vectors @ self.components.T
        residual = vectors - projected @ self.components
        pixel_distance = (projected**2 / self.variances).sum(axis=1) + (residual**2).sum(axis=1) / self.residual_variance
        offsets = np.asarray(stats, np.float64).reshape(-1, self.stats_mean.size) - self.stats_mean
        stats_distance = np.einsum("ni,ij,nj->n", offsets, self.stats_precision, offsets)
        return pixel_distance / self.mean.size + stats_distance / self.stats_mean.size

    def lateral_probability(self, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return _logistic(features(pixels, stats) @ self.lateral_weights + self.lateral_bias)

    def inverted_probability(self, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return _logistic(features(pixels, stats) @ self.inverted_weights + self.inverted_bias)

    def fragment_probability(self, pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return _logistic(features(pixels, stats) @ self.fragment_weights + self.fragment_bias)

    def flags(self, score: float, p_lateral: float, p_inverted: float, p_fragment: float,
              scene: float | None = None) -> list[str]:
        """The threshold ladder, in one place: each of one image's scores against its warn and refuse levels.

        Args:
            score: ood_score; refused above ood_refuse ("not_chest_xray"), warned above ood_warn ("unusual").
            p_lateral: lateral_probability; refused above lateral_refuse, warned above lateral_warn.
            p_inverted: inverted_probability; warned above inverted_warn.
            p_fragment: fragment_probability; warned above fragment_warn.
            scene: scene_likeness; refused ("photograph") above 0 when the fitted scores already flag
                the picture (a photograph must look like a scene and unlike a clean radiograph).

        Returns:
            The flags (codes of REASONS), in the order assess_input reports them.
        """
        found = []
        if score > self.ood_refuse:
            found.append("not_chest_xray")
        elif score > self.ood_warn:
            found.append("unusual")
        if p_lateral > self.lateral_refuse:
            found.append("lateral_view")
        elif p_lateral > self.lateral_warn:
            found.append("maybe_lateral")
        if p_inverted > self.inverted_warn:
            found.append("inverted")
        if p_fragment > self.fragment_warn:
            found.append("fragment")
        if scene is not None and scene > 0 and found:
            found.insert(0, "photograph")
        return found

    def save(self, path: Path) -> None:
        arrays = {name: np.asarray(getattr(self, name), np.float32) for name in self.__dataclass_fields__}
        np.savez_compressed(path, thumb_size=np.int32(THUMB_SIZE), **arrays)


SCALARS = {"residual_variance", "ood_warn", "ood_refuse", "lateral_bias", "lateral_warn", "lateral_refuse",
           "inverted_bias", "inverted_warn", "fragment_bias", "fragment_warn"}


def _logistic(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -50, 50)))


def features(pixels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """The linear detectors' input: thumbnail pixels and statistics side by side, (n, pixels + statistics)."""
    pixels = np.asarray(pixels, np.float64).reshape(-1, THUMB_SIZE * THUMB_SIZE)
    return np.hstack([pixels, np.asarray(stats, np.float64).reshape(len(pixels), -1)])


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
    return GateModel(**{name: float(v) if name in SCALARS else v for name, v in values.items()})


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """size x size float thumbnail of a [0, 1] greyscale image, by box averaging."""
    picture = Image.fromarray(np.asarray(image, np.float32))
    return np.clip(np.asarray(picture.resize((size, size), Image.Resampling.BOX), np.float32), 0.0, 1.0)


def working_copy(image: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """The image box-averaged so its longer side is at most side (itself when already small)."""
    height, width = image.shape
    scale = side / max(height, width)
    if scale >= 1:
        return np.asarray(image, np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.asarray(image, np.float32))
    return np.asarray(picture.resize(size, Image.Resampling.BOX), np.float32)


def describe(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the fitted gate looks at: the standardised THUMB_SIZE^2 thumbnail, and texture statistics.

    Statistics (STATS_NAMES, on a STATS_SIZE^2 copy): mean and spread of intensity, fine detail
    (pixel-scale energy / spread), edge density, histogram entropy, share of near-black or
    near-white pixels, left-right mirror correlation (chests are nearly symmetric), and how much
    brighter the central column (mediastinum, spine) is than the lung fields either side of it.
    """
    image = working_copy(image)
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


def scene_measures(image: np.ndarray, side: int = STATS_SIZE) -> dict[str, float]:
    """What tells a photograph of a scene from a radiograph: a smooth, even, bright sky above textured ground.

    Measured on a side x side copy, below any flat black or white border rows at the top (a
    radiograph's padding, which would otherwise pass for a sky), the picture standardised:
    sky_brightness, the top SKY_BAND's mean minus the lower half's; sky_smoothness, the log of the
    band's fine detail over the lower half's; sky_evenness, the spread of the band's column means (a
    radiograph's top holds the neck between the shoulders); ground_texture, the lower half's fine
    detail relative to its own spread (grass and soil against lungs and abdomen).

    Args:
        image: 2-D float [0, 1].
        side: side of the copy measured.

    Returns:
        The four measures by name.
    """
    small = thumbnail(working_copy(image), side).astype(np.float64)
    spread, level = small.std(axis=1), small.mean(axis=1)
    start = 0
    while start < side // 2 and spread[start] < 0.01 and (level[start] < 0.06 or level[start] > 0.94):
        start += 1
    picture = small[start:]
    band, half = max(4, round(side * SKY_BAND)), len(picture) // 2
    standard = (picture - picture.mean()) / (picture.std() + 1e-3)
    fine = _fine_detail(standard)
    ground = picture[half:]
    return {
        "sky_brightness": float(standard[:band].mean() - standard[half:].mean()),
        "sky_smoothness": float(np.log((fine[:band].mean() + 1e-3) / (fine[half:].mean() + 1e-3))),
        "sky_evenness": float(standard[:band].mean(axis=0).std()),
        "ground_texture": float(_fine_detail((ground - ground.mean()) / (ground.std() + 1e-3)).mean()),
    }


def scene_likeness(measures: dict[str, float]) -> float:
    """How far a picture's scene_measures lie inside all four photograph limits, in steps; > 0 inside all."""
    margins = [
        (measures["sky_brightness"] - SKY_BRIGHTNESS_MIN[0]) / SKY_BRIGHTNESS_MIN[1],
        (SKY_SMOOTHNESS_MAX[0] - measures["sky_smoothness"]) / SKY_SMOOTHNESS_MAX[1],
        (SKY_EVENNESS_MAX[0] - measures["sky_evenness"]) / SKY_EVENNESS_MAX[1],
        (measures["ground_texture"] - GROUND_TEXTURE_MIN[0]) / GROUND_TEXTURE_MIN[1],
    ]
    return float(min(margins))


def _fine_detail(picture: np.ndarray) -> np.ndarray:
    """|pixel - mean of its 2x2 block|: the pixel-scale detail map, one row and column smaller."""
    return np.abs(picture[:-1, :-1] - (picture[:-1, :-1] + picture[1:, :-1] + picture[:-1, 1:] + picture[1:, 1:]) / 4)


def colourfulness(path: str | Path | BinaryIO) -> float:
    """Mean chroma (max - min of R, G, B) of the file's pixels on [0, 1]; 0 for greyscale files.

    Reads the file (path or open binary file, DICOM included) through covidxray.imaging.read.
    """
    from covidxray.imaging.read import read_image_facts

    if isinstance(path, (str, Path)):
        return read_image_facts(path).colourfulness
    position = path.tell()
    data = path.read()
    path.seek(position)
    return read_image_facts(data, str(getattr(path, "name", "") or "in-memory image")).colourfulness


def is_blank(image: np.ndarray) -> tuple[bool, str]:
    """(True, why) when the image has almost no spread or only a few grey levels."""
    small = working_copy(image, 1024)
    spread = float(np.std(small))
    levels = int(np.unique(np.round(small * 255).astype(np.uint8)).size)
    if spread < MIN_SPREAD or levels < MIN_GREY_LEVELS:
        return True, f"blank or nearly constant image (spread {spread:.3f}, {levels} grey levels)"
    return False, ""


def assess_input(
    image: np.ndarray,
    *,
    modality: str | None = None,
    is_colour_photo: bool = False,
    colourfulness: float | None = None,
    hue_spread: float | None = None,
    hounsfield_range: tuple[float, float] | None = None,
    model: GateModel | None = None,
    warnings: bool = True,
) -> GateResult:
    """Decide whether image looks like a frontal chest X-ray, before any probability is given.

    Args:
        image: 2-D float [0, 1], as read_image gives.
        modality: the DICOM Modality when the file was DICOM, else None.
        is_colour_photo: the caller's own verdict that the file is a colour photograph, used when
            colourfulness is not given.
        colourfulness: of the raw file (covidxray.imaging.decoding.ReadImage).
        hue_spread: of the raw file; tells a photograph from a tinted radiograph.
        hounsfield_range: a DICOM's values when they are the Hounsfield units of a CT slice
            (covidxray.imaging.decoding.ReadImage); refused unless the header names a radiograph modality.
        model: the fitted gate; the bundled covidxray/weights/gate.npz when None.
        warnings: False drops the warning level (unusual but plausible radiographs pass silently).

    Returns:
        GateResult: status ok, warning or refused, with flags, reason and scores.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 2 or min(image.shape) < 2:
        return verdict(["not_an_image"], {}, warnings, {})
    flags: list[str] = []
    scores: dict[str, float] = {}
    words: dict[str, str] = {}
    code = (modality or "").strip().upper()
    if code not in XRAY_MODALITIES and code not in UNKNOWN_MODALITIES:
        flags.append("not_xray_modality")
        words["modality"] = code if code.isalnum() and len(code) <= 4 else "non-radiograph"
    elif hounsfield_range is not None and code not in XRAY_MODALITIES:
        flags.append("ct_values")
        words.update(hu_low=str(int(hounsfield_range[0])), hu_high=str(int(hounsfield_range[1])))
    if colourfulness is not None:
        scores["colourfulness"] = round(float(colourfulness), 4)
        if colourfulness > COLOURFUL_LIMIT:
            scores["hue_spread"] = round(float(hue_spread or 0.0), 4)
            flags.append("colour_photo" if (hue_spread or 0.0) > HUE_SPREAD_LIMIT else "tinted")
    elif is_colour_photo:
        flags.append("colour_photo")
    height, width = image.shape
    words.update(width=str(width), height=str(height))
    if min(height, width) < MIN_SIDE or max(height, width) / min(height, width) > MAX_ASPECT:
        flags.append("wrong_shape")
    blank, _ = is_blank(image)
    if blank:
        flags.append("blank")
    elif "wrong_shape" not in flags:
        model = model or load_gate_model()
        work = working_copy(image)
        pixels, stats = describe(work)
        score = float(model.ood_score(pixels, stats)[0])
        p_lateral = float(model.lateral_probability(pixels, stats)[0])
        p_inverted = float(model.inverted_probability(pixels, stats)[0])
        p_fragment = float(model.fragment_probability(pixels, stats)[0])
        scene = scene_likeness(scene_measures(work))
        scores.update(unlike_score=round(score, 3), p_lateral=round(p_lateral, 3), p_inverted=round(p_inverted, 3),
                      p_fragment=round(p_fragment, 3), scene_likeness=round(scene, 3))
        flags += model.flags(score, p_lateral, p_inverted, p_fragment, scene)
    return verdict(flags, scores, warnings, words)


def verdict(flags: list[str], scores: dict[str, float] | None = None, warnings: bool = True,
            words: dict[str, str] | None = None) -> GateResult:
    """The one answer for an image's flags: refused when any flag refuses, else warning (or ok).

    Args:
        flags: codes of REASONS, in the order found.
        scores: the numbers behind the flags, kept in the result.
        warnings: False drops the warning level (the result is ok unless refused).
        words: values for the reasons' {placeholders} (modality, width, height).

    Returns:
        GateResult whose reason says why in plain words.
    """
    scores, words = scores or {}, words or {}
    refusing = [flag for flag in flags if flag in REFUSING_FLAGS]
    if refusing:
        shown = refusing
        status = REFUSED
    elif flags and warnings:
        shown, status = flags, WARNING
    else:
        shown, status = [], OK
    if not shown:
        reason = "looks like a frontal chest radiograph"
    else:
        reason = "; ".join(REASONS[flag].format_map(_Words(words)) for flag in shown)
        reason = ("Not screened: the image " if status == REFUSED else "Screened, but check: the image ") + reason
    return GateResult(status != REFUSED, shown, reason, status, scores)


class _Words(dict):
    def __missing__(self, key: str) -> str:
        return "?"

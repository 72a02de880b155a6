"""Estimate COVID-19 severity scores (geographic extent 0-8, opacity 0-6) from one frontal X-ray.

Features of the lung field (area, brightness and texture per lung zone) feed two ridge regressions
fitted by covidxray.lungs.severity_fit; the bundled model is a plain .npz, loadable without pickle.
A model may also read one classifier's penultimate features: it is then tied to that classifier's
sha256, and any other classifier gets the lungs-only model (bundled_severity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covidxray.errors import CovidxrayError
from covidxray.lungs.segmenter import lung_crop
from covidxray.paths.weights import WEIGHTS_DIR

DEFAULT_WEIGHTS = WEIGHTS_DIR / "severity.npz"
#: The severity model that also reads the bundled classifier's features (tied to its sha256).
DEFAULT_MODEL_WEIGHTS = DEFAULT_WEIGHTS.with_name("severity-default-model.npz")
CLASSIFIER_FEATURE = "classifier_{}"
MODEL_FORMAT = "covidxray-severity/1"
#: Score ranges as defined by the raters (Cohen et al. 2020): extent 0-8 (0-4 per lung), opacity 0-6.
EXTENT_RANGE = (0.0, 8.0)
OPACITY_RANGE = (0.0, 6.0)
#: Side of the square the image and mask are resized to before features are measured.
FEATURE_SIDE = 256
#: Intensity (after scaling the image's 2nd-98th percentiles to 0-1) above which a lung pixel counts as dense.
DENSE_LEVEL = 0.6
ZONES = tuple(f"{side}_{level}" for side in ("right", "left") for level in ("upper", "middle", "lower"))
ZONE_MEASURES = ("mean", "p90", "dense", "gradient", "local_std")
GLOBAL_MEASURES = ("lung_area", "lung_mean", "lung_std", "lung_p10", "lung_p50", "lung_p90",
                   "lung_minus_body", "dense", "area_balance")
#: Side of the thumbnail of the lung box (plus a 5% margin) whose pixels are features too.
THUMB_SIDE = 16
FEATURE_NAMES = (GLOBAL_MEASURES + tuple(f"{zone}_{measure}" for zone in ZONES for measure in ZONE_MEASURES)
                 + tuple(f"thumb_{row}_{column}" for row in range(THUMB_SIDE) for column in range(THUMB_SIDE)))


class SeverityModelError(CovidxrayError):
    """A severity model file is missing, unreadable or not of this format."""


def _resize(array: np.ndarray, side: int, order: int) -> np.ndarray:
    from scipy import ndimage  # imported when a score is computed: scipy.ndimage takes ~0.5 s to import

    return ndimage.zoom(array, (side / array.shape[0], side / array.shape[1]), order=order, grid_mode=True, mode="nearest")


def fallback_mask(shape: tuple[int, int]) -> np.ndarray:
    """A central box where lungs usually are, used when a mask is empty."""
    mask = np.zeros(shape, dtype=bool)
    rows, columns = shape
    mask[int(0.15 * rows):int(0.85 * rows), int(0.1 * columns):int(0.9 * columns)] = True
    return mask


def severity_features(image: np.ndarray, lung_mask: np.ndarray) -> np.ndarray:
    """FEATURE_NAMES-ordered float vector for a 2-D [0, 1] image and its boolean lung mask.

    Intensities are first scaled so the image's 2nd and 98th percentiles become 0 and 1, so the
    features compare the lungs with the rest of the same film. Zones: the lungs' bounding box is
    cut into the patient's right (image left) and left halves, each into thirds from top to bottom.
    Last come the pixels of a THUMB_SIDE x THUMB_SIDE thumbnail of the lung box (5% margin).
    """
    if image.ndim != 2 or image.shape != lung_mask.shape:
        raise ValueError(f"image {image.shape} and lung mask {lung_mask.shape} must be 2-D and of one size")
    from scipy import ndimage

    mask = np.asarray(lung_mask, dtype=bool)
    if mask.sum() < 0.01 * mask.size:
        mask = fallback_mask(mask.shape)
    picture = _resize(np.asarray(image, dtype=np.float32), FEATURE_SIDE, order=1)
    mask = _resize(mask.astype(np.float32), FEATURE_SIDE, order=1) > 0.5
    low, high = np.percentile(picture, [2, 98])
    picture = np.clip((picture - low) / max(high - low, 1e-3), -0.5, 1.5)
    gradient = np.hypot(ndimage.sobel(picture, 0), ndimage.sobel(picture, 1))
    local_mean = ndimage.uniform_filter(picture, 9)
    local_std = np.sqrt(np.clip(ndimage.uniform_filter(picture ** 2, 9) - local_mean ** 2, 0, None))
    lung = picture[mask]
    body = picture[~mask]
    right_area = mask[:, :FEATURE_SIDE // 2].sum()
    values = [
        mask.mean(), lung.mean(), lung.std(), *np.percentile(lung, [10, 50, 90]),
        lung.mean() - (body.mean() if body.size else 0.0), (lung > DENSE_LEVEL).mean(),
        (right_area - (mask.sum() - right_area)) / mask.sum(),
    ]
    for zone in zone_masks(mask):
        if zone.sum() < 4:
            zone = mask
        pixels = picture[zone]
        values += [pixels.mean(), np.percentile(pixels, 90), (pixels > DENSE_LEVEL).mean(),
                   gradient[zone].mean(), local_std[zone].mean()]
    box = np.clip(lung_crop(picture, mask, margin=0.05), 0, 1)
    values += list(_resize(box, THUMB_SIDE, order=1).ravel()) if min(box.shape) >= 2 else [0.0] * THUMB_SIDE ** 2
    return np.asarray(values, dtype=np.float64)


def zone_masks(mask: np.ndarray) -> list[np.ndarray]:
    """Six boolean masks in ZONES order: image-left half then image-right half, thirds by rows."""
    columns = np.flatnonzero(mask.any(axis=0))
    middle = (columns[0] + columns[-1] + 1) // 2
    zones = []
    for side in (slice(0, middle), slice(middle, mask.shape[1])):
        half = np.zeros_like(mask)
        half[:, side] = mask[:, side]
        rows = np.flatnonzero(half.any(axis=1))
        if not len(rows):
            zones += [half] * 3
            continue
        edges = np.linspace(rows[0], rows[-1] + 1, 4).round().astype(int)
        for top, bottom in zip(edges[:-1], edges[1:]):
            zone = np.zeros_like(mask)
            zone[top:bottom] = half[top:bottom]
            zones.append(zone)
    return zones


@dataclass
class SeverityModel:
    """Standardise the features, then one linear map per score, clamped to the score's range."""

    feature_mean: np.ndarray
    feature_scale: np.ndarray
    coefficients: np.ndarray  # (2, features): extent, opacity
    intercepts: np.ndarray  # (2,)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    #: sha256 of the classifier checkpoint whose penultimate features follow the lung features ("" for none).
    classifier_sha256: str = ""

    @property
    def classifier_features(self) -> int:
        """How many of the classifier's penultimate features the model reads (0: lung features only)."""
        return len(self.feature_names) - len(FEATURE_NAMES)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SeverityModel":
        """Read a model written by save() (default: the bundled covidxray/weights/severity.npz)."""
        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise SeverityModelError(f"{path}: severity model not found (fit one with `covidxray severity fit`)")
        try:
            with np.load(path, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
        except (OSError, ValueError) as exc:
            raise SeverityModelError(f"{path}: not a readable severity model ({exc})") from None
        if str(arrays.get("format", "")) != MODEL_FORMAT:
            raise SeverityModelError(f"{path}: not a severity model file (expected format {MODEL_FORMAT})")
        names = tuple(str(n) for n in arrays["feature_names"])
        extra = names[len(FEATURE_NAMES):]
        tied = str(arrays.get("classifier_sha256", ""))
        if names[:len(FEATURE_NAMES)] != FEATURE_NAMES or extra != classifier_feature_names(len(extra)) or bool(extra) != bool(tied):
            raise SeverityModelError(f"{path}: fitted on other features ({len(names)}) than this version computes "
                                     f"({len(FEATURE_NAMES)}); refit with `covidxray severity fit`")
        return cls(arrays["feature_mean"], arrays["feature_scale"], arrays["coefficients"], arrays["intercepts"], names, tied)

    def save(self, path: str | Path, **record: np.ndarray) -> Path:
        """Write the model as plain numpy arrays (np.savez), plus any extra arrays in record."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, format=np.array(MODEL_FORMAT), feature_mean=self.feature_mean, feature_scale=self.feature_scale,
                 coefficients=self.coefficients, intercepts=self.intercepts,
                 feature_names=np.array(self.feature_names), classifier_sha256=np.array(self.classifier_sha256), **record)
        return path

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(N, 2) clamped (extent, opacity) for an (N, features) or (features,) array."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != len(self.feature_mean):
            raise ValueError(f"expected {len(self.feature_mean)} features, got {features.shape[1]}")
        scores = (features - self.feature_mean) / self.feature_scale @ self.coefficients.T + self.intercepts
        scores = np.nan_to_num(scores, nan=0.0)
        return np.column_stack([np.clip(scores[:, 0], *EXTENT_RANGE), np.clip(scores[:, 1], *OPACITY_RANGE)])

    def predict(self, image: np.ndarray, lung_mask: np.ndarray | None = None,
                classifier_features: np.ndarray | None = None) -> tuple[float, float]:
        """(geographic extent 0-8, opacity 0-6) for one image.

        Args:
            image: 2-D float [0, 1].
            lung_mask: boolean, the image's size; None finds it with the bundled LungSegmenter.
            classifier_features: the classifier's penultimate features of the same image, which a
                model tied to that classifier needs.

        Returns:
            (extent, opacity), clipped to the raters' ranges.
        """
        if lung_mask is None:
            from covidxray.lungs.segmenter import bundled_segmenter

            lung_mask = bundled_segmenter().mask(image)
        features = severity_features(image, lung_mask)
        if self.classifier_features:
            if classifier_features is None:
                raise ValueError("this severity model reads the classifier's penultimate features; none were given")
            features = np.concatenate([features, np.asarray(classifier_features, dtype=np.float64).ravel()])
        extent, opacity = self.predict_features(features)[0]
        return float(extent), float(opacity)


def classifier_feature_names(count: int) -> tuple[str, ...]:
    return tuple(CLASSIFIER_FEATURE.format(number) for number in range(count))


def bundled_severity(classifier_path: str | Path | None = None) -> SeverityModel | None:
    """The bundled severity model fitted on this classifier's features when there is one (the same
    sha256), else the lungs-only one; None when this installation has no severity weights."""
    from covidxray.hashing import sha256_file

    if classifier_path is not None and DEFAULT_MODEL_WEIGHTS.is_file():
        try:
            tied = SeverityModel.load(DEFAULT_MODEL_WEIGHTS)
            if tied.classifier_sha256 == sha256_file(classifier_path):
                return tied
        except (CovidxrayError, OSError):
            pass  # the lungs-only model below still scores
    try:
        return SeverityModel.load(DEFAULT_WEIGHTS)
    except CovidxrayError:
        return None

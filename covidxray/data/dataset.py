"""A torch Dataset over one part of a split file, each image decoded and resized only once.

Decoded arrays are cached on disk under a key of the preprocessing, so changing size, crop or
equalisation starts a new cache and never mixes arrays prepared differently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from covidxray.data.labels import BINARY_LABELS, LABELS
from covidxray.errors import DatasetError, ImageReadError
from covidxray.imaging.augment import Augmentation
from covidxray.imaging.preprocess import Preprocessing, prepare_array, prepare_with_lungs
from covidxray.imaging.read import read_image
from covidxray.parallel import map_in_order

#: Label names per task, in the order of the model's outputs (binary: one logit for 'covid').
TASK_LABELS: dict[str, tuple[str, ...]] = {"binary": BINARY_LABELS, "3class": LABELS}


def default_cache_dir() -> Path:
    """$COVIDXRAY_CACHE, else ~/.cache/covidxray."""
    return Path(os.environ.get("COVIDXRAY_CACHE") or Path.home() / ".cache" / "covidxray")


def task_labels(task: str) -> tuple[str, ...]:
    if task not in TASK_LABELS:
        raise DatasetError(f"unknown task '{task}'; choose one of: {', '.join(TASK_LABELS)}")
    return TASK_LABELS[task]


def targets_for(labels: pd.Series, task: str) -> np.ndarray:
    """covid/pneumonia/normal -> class index of the task (binary: covid = 1, else 0)."""
    names = task_labels(task)
    if task == "binary":
        return (labels == "covid").to_numpy().astype(np.int64)
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise DatasetError(f"labels {unknown} are not in the 3-class task's labels {list(names)}")
    return labels.map({name: index for index, name in enumerate(names)}).to_numpy().astype(np.int64)


def split_part(split: pd.DataFrame, part: str, split_path: str | Path = "split file") -> pd.DataFrame:
    """Rows of one part (train, val, test, external) that carry a label, index reset.

    Args:
        split: the split table.
        part: the part's name in its split column.
        split_path: the file, named in the error when the part is missing or empty.

    Returns:
        The part's labelled rows.
    """
    if "split" not in split:
        raise DatasetError(
            f"{split_path}: has no 'split' column; write one with `covidxray data split` (columns found: "
            f"{', '.join(split.columns[:8])}{', ...' if len(split.columns) > 8 else ''})"
        )
    rows = split[(split["split"] == part) & (split["label"] != "")]
    return rows.reset_index(drop=True)


class ImageCache:
    """Decoded, cropped, equalised, resized images as uint16 .npy files, keyed by path and
    preprocessing; load(path) returns float32 (size, size) in [0, 1]."""

    def __init__(self, root: str | Path, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing
        self.folder = Path(root) / f"{preprocessing.size}px-{preprocessing.cache_key()}"

    def file_for(self, path: str) -> Path:
        stat = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"

    def prepare(self, paths: list[str], workers: int = 0, progress: Callable | None = None,
                with_lungs: bool = False) -> dict[str, str]:
        """Decode into the cache whatever is not there yet.

        Args:
            paths: the images.
            workers: processes (0 or 1: this one).
            progress: called once per image done.
            with_lungs: also each image's lung mask in its frame (load_lungs).

        Returns:
            {path: reason} for the images that cannot be read.
        """
        return warm_cache(self, paths, workers, progress, with_lungs)

    def load(self, path: str) -> np.ndarray:
        """The prepared image of path, from the cache or decoded now (and cached)."""
        cached = self._cached(path)
        if cached.exists():
            try:
                return np.load(cached).astype(np.float32) / 65535.0
            except (OSError, ValueError):
                pass  # a torn file from a killed run: decode again
        return self._decode(path, with_lungs=self.preprocessing.reads_lungs)[0]

    def load_lungs(self, path: str) -> np.ndarray:
        """The lung mask of path's prepared image, in its frame: (size, size) float32, each pixel's share inside
        the lungs (the bundled segmenter's). Kept beside the image; decoded with it when missing."""
        cached = self._lungs_file(self._cached(path))
        if cached.exists():
            try:
                return np.load(cached).astype(np.float32) / 255.0
            except (OSError, ValueError):
                pass
        return self._decode(path, with_lungs=True)[1]

    def _cached(self, path: str) -> Path:
        try:
            return self.file_for(path)
        except FileNotFoundError:
            raise ImageReadError(f"{path}: file not found") from None

    @staticmethod
    def _lungs_file(image_file: Path) -> Path:
        return image_file.with_name(image_file.stem + "-lungs.npy")

    def _decode(self, path: str, with_lungs: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode path, write its prepared image (and lung mask, when it was found anyway or asked for)."""
        image = read_image(path)
        if with_lungs:
            array, lungs = prepare_with_lungs(image, self.preprocessing)
        else:
            array, lungs = prepare_array(image, self.preprocessing), None
        cached = self._cached(path)
        _write_atomically(cached, np.round(array * 65535.0).astype(np.uint16))
        if lungs is not None:
            _write_atomically(self._lungs_file(cached), np.round(lungs * 255.0).astype(np.uint8))
        return array, lungs


def _write_atomically(target: Path, values: np.ndarray) -> None:
    """Write then rename, so parallel workers and ranks never read a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        np.save(stream, values)
    os.replace(temporary, target)


def _warm_one(arguments: tuple[str, str, dict, bool]) -> str:
    path, root, preprocessing, with_lungs = arguments
    cache = ImageCache(root, Preprocessing.from_dict(preprocessing))
    try:
        cache.load(path)
        if with_lungs:
            cache.load_lungs(path)
    except ImageReadError as exc:
        return str(exc)
    return ""


def warm_cache(cache: ImageCache, paths: list[str], workers: int = 0, progress: Callable | None = None,
               with_lungs: bool = False) -> dict[str, str]:
    """Decode every image not yet cached, so training epochs read only prepared copies.

    Args:
        cache: the ImageCache to fill.
        paths: the images.
        workers: processes (0 or 1: this one).
        progress: called once per image done.
        with_lungs: also each image's lung mask in its frame.

    Returns:
        {path: reason} for the images that cannot be read.
    """
    failures: dict[str, str] = {}
    arguments = [(path, str(cache.folder.parent), cache.preprocessing.to_dict(), with_lungs) for path in paths]
    for path, reason in zip(paths, map_in_order(_warm_one, arguments, workers)):
        if reason:
            failures[path] = reason
        if progress:
            progress()
    return failures


class XrayDataset(Dataset):
    """(image (1, size, size) float in [0, 1], class index) for each row of a split part, then the
    source index when sources are given (adversarial training) and the lung mask in the image's
    frame when lungs is set (the lung-evidence penalty), in that order.

    augment, if given, is applied to the cached array on every access (training only); a lung mask
    is moved with its image.
    """

    def __init__(self, paths: list[str], targets: np.ndarray, cache: ImageCache,
                 augment: "Augmentation | Callable[[torch.Tensor], torch.Tensor] | None" = None,
                 sources: np.ndarray | None = None, lungs: bool = False) -> None:
        if len(paths) != len(targets):
            raise DatasetError(f"{len(paths)} paths but {len(targets)} targets")
        if lungs and not hasattr(cache, "load_lungs"):
            raise DatasetError("lung masks are read from an image cache; this image source has none (a pack?)")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.cache = cache
        self.augment = augment
        self.sources = None if sources is None else np.asarray(sources, dtype=np.int64)
        self.lungs = lungs

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple:
        """(image, class index[, source index][, lung mask])."""
        path = self.paths[index]
        image = torch.from_numpy(self.cache.load(path)).unsqueeze(0)
        mask = torch.from_numpy(self.cache.load_lungs(path)).unsqueeze(0) if self.lungs else None
        if self.augment is not None:
            if mask is not None:
                image, mask = self.augment.paired(image, mask)
            else:
                image = self.augment(image)
        item: tuple = (image, int(self.targets[index]))
        if self.sources is not None:
            item += (int(self.sources[index]),)
        if mask is not None:
            item += (mask,)
        return item

"""A training pack: the images of some split parts, shrunk, in one portable file.

The raw datasets live beside the project and weigh far more than a remote GPU machine can be
sent. A pack holds each image once, read exactly as `read_image` reads it, shrunk to a longest
side of `max_side` pixels and stored as 8-bit JPEG, keyed by the split file's `path` column.
Training from a pack (`covidxray train --pack`) applies the model's own preprocessing to these
copies, so one pack serves every size, crop and equalisation setting; the checkpoint records
the pack's hash. Evaluation always reads the original files.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from covidxray.errors import DatasetError, ImageReadError
from covidxray.hashing import sha256_file
from covidxray.imaging.preprocess import Preprocessing, prepare_array
from covidxray.imaging.read import read_image
from covidxray.parallel import map_in_order

PACK_FORMAT = "covidxray-pack/1"


@dataclass(frozen=True)
class PackSummary:
    """A written pack: its path, the images in it, those unreadable (path -> why), its size in MB."""

    path: Path
    images: int
    unreadable: dict[str, str]
    megabytes: float


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """[0, 1] float image -> uint8 image whose longest side is at most max_side (aspect kept)."""
    pixels = Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8))
    height, width = image.shape
    scale = max_side / max(height, width)
    if scale < 1.0:
        pixels = pixels.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)
    return np.asarray(pixels)


def _encode(arguments: tuple[str, int, int]) -> tuple[str, bytes, str]:
    path, max_side, quality = arguments
    try:
        small = shrink(read_image(path), max_side)
    except ImageReadError as exc:
        return path, b"", str(exc)
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=quality)
    return path, buffer.getvalue(), ""


def write_pack(paths: Iterable[str], out: str | Path, max_side: int = 256, quality: int = 92, workers: int = 0,
               note: dict | None = None, progress: Callable[[], None] | None = None) -> PackSummary:
    """Read, shrink and JPEG-encode each path into one .npz file at out (never touching the sources).

    Args:
        paths: the images (duplicates packed once).
        out: the pack to write.
        max_side: longest side of each stored image (32..4096 pixels).
        quality: JPEG quality (50..100).
        workers: processes (0 or 1: this one).
        note: provenance stored in the pack's meta (the splits it came from).
        progress: called once per image done.

    Returns:
        PackSummary.
    """
    if not 32 <= max_side <= 4096:
        raise DatasetError(f"--max-side {max_side} is outside 32..4096 pixels")
    if not 50 <= quality <= 100:
        raise DatasetError(f"--quality {quality} is outside 50..100")
    paths = sorted(set(paths))
    if not paths:
        raise DatasetError("nothing to pack: no labelled rows in the chosen parts")
    arguments = [(path, max_side, quality) for path in paths]
    encoded: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    for path, data, reason in map_in_order(_encode, arguments, workers):
        if reason:
            unreadable[path] = reason
        else:
            encoded[path] = data
        if progress:
            progress()
    kept = sorted(encoded)
    blobs = [np.frombuffer(encoded[path], dtype=np.uint8) for path in kept]
    offsets = np.cumsum([0] + [len(blob) for blob in blobs]).astype(np.int64)
    meta = {"format": PACK_FORMAT, "max_side": max_side, "quality": quality, "images": len(kept), **(note or {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        np.savez(handle, paths=np.array(kept, dtype=str), offsets=offsets,
                 data=np.concatenate(blobs) if blobs else np.zeros(0, np.uint8), meta=np.array(json.dumps(meta)))
    return PackSummary(out, len(kept), unreadable, out.stat().st_size / 1e6)


def pack_splits(splits: Sequence[str | Path], out: str | Path, parts: Sequence[str] = ("train", "val"),
                max_side: int = 256, quality: int = 92, workers: int | None = None) -> PackSummary:
    """The images of the chosen parts of one or more splits in one pack (what `covidxray data pack` runs).

    Args:
        splits: split CSVs; the images of their chosen parts go into one pack.
        out: the pack to write (.npz), checked before any work: never inside a dataset, never over a split.
        parts: split parts to pack.
        max_side: longest side of each stored image, in pixels.
        quality: JPEG quality of each stored image.
        workers: processes (default: all cores).

    Returns:
        PackSummary: the path, images packed, unreadable images with why, size. The pack records the
        splits' sha256 and fingerprints, so a run trained from it names the data it saw.
    """
    import os

    from covidxray.console import progress as progress_bar
    from covidxray.data.dataset import split_part
    from covidxray.data.fingerprint import split_fingerprint
    from covidxray.data.schema import read_table
    from covidxray.data.tables import guard_outputs

    splits, parts = [Path(split) for split in splits], list(parts)
    paths: set[str] = set()
    for split in splits:
        table = read_table(split)
        guard_outputs(table, split, (Path(out), "pack"))
        for part in parts:
            paths.update(split_part(table, part, split)["path"])
    note = {"splits": {str(split): sha256_file(split) for split in splits}, "parts": parts,
            "split_fingerprints": {str(split): split_fingerprint(split) for split in splits}}
    with progress_bar() as bar:
        task = bar.add_task("packing images", total=len(paths))
        return write_pack(paths, out, max_side, quality, workers or os.cpu_count() or 1, note,
                          progress=lambda: bar.advance(task))


def _prepare_one(arguments: tuple[bytes, dict]) -> np.ndarray:
    data, preprocessing = arguments
    with Image.open(io.BytesIO(data)) as picture:
        image = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
    return np.round(prepare_array(image, Preprocessing.from_dict(preprocessing)) * 65535.0).astype(np.uint16)


class PackedImages:
    """The images of a pack, preprocessed for one model and held in memory; load(path) as ImageCache does."""

    def __init__(self, pack_path: str | Path, preprocessing: Preprocessing) -> None:
        self.path = Path(pack_path)
        self.preprocessing = preprocessing
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                self.meta = json.loads(str(stored["meta"]))
                paths, offsets, data = stored["paths"], stored["offsets"], stored["data"]
        except FileNotFoundError:
            raise DatasetError(f"{self.path}: pack not found") from None
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{self.path}: not a covidxray pack ({exc}); write one with `covidxray data pack`") from None
        if self.meta.get("format") != PACK_FORMAT:
            raise DatasetError(f"{self.path}: pack format {self.meta.get('format')!r}, expected {PACK_FORMAT}")
        self._blobs = {str(path): data[offsets[i]: offsets[i + 1]].tobytes() for i, path in enumerate(paths)}
        self._arrays: dict[str, np.ndarray] = {}

    def __contains__(self, path: str) -> bool:
        return path in self._blobs

    def sha256(self) -> str:
        return sha256_file(self.path)

    def prepare(self, paths: list[str], workers: int = 0, progress: Callable[[], None] | None = None) -> dict[str, str]:
        """Preprocess the given paths into memory, so training reads them without decoding again.

        Args:
            paths: the images (keys of the pack).
            workers: processes (0 or 1: this one).
            progress: called once per path done.

        Returns:
            {path: reason} for the paths not in the pack.
        """
        missing = {path: f"{path}: not in pack {self.path}" for path in paths if path not in self._blobs}
        todo = [path for path in paths if path in self._blobs and path not in self._arrays]
        arguments = [(self._blobs[path], self.preprocessing.to_dict()) for path in todo]
        for path, array in zip(todo, map_in_order(_prepare_one, arguments, workers)):
            self._arrays[path] = array
            if progress:
                progress()
        for _ in missing:
            if progress:
                progress()
        return missing

    def load(self, path: str) -> np.ndarray:
        """float32 (size, size) in [0, 1], as prepared by prepare()."""
        if path not in self._arrays:
            if path not in self._blobs:
                raise ImageReadError(f"{path}: not in pack {self.path}")
            self._arrays[path] = _prepare_one((self._blobs[path], self.preprocessing.to_dict()))
        return self._arrays[path].astype(np.float32) / 65535.0

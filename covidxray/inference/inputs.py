"""What can be screened, read once: files, in-memory files (bytes) and arrays, in batches.

Every input becomes a ReadInput: the decoded image (or the one-line error that stops it) and the
facts the gate needs about its file. Listing (folders, globs, --files-from), sharding and batched
reading live here so that predict, evaluation, recalibration and the distributed runner share them.
"""

from __future__ import annotations

import glob
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from covidxray.errors import CovidxrayError, ImageReadError
from covidxray.imaging.read import IMAGE_SUFFIXES, read_image_facts

Item = TypeVar("Item")
Read = TypeVar("Read")


@dataclass
class ReadInput:
    """A decoded input with what the gate needs to know about its file."""

    name: str
    image: np.ndarray | None
    modality: str | None = None
    colourful: bool = False
    error: str = ""
    colourfulness: float | None = None
    hue_spread: float | None = None
    hounsfield_range: tuple[int, int] | None = None


def unexpected(exc: BaseException) -> str:
    """An exception nobody foresaw, in one short line: its type and the start of its message."""
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def read_input(path: str) -> ReadInput:
    """Read a file and the facts the gate uses (DICOM modality, colour), errors captured."""
    try:
        return _as_input(read_image_facts(path), path)  # checks the file's size before reading it
    except ImageReadError as exc:
        return ReadInput(path, None, error=str(exc))
    except OSError as exc:
        return ReadInput(path, None, error=f"{path}: cannot read file ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, it is this file's row, never the batch's end
        return ReadInput(path, None, error=f"{path}: cannot read it ({unexpected(exc)})")


def read_image_or_error(path: str) -> tuple[np.ndarray | None, str]:
    """(image, "") or (None, the one-line reason): the pixels alone, for evaluation and
    recalibration, which need no gate facts; an unreadable file is counted, never dropped silently."""
    from covidxray.imaging.read import read_image

    try:
        return read_image(path), ""
    except ImageReadError as exc:
        return None, str(exc)


def read_bytes_input(data: bytes, name: str) -> ReadInput:
    """Decode an in-memory file (an upload): never written to disk; read exactly as a path is."""
    return _as_input(read_image_facts(data, name), name)


def read_array_input(array: np.ndarray, name: str) -> ReadInput:
    """An image already read by the caller: 2-D greyscale, float in [0, 1] (the model's door
    refuses anything else and says how to convert it). No file, so no modality or colour facts."""
    from covidxray.imaging.preprocess import IntensityRangeError, check_intensity

    image = np.asarray(array)
    if image.ndim != 2:
        return ReadInput(name, None, error=f"{name}: expected a 2-D greyscale array, got shape {tuple(image.shape)}")
    try:
        check_intensity(image, name)  # before the gate, which also reads [0, 1] greyscale
    except IntensityRangeError as exc:
        return ReadInput(name, None, error=str(exc))
    return ReadInput(name, image.astype(np.float32, copy=False))


def _as_input(facts, name: str) -> ReadInput:
    from covidxray.gate.runtime import COLOURFUL_LIMIT

    return ReadInput(name, facts.image, facts.modality, facts.colourfulness > COLOURFUL_LIMIT,
                     colourfulness=facts.colourfulness, hue_spread=facts.hue_spread,
                     hounsfield_range=facts.hounsfield_range)


def expand_inputs(items: Iterable[str]) -> list[str]:
    """Files as given, folders searched recursively for images, globs expanded; order kept."""
    found: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in item for ch in "*?[") and not path.exists():
            matches = sorted(glob.glob(item, recursive=True))
            found += matches if matches else [item]  # an empty glob becomes a row saying so
        else:
            found.append(item)
    return found


def files_from(listing: str | Path) -> list[str]:
    """The paths listed in a text file, one per line ('-': standard input); blank lines and lines
    starting with '#' are skipped. Relative paths are taken from the current folder, as typed."""
    import sys

    if str(listing) == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(listing).read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        except OSError as exc:
            raise CovidxrayError(f"{listing}: cannot read the list of files ({exc.strerror or exc})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N): the K-th of N equal shares, K counted from 1."""
    try:
        number, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise CovidxrayError(f"--shard '{text}': expected K/N, e.g. 1/4 (the first of four shares)") from None
    if not 1 <= number <= count:
        raise CovidxrayError(f"--shard '{text}': K must be between 1 and N")
    return number, count


def shard(items: Sequence[Item], number: int, count: int) -> list[Item]:
    """Every count-th item starting at the number-th: N machines given 1/N .. N/N share the
    list with nothing screened twice or left out, whatever the order of their finishing."""
    return list(items[number - 1::count])


def read_in_batches(items: Iterable[Item], batch_size: int = 32, workers: int = 2,
                    reader: Callable[[Item], Read] = read_input) -> Iterator[list[Read]]:  # type: ignore[assignment]
    """Batches of reader(item), in input order; the next batch is decoded in threads while the
    caller works on this one (the model runs while files are read). At most two batches are held,
    and items are taken from the iterable only as they are needed."""
    if batch_size < 1:
        raise CovidxrayError(f"batch size must be at least 1, not {batch_size}")
    source = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        while chunk := list(islice(source, batch_size)):
            pending.append([pool.submit(reader, item) for item in chunk])
            if len(pending) > 1:
                yield [future.result() for future in pending.popleft()]
        while pending:
            yield [future.result() for future in pending.popleft()]

"""The one check every writing command makes before it writes: never into a dataset, never over an input.

Paths are compared resolved (symlinks followed), so a link or a `..` cannot smuggle an output
into a dataset folder. Dataset roots are the folders given on the command line and, for commands
that read a manifest, the folders holding its images up to the dataset folder a reader recognises.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from covidxray.errors import CovidxrayError
from covidxray.paths.weights import WEIGHTS_DIR

#: How far above an image's folder the dataset folder a reader recognises is looked for.
MAX_LEVELS_UP = 4


class OutputRefused(CovidxrayError):
    """An output path that would write into a dataset or over an input."""


def resolved(path: str | os.PathLike) -> Path:
    """path absolute, symlinks followed (as written, made absolute, when a symlink loop stops that)."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written, made absolute
        return Path(os.path.abspath(os.fspath(path)))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(path: str | os.PathLike, dataset_roots: Iterable[str | os.PathLike] = (),
                 inputs: Iterable[str | os.PathLike] = (), what: str = "output", folder_kind: str = "dataset folder") -> Path:
    """Refuse an output inside a dataset or over an input, before anything is written.

    Works for files and folders alike: a folder output is refused when it is, or is inside, a
    dataset root, and when it is one of the inputs. Each is compared resolved, symlinks followed.

    Args:
        path: the output.
        dataset_roots: folders never written into.
        inputs: files never written over.
        what: the output's name in the refusal.
        folder_kind: what a root is called in the refusal.

    Returns:
        path, unchanged, when it may be written; OutputRefused (one line) otherwise.
    """
    path = Path(path)
    target = resolved(path)
    for item in inputs:
        if target == resolved(item):
            raise OutputRefused(f"{path}: refusing to write the {what} over an input ({item}); choose another path")
    for root in dataset_roots:
        root_path = resolved(root)
        if _inside(target, root_path):
            raise OutputRefused(f"{path}: refusing to write the {what} inside the {folder_kind} {root}; "
                                "covidxray never writes into source data, choose a path outside it")
    return path


def check_outputs(paths: Iterable[tuple[str | os.PathLike, str]], dataset_roots: Iterable = (),
                  inputs: Iterable = ()) -> None:
    """check_output for each (path, what); roots and inputs are resolved once.

    Args:
        paths: (output, what it is) pairs.
        dataset_roots: folders never written into.
        inputs: files never written over.
    """
    roots = [resolved(r) for r in dataset_roots]
    listed = [resolved(i) for i in inputs]
    for path, what in paths:
        check_output(path, roots, listed, what)


def _recognised(folder: Path) -> bool:
    """True when a dataset reader recognises folder (its metadata.csv, class folders, ...)."""
    from covidxray.data.sources import READERS

    try:
        return any(reader.detect(folder) for reader in READERS.values())
    except OSError:
        return False


def dataset_roots_of(image_paths: Iterable[str]) -> list[Path]:
    """The folders that must stay untouched for a manifest listing image_paths.

    Every folder that holds a listed image, and above it the dataset folder a reader recognises:
    walking up from the image's folder (at most MAX_LEVELS_UP levels), the top of the first run
    of recognised folders (darkcovidnet/ above `X-Ray Image DataSet/`, the Cohen root above images/).
    """
    folders = {os.path.dirname(os.fspath(p)) for p in image_paths if p}
    roots: set[Path] = set()
    seen: dict[Path, Path | None] = {}
    for folder in sorted(folders):
        start = resolved(folder or ".")
        roots.add(start)
        if start in seen:
            top = seen[start]
        else:
            top, current = None, start
            for _ in range(MAX_LEVELS_UP + 1):
                if _recognised(current):
                    top = current
                elif top is not None:
                    break
                if current.parent == current:
                    break
                current = current.parent
            seen[start] = top
        if top is not None:
            roots.add(top)
    return sorted(roots)


def manifest_guard(frame, manifest_path: str | os.PathLike | None = None) -> tuple[list[Path], list[str]]:
    """(dataset roots, inputs) for a command that reads a manifest: its images' folders (so no
    output lands beside an image, let alone over one) and the manifest file itself."""
    paths = list(frame["path"]) if "path" in frame else []
    return dataset_roots_of(paths), [str(manifest_path)] if manifest_path is not None else []


def check_release(out: Path, release: bool, what: str) -> None:
    """Refuse (one line) to write into the package's own weights folder unless --release was given.

    Args:
        out: the output.
        release: the user's --release.
        what: the output's name in the refusal.
    """
    folder = WEIGHTS_DIR
    target = Path(out).expanduser().resolve()
    if not release and (target == folder or folder in target.parents):
        raise CovidxrayError(f"{out}: refusing to write the {what} into the bundled weights ({folder}), which "
                             "would replace the model covidxray ships; choose another --out, or pass --release")

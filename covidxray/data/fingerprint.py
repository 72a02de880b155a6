"""A split table's fingerprint: the sha256 of its text with the datasets' common folder taken out of its paths.

A manifest stores absolute paths, so the file's own sha256 changes with where the datasets sit on
disk and no user could ever match the hash a model card quotes. The fingerprint is the sha256 of the
same bytes after deleting every occurrence of `<common folder>/`, the deepest folder that all
absolute image and mask paths share; `/home/me/data/covid-chestxray-dataset/images/x.jpg` then reads
`covid-chestxray-dataset/images/x.jpg`. Anything else that changes the file (a row, a label, the
order, even a blank line) changes the fingerprint, exactly as it changes the sha256. It needs no file
but the table, so it is the same on a GPU machine that trains from a pack. Datasets in unrelated
places (one on /data, one on /mnt) share only '/', and then the fingerprint is the file's sha256.
To reproduce it by hand: `sed 's#/home/me/data/##g' split.csv | sha256sum`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

#: Columns that hold an image's (or its lung mask's) path.
PATH_COLUMNS = ("path", "lung_mask")


def common_folder(paths: list[str]) -> str:
    """The deepest folder shared by all absolute paths; '' when there are none or they share only the root."""
    folders = [os.path.dirname(p) for p in paths if os.path.isabs(p)]
    if not folders:
        return ""
    try:
        common = os.path.commonpath(folders)
    except ValueError:  # different drives (Windows): nothing shared
        return ""
    return "" if os.path.dirname(common) == common else common


def relative_paths(paths: list[str]) -> list[str]:
    """Each absolute path relative to the paths' common folder; others as they are (what the fingerprint hashes)."""
    root = common_folder(paths)
    return [p[len(root) + 1:] if root and p.startswith(root + os.sep) else p for p in paths]


def text_fingerprint(text: str) -> str:
    """sha256 (hex) of a split CSV's text with its paths' common folder removed."""
    rows = csv.DictReader(io.StringIO(text, newline=""))
    paths = [row[column] for row in rows for column in PATH_COLUMNS if row.get(column)]
    root = common_folder(paths)
    if root:
        text = text.replace(root + os.sep, "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_fingerprint(path: str | Path) -> str:
    """The fingerprint of the split CSV at path (see the module docstring)."""
    return text_fingerprint(Path(path).read_bytes().decode("utf-8"))


def table_fingerprint(frame) -> str:
    """The fingerprint a DataFrame would have once written with `frame.to_csv(path, index=False)`."""
    return text_fingerprint(frame.to_csv(index=False))


def same_split(record: dict, fingerprint: str, file_sha256: str = "",
               fingerprint_key: str = "split_fingerprint", sha_key: str = "split_sha256") -> bool:
    """True when a training record names this split, by fingerprint or (records made before it) by file sha256.

    Args:
        record: a checkpoint's training record.
        fingerprint: the split's split_fingerprint.
        file_sha256: the split file's sha256, for records older than fingerprints.
        fingerprint_key: the record's key for the fingerprint.
        sha_key: the record's key for the file sha256.

    Returns:
        Whether the record's split is this one.
    """
    if record.get(fingerprint_key):
        return record[fingerprint_key] == fingerprint
    return bool(file_sha256) and record.get(sha_key) == file_sha256

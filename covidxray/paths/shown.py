"""Keep the folders of the machine that built a model out of what people are shown: absolute paths
in a training record or a model card become their file names (`/home/me/runs/x/best.pt` -> `best.pt`)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

#: An absolute POSIX or Windows path of two or more parts, standing on its own in a text (after a
#: space, quote, backtick, bracket or '=' or at the start), not part of a relative path or a URL.
_ABSOLUTE_IN_TEXT = re.compile(r"""(?:(?<=^)|(?<=[\s`'"(=\[]))(?:/|[A-Za-z]:[\\/])(?:[^\s/\\`'"()\[\]]+[\\/])+([^\s/\\`'"()\[\]]+)""",
                               re.MULTILINE)


def is_absolute_path(text: str) -> bool:
    """Whether text as a whole is an absolute POSIX or Windows path (with at least one folder)."""
    if "\n" in text or "://" in text:
        return False
    return (text.startswith("/") and len(PurePosixPath(text).parts) > 2) or \
        (PureWindowsPath(text).is_absolute() and len(PureWindowsPath(text).parts) > 2)


def file_name(text: str) -> str:
    """The last part of a POSIX or Windows path."""
    return PureWindowsPath(text).name if re.match(r"^[A-Za-z]:[\\/]", text) else PurePosixPath(text).name


def without_machine_paths(text: str) -> str:
    """text with every absolute path in it shortened to its file name."""
    return _ABSOLUTE_IN_TEXT.sub(lambda match: match.group(1), text)


def portable(value):
    """value (a JSON-like record) with absolute paths, whole or inside texts, shortened to file names."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if isinstance(value, str):
        return file_name(value) if is_absolute_path(value) else without_machine_paths(value)
    return value

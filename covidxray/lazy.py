"""Public names of a package imported on first use, so `import covidxray.x` stays light (no numpy,
pandas or torch until a name is used). One helper, so every package does it the same way."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable

__all__ = ["lazy_names"]


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of package, for names -> the module defining each.

    Usage, at the end of a package's __init__.py: `__getattr__, __dir__ = lazy_names(__name__, _API)`.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(import_module(names[name]), name)
            setattr(sys.modules[package], name, value)  # found once; later uses do not come back here
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__

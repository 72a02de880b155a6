"""Your own films: check a model at your site, and adapt its threshold and calibration to it honestly.

`covidxray validate` measures a model on a site's labelled films (read_site, check_site);
`covidxray adapt` refits calibration and threshold on part of them and reports on the rest (adapt_site).
Names are imported on first use, so the CLI starts without pandas or scikit-learn.
"""

from __future__ import annotations

from typing import Any

#: Public name -> the module that defines it.
_NAMES = {
    "Site": "covidxray.site.sites",
    "read_site": "covidxray.site.sites",
    "ScreenedSite": "covidxray.site.screening",
    "screen_site": "covidxray.site.screening",
    "SiteCheck": "covidxray.site.validate",
    "check_site": "covidxray.site.validate",
    "threshold_for_sensitivity": "covidxray.site.validate",
    "SiteAdaptation": "covidxray.site.adapt",
    "adapt_site": "covidxray.site.adapt",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        from importlib import import_module

        value = getattr(import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'covidxray.site' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))

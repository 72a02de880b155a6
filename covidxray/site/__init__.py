"""Your own films: check a model at your site, and adapt its threshold and calibration to it honestly.

`covidxray validate` measures a model on a site's labelled films (read_site, check_site);
`covidxray adapt` refits calibration and threshold on part of them and reports on the rest (adapt_site).
Names are imported on first use, so the CLI starts without pandas or scikit-learn.
"""

from __future__ import annotations

from covidxray.lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, _NAMES)

"""covidxray: screen chest X-rays for COVID-19 and other pneumonia, evaluated honestly.

A research tool, not a medical device: no output of covidxray may guide the care of a patient.

The Python API, in two lines::

    import covidxray
    results = covidxray.load_model().screen(["xray.png", "scan.dcm"])  # ScreeningResults, in order
    results[0].status        # Status: screened, warned, refused or error; results.errors lists the errors

Everything is imported on first use, so `import covidxray` stays fast (no numpy, no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidxray.lazy import lazy_names

__version__ = "0.1.0"

RESEARCH_NOTICE = (
    "covidxray is a research tool, not a medical device. Its output must not be used to "
    "diagnose, treat or triage any patient."
)

#: Public name -> the module that defines it (imported when the name is first used).
_API = {
    "load_model": "covidxray.inference.api",
    "Predictor": "covidxray.inference.predictor",
    "ScreeningResult": "covidxray.inference.results",
    "Screenings": "covidxray.inference.results",
    "ScreeningError": "covidxray.inference.results",
    "Status": "covidxray.inference.results",
    "CovidxrayError": "covidxray.errors",
    "ImageReadError": "covidxray.errors",
}

__all__ = ["RESEARCH_NOTICE", "__version__", *_API]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from covidxray.errors import CovidxrayError, ImageReadError  # noqa: F401
    from covidxray.inference.api import load_model  # noqa: F401
    from covidxray.inference.predictor import Predictor  # noqa: F401
    from covidxray.inference.results import ScreeningError, ScreeningResult, Screenings, Status  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _API)

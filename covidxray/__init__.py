"""covidxray: screen chest X-rays for COVID-19 and other pneumonia, evaluated honestly.

A research tool, not a medical device: no output of covidxray may guide the care of a patient.
"""

__version__ = "0.1.0"

RESEARCH_NOTICE = (
    "covidxray is a research tool, not a medical device. Its output must not be used to "
    "diagnose, treat or triage any patient."
)

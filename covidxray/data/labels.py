"""The one mapping from what a source wrote (a finding, a class folder) to covidxray's labels.

Labels: `covid`, `pneumonia` (other infectious pneumonia), `normal`. Anything else gets no label
and an `exclusion` reason, so that every dropped image can be accounted for.
"""

from __future__ import annotations

import re

LABELS = ("covid", "pneumonia", "normal")
BINARY_LABELS = ("not_covid", "covid")

COVID_NAMES = {"covid-19", "covid19", "covid 19", "covid_19", "covid", "sars-cov-2"}
NORMAL_NAMES = {"no finding", "no_finding", "no_findings", "no findings", "normal", "healthy", "negative"}
VIRAL = {"sars", "mers", "mers-cov", "influenza", "h1n1", "varicella", "herpes", "viral", "rsv", "adenovirus"}
BACTERIAL = {
    "streptococcus", "klebsiella", "mycoplasma", "mycoplasma bacterial pneumonia", "legionella",
    "e.coli", "e. coli", "chlamydophila", "staphylococcus", "mrsa", "nocardia", "bacterial",
    "haemophilus", "pseudomonas",
}
FUNGAL = {"pneumocystis", "aspergillosis", "fungal", "candida", "histoplasmosis"}
UNSPECIFIED_PNEUMONIA = {"pneumonia", "viral pneumonia", "bacterial pneumonia", "viral_pneumonia", "bacterial_pneumonia"}
PNEUMONIA_NAMES = VIRAL | BACTERIAL | FUNGAL | UNSPECIFIED_PNEUMONIA

#: Findings that are deliberately left out, with the reason written into the manifest.
EXCLUDED = {
    "ards": "ARDS alone: no infectious finding",
    "lipoid": "lipoid pneumonia is not infectious",
    "todo": "finding not yet labelled (todo)",
    "unknown": "finding unknown",
    "": "no finding given",
    "tuberculosis": "tuberculosis is outside covidxray's classes",
    "lung_opacity": "non-specific lung opacity, not a pneumonia diagnosis",
    "lung opacity": "non-specific lung opacity, not a pneumonia diagnosis",
}


def _terms(finding: str) -> list[str]:
    """Split 'COVID-19, ARDS' or 'Pneumonia/Viral/COVID-19' into lower-case terms."""
    parts = re.split(r"[,/;]", finding or "")
    return [part.strip().lower() for part in parts if part.strip()]


def label_finding(finding: str) -> tuple[str, str]:
    """Map a finding as a source wrote it (flat or path-style) to (label, exclusion reason).

    >>> label_finding("Pneumonia/Viral/COVID-19")
    ('covid', '')
    >>> label_finding("Lipoid")
    ('', 'lipoid pneumonia is not infectious')
    """
    terms = _terms(finding)
    if not terms:
        return "", EXCLUDED[""]
    if any(term in COVID_NAMES for term in terms):
        return "covid", ""
    whole = (finding or "").strip().lower()
    if whole in NORMAL_NAMES:
        return "normal", ""
    if "lipoid" in terms:
        return "", EXCLUDED["lipoid"]
    infectious = [term for term in terms if term in PNEUMONIA_NAMES or term == "aspiration"]
    if infectious:
        return "pneumonia", ""
    for term in terms:
        if term in EXCLUDED:
            return "", EXCLUDED[term]
    return "", f"finding '{finding.strip()}' is not in covidxray's label mapping"


def label_class_folder(name: str) -> tuple[str, str]:
    """Map a class folder name (COVID, Normal, No_findings, Viral Pneumonia, ...) to (label, reason)."""
    key = name.strip().lower().replace("-", " ").replace("_", " ")
    squashed = key.replace(" ", "")
    if squashed in {"covid19", "covid", "sarscov2"}:
        return "covid", ""
    if key in {"no findings", "no finding", "normal", "healthy", "negative"}:
        return "normal", ""
    if key in {"pneumonia", "viral pneumonia", "bacterial pneumonia", "other pneumonia"}:
        return "pneumonia", ""
    if key in {"lung opacity"}:
        return "", EXCLUDED["lung opacity"]
    return "", f"class folder '{name}' is not in covidxray's label mapping"


#: SIIM-FISABIO-RSNA study grades (RSNA/SIIM COVID-19 reporting categories), in the study table's order.
SIIM_GRADES = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")
SIIM_UNCERTAIN = SIIM_GRADES[2:]


def label_siim_grade(grade: str, include_uncertain: bool = False) -> tuple[str, str]:
    """Map a SIIM grade to (label, exclusion reason).

    Every SIIM patient tested positive, so the grade says what the film shows: Typical -> covid
    (COVID-19 pneumonia visible), Negative -> normal (a clear film). Indeterminate and Atypical are
    excluded by default, since neither is the picture of COVID-19 pneumonia nor a clear film;
    include_uncertain labels them covid (test-positive films with some opacity).
    """
    if grade == "Typical Appearance":
        return "covid", ""
    if grade == "Negative for Pneumonia":
        return "normal", ""
    if grade in SIIM_UNCERTAIN:
        if include_uncertain:
            return "covid", ""
        return "", f"SIIM grade '{grade}': neither typical COVID-19 pneumonia nor a clear film (--siim-uncertain to keep as covid)"
    return "", "SIIM study has no grade in train_study_level.csv"

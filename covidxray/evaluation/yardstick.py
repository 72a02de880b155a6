"""The within-hospital yardstick: does a model separate the disease where the hospital cannot tell?

A contrast takes both of its classes from one source and one image pipeline, so a model that has
learned only where an image comes from scores 0.5 on it, whatever its mixed-source AUROC. These
contrasts (and a source held out entirely) decide every choice of model and recipe; a test whose
classes come from different sources is reported but never chosen on (docs/evaluation.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covidxray.evaluation.metrics import Estimate, auroc_estimate

MIN_PER_CLASS = 5  # fewer images of either class and the contrast is not applicable


@dataclass(frozen=True)
class Contrast:
    """Covid against other labels, both sides from one source."""

    key: str
    source: str
    positive: str
    negatives: tuple[str, ...]
    description: str


CONTRASTS = (
    Contrast("siim_typical_vs_negative", "siim-covid19-detection", "covid", ("normal",),
             "SIIM (BIMCV + MIDRC-RICORD, test-positive patients): Typical Appearance vs Negative for Pneumonia"),
    Contrast("cohen_covid_vs_pneumonia", "covid-chestxray-dataset", "covid", ("pneumonia",),
             "COVID-19 image data collection: COVID-19 vs other pneumonia"),
)


#: What the shortcut figures must reach for a model to count as reading the lungs (issue #13).
SHORTCUT_TARGETS = {
    "lungs_only_drop": 0.05,        # unaltered AUROC minus lungs-only AUROC, at most
    "lungs_hidden_auroc": 0.65,     # AUROC with the lungs blanked, at most
    "cam_in_lungs": 0.50,           # share of Grad-CAM mass inside the lung masks, at least
    "source_probe_excess": 0.15,    # source-probe balanced accuracy above chance, at most
}


def contrast_mask(labels: np.ndarray, sources: np.ndarray, contrast: Contrast) -> tuple[np.ndarray, np.ndarray]:
    """The rows a within-hospital contrast compares, and its positive side.

    Args:
        labels: each row's label.
        sources: each row's source.
        contrast: the Contrast.

    Returns:
        (rows in the contrast, which of them are positive).
    """
    labels, sources = np.asarray(labels, dtype=str), np.asarray(sources, dtype=str)
    inside = (sources == contrast.source) & np.isin(labels, (contrast.positive,) + contrast.negatives)
    return inside, labels[inside] == contrast.positive


def applicable(labels: np.ndarray, sources: np.ndarray, contrast: Contrast) -> bool:
    """Whether a contrast can be measured here: at least MIN_PER_CLASS images on each side.

    Args:
        labels: each row's label.
        sources: each row's source.
        contrast: the Contrast.

    Returns:
        True when both sides are large enough.
    """
    _, positive = contrast_mask(labels, sources, contrast)
    return int(positive.sum()) >= MIN_PER_CLASS and int((~positive).sum()) >= MIN_PER_CLASS


def has_within_contrast(labels: np.ndarray, sources: np.ndarray) -> bool:
    """Whether any contrast applies to these rows (else selection falls back to the mixed AUROC)."""
    return any(applicable(labels, sources, contrast) for contrast in CONTRASTS)


def within_hospital(labels: np.ndarray, sources: np.ndarray, p_covid: np.ndarray, groups: np.ndarray,
                    resamples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """Each applicable contrast's AUROC with n, class counts and a patient/study-bootstrap 95% CI.

    Args:
        labels: each row's label.
        sources: each row's source.
        p_covid: calibrated p(covid) per row.
        groups: patient (SIIM: study) groups.
        resamples: bootstrap samples.
        seed: seed of the draws.

    Returns:
        {contrast key: {description, applicable, auroc or reason, counts}}.
    """
    found = {}
    for contrast in CONTRASTS:
        inside, positive = contrast_mask(labels, sources, contrast)
        entry = {"description": contrast.description, "source": contrast.source,
                 "n_positive": int(positive.sum()), "n_negative": int((~positive).sum())}
        if not applicable(labels, sources, contrast):
            entry.update(applicable=False, reason=f"fewer than {MIN_PER_CLASS} images of a class from {contrast.source}")
        else:
            estimate = auroc_estimate(positive, np.asarray(p_covid, float)[inside], np.asarray(groups)[inside], resamples, seed)
            entry.update(applicable=True, auroc=estimate.as_dict())
        found[contrast.key] = entry
    return found


def selection_score(labels: np.ndarray, sources: np.ndarray, covid_score: np.ndarray) -> float:
    """The figure that picks an epoch or a recipe: the size-weighted mean of the within-source AUROCs that apply.

    Args:
        labels: each row's label.
        sources: each row's source.
        covid_score: p(covid) (or any score that rises with it) per row.

    Returns:
        The score; NaN when no contrast applies (the caller then falls back and says so).
    """
    from sklearn.metrics import roc_auc_score

    values, weights = [], []
    for contrast in CONTRASTS:
        if not applicable(labels, sources, contrast):
            continue
        inside, positive = contrast_mask(labels, sources, contrast)
        values.append(roc_auc_score(positive, np.asarray(covid_score, float)[inside]))
        weights.append(int(inside.sum()))
    return float(np.average(values, weights=weights)) if values else float("nan")


def yardstick_rows(within: dict, held_out: list[str], held_out_auroc: dict | None) -> list[dict]:
    """The rows a report or a card shows, the held-out source never shown twice.

    Args:
        within: within_hospital's result.
        held_out: the sources of a part held out of training (empty otherwise).
        held_out_auroc: that part's AUROC, when there is one.

    Returns:
        Each contrast as {description, auroc or None, reason, counts}, and the held-out part as one row;
        a contrast drawn from the held-out source is that row already.
    """
    rows = []
    for entry in within.values():
        if entry.get("source") in held_out:
            continue
        rows.append({"description": entry["description"], "auroc": entry.get("auroc") if entry.get("applicable") else None,
                     "reason": entry.get("reason"), "counts": f"{entry['n_positive']} / {entry['n_negative']}"})
    if held_out:
        rows.append({"description": f"{', '.join(held_out)} held out of training entirely (both classes from one unseen pool)",
                     "auroc": held_out_auroc, "reason": None, "counts": ""})
    return rows


def target_checks(figures: dict) -> dict[str, dict]:
    """Each shortcut figure against its target: {name: {value, ci_low, ci_high, n, target, met}}.

    figures holds estimate dicts ({value, n, ci_low, ci_high}) or plain numbers, None where unmeasured:
    original_auroc, lungs_only_auroc, lungs_hidden_auroc, cam_in_lungs, source_probe_excess.
    """
    def entry(figure, target: float, at_most: bool) -> dict:
        found = figure if isinstance(figure, dict) else {"value": figure}
        value = estimate_value(found)
        met = None if value is None else (value <= target if at_most else value >= target)
        return {"value": value, "ci_low": found.get("ci_low"), "ci_high": found.get("ci_high"), "n": found.get("n"),
                "target": f"{'<=' if at_most else '>='} {target}", "met": met}

    original, lungs_only = estimate_value(figures.get("original_auroc")), estimate_value(figures.get("lungs_only_auroc"))
    drop = None if original is None or lungs_only is None else original - lungs_only
    n = (figures.get("lungs_only_auroc") or {}).get("n") if isinstance(figures.get("lungs_only_auroc"), dict) else None
    return {
        "lungs-only AUROC drop": entry({"value": drop, "n": n}, SHORTCUT_TARGETS["lungs_only_drop"], at_most=True),
        "lungs-hidden AUROC": entry(figures.get("lungs_hidden_auroc"), SHORTCUT_TARGETS["lungs_hidden_auroc"], at_most=True),
        "Grad-CAM mass inside the lungs": entry(figures.get("cam_in_lungs"), SHORTCUT_TARGETS["cam_in_lungs"], at_most=False),
        "source probe above chance": entry(figures.get("source_probe_excess"), SHORTCUT_TARGETS["source_probe_excess"],
                                           at_most=True),
    }


def estimate_value(entry: dict | Estimate | float | None) -> float | None:
    """The value of an estimate stored as a dict (metrics.json), an Estimate or a number; None when missing or NaN."""
    if entry is None:
        return None
    value = entry.value if isinstance(entry, Estimate) else entry.get("value") if isinstance(entry, dict) else entry
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)

"""The site check: how good is a model on one site's labelled films, with every figure's n and 95% CI.

Metrics, calibration and intervals are covidxray.evaluation's own functions on the films the model
scored (the gate's refusals and unreadable files are counted apart), so `covidxray evaluate` on the
same films gives the same figures. Operating points (the threshold a site would pick for a wanted
sensitivity) are chosen on these same films: descriptive, and optimistic; `adapt` fits them honestly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covidxray.errors import CovidxrayError
from covidxray.evaluation.calibration import brier_score, expected_calibration_error, reliability_table
from covidxray.evaluation.parts import patient_keys, truth_indices
from covidxray.evaluation.metrics import Estimate, bootstrap_estimate, patient_bootstrap
from covidxray.site.screening import ScreenedSite, screen_site
from covidxray.site.sites import Site

#: Sensitivities whose thresholds the report shows unless told otherwise.
DEFAULT_SENSITIVITIES = (0.90, 0.95)
#: An interval wider than this either side of its value is too wide to say anything.
TOO_WIDE = 0.1
BINARY_LABELS = ("not_covid", "covid")


@dataclass
class OperatingPoint:
    """A decision threshold and what it gives: sensitivity and specificity, each with n and CI."""

    name: str
    target_sensitivity: float | None
    threshold: Estimate
    sensitivity: Estimate
    specificity: Estimate

    def as_dict(self) -> dict:
        return {"name": self.name, "target_sensitivity": self.target_sensitivity,
                "threshold": self.threshold.as_dict(), "sensitivity": self.sensitivity.as_dict(),
                "specificity": self.specificity.as_dict()}


@dataclass
class SiteCheck:
    """Everything the site check measured; `figures` holds PNG bytes for the report."""

    screened: ScreenedSite
    metrics: dict[str, Estimate]
    calibration: dict
    operating_points: list[OperatingPoint]
    gate: dict
    n_patients: int
    resamples: int
    seed: int
    verdict: list[str] = field(default_factory=list)
    #: PNG bytes of the report's figures, made when the report is written (write_check).
    figures: dict[str, bytes] = field(default_factory=dict)

    @property
    def site(self) -> Site:
        return self.screened.site

    @property
    def scored(self) -> pd.DataFrame:
        return self.screened.scored


def wide(estimate: Estimate | dict, limit: float = TOO_WIDE) -> bool:
    """True when an interval is missing or wider than ±limit (half its width above limit)."""
    low, high = (estimate.ci_low, estimate.ci_high) if isinstance(estimate, Estimate) else (estimate.get("ci_low"), estimate.get("ci_high"))
    if low is None or high is None or np.isnan(low) or np.isnan(high):
        return True
    return (high - low) / 2 > limit


def threshold_for_sensitivity(p_covid: np.ndarray, is_covid: np.ndarray, target: float) -> float:
    """The highest p(covid) cut-off at which at least `target` of the covid films are called covid
    (a film is called covid when p >= the cut-off); NaN without covid films."""
    scores = np.sort(np.asarray(p_covid, float)[np.asarray(is_covid, bool)])[::-1]
    if not len(scores):
        return float("nan")
    needed = min(max(int(np.ceil(target * len(scores) - 1e-9)), 1), len(scores))
    return float(scores[needed - 1])


def _rate(called: np.ndarray, among: np.ndarray) -> float:
    return float(called[among].mean()) if among.any() else float("nan")


def operating_point(name: str, p_covid: np.ndarray, is_covid: np.ndarray, groups: np.ndarray, target: float | None,
                    threshold: float | None, resamples: int, seed: int) -> OperatingPoint:
    """Sensitivity and specificity at a fixed threshold, or at the threshold chosen for `target`
    sensitivity, with patient-bootstrap CIs (a chosen threshold is chosen again in every resample,
    so its interval and theirs include the choosing).

    Args:
        name: what the point is called in the report.
        p_covid, is_covid, groups: per film, the probability, the truth and the bootstrap unit.
        target: the wanted sensitivity (None with a fixed threshold).
        threshold: the fixed threshold (None with a target).
        resamples, seed: the bootstrap's.

    Returns:
        The OperatingPoint; the threshold's n is the covid films it was chosen on (0 when fixed).
    """
    p_covid, is_covid = np.asarray(p_covid, float), np.asarray(is_covid, bool)

    def cut(rows: np.ndarray) -> float:
        return threshold if threshold is not None else threshold_for_sensitivity(p_covid[rows], is_covid[rows], target)

    def sensitivity(rows: np.ndarray) -> float:
        return _rate(p_covid[rows] >= cut(rows), is_covid[rows])

    def specificity(rows: np.ndarray) -> float:
        return _rate(p_covid[rows] < cut(rows), ~is_covid[rows])

    positives, negatives = int(is_covid.sum()), int((~is_covid).sum())
    found = {key: bootstrap_estimate(statistic, groups, resamples, seed)
             for key, statistic in (("threshold", cut), ("sensitivity", sensitivity), ("specificity", specificity))}
    with_n = lambda estimate, n: Estimate(estimate.value, n, estimate.ci_low, estimate.ci_high)  # noqa: E731
    if threshold is not None:
        found["threshold"] = Estimate(float(threshold), 0, float(threshold), float(threshold))
    return OperatingPoint(name, target, with_n(found["threshold"], positives if threshold is None else 0),
                          with_n(found["sensitivity"], positives), with_n(found["specificity"], negatives))


def calibration_figures(is_covid: np.ndarray, p_covid: np.ndarray, groups: np.ndarray, resamples: int, seed: int) -> dict:
    """ECE and Brier score (evaluation.calibration's) with patient-bootstrap CIs, and the reliability bins."""
    is_covid, p_covid = np.asarray(is_covid, bool), np.asarray(p_covid, float)
    ece = bootstrap_estimate(lambda rows: expected_calibration_error(is_covid[rows], p_covid[rows]), groups, resamples, seed)
    brier = bootstrap_estimate(lambda rows: brier_score(is_covid[rows], p_covid[rows]), groups, resamples, seed)
    return {"ece": ece, "brier": brier, "bins": reliability_table(is_covid, p_covid).to_dict(orient="records")}


def gate_summary(films: pd.DataFrame) -> dict:
    """Films per status, and per reason for the gate's refusals and warnings (most frequent first)."""
    from covidxray.inference.results import Status

    counts = films["status"].value_counts()
    summary: dict = {"counts": {status.value: int(counts.get(status.value, 0)) for status in Status}}
    for status in (Status.REFUSED.value, Status.WARNED.value):
        chosen = films[films["status"] == status]
        reasons = chosen["input_flags"].str.split(";").explode().replace("", "unflagged").value_counts()
        summary[status] = {str(reason): int(count) for reason, count in reasons.items()} if len(chosen) else {}
    return summary


def check_site(site: Site, model: str | Path | None = None, sensitivities: tuple[float, ...] = DEFAULT_SENSITIVITIES,
               resamples: int = 1000, seed: int = 0, backend: str = "auto", gate_warnings: bool = True) -> SiteCheck:
    """Screen every film of site and measure the model there.

    Args:
        site: the site's films (read_site).
        model: a checkpoint, or None for the bundled model.
        sensitivities: the sensitivities whose thresholds the report shows.
        resamples, seed: the patient bootstrap's (evaluate's defaults: the same figures).
        backend: "auto" (ONNX when fresh, as predict), "torch" or "onnx".
        gate_warnings: as predict's --gate-warnings.

    Returns:
        The SiteCheck, verdict and figures included.
    """
    for target in sensitivities:
        if not 0 < target <= 1:
            raise CovidxrayError(f"--sensitivity {target}: must lie in (0, 1]")
    screened = screen_site(site, model, backend, gate_warnings)
    return measure(screened, sensitivities, resamples, seed)


def measure(screened: ScreenedSite, sensitivities: tuple[float, ...] = DEFAULT_SENSITIVITIES, resamples: int = 1000,
            seed: int = 0) -> SiteCheck:
    """The site check's figures from films already screened (check_site without the screening)."""
    scored = screened.scored
    model = screened.model
    truth = truth_indices(scored["label"], BINARY_LABELS) if len(scored) else np.zeros(0, int)
    is_covid = scored["is_covid"].to_numpy(bool)
    p_covid = scored["p_covid"].to_numpy(float)
    proba = np.stack([1 - p_covid, p_covid], axis=1)
    groups = patient_keys(scored) if len(scored) else np.zeros(0, str)
    metrics = patient_bootstrap(truth, proba, BINARY_LABELS, model["threshold"], groups, resamples, seed) if len(scored) else {}
    calibration = calibration_figures(is_covid, p_covid, groups, resamples, seed) if len(scored) else {}
    points = []
    if len(scored):
        points.append(operating_point("the model's threshold", p_covid, is_covid, groups, None, model["threshold"],
                                      resamples, seed))
        points += [operating_point(f"sensitivity {target:.2f}", p_covid, is_covid, groups, target, None, resamples, seed)
                   for target in sensitivities]
    check = SiteCheck(screened, metrics, calibration, points, gate_summary(screened.films),
                      int(len(set(groups))), resamples, seed)
    check.verdict = verdict(check)
    return check


def verdict(check: SiteCheck) -> list[str]:
    """The plain-words reading of a site check, a sentence a line; says when there are too few films."""
    counts = check.gate["counts"]
    scored = check.scored
    covid, other = int(scored["is_covid"].sum()), int((~scored["is_covid"].astype(bool)).sum())
    lines = [f"{len(scored)} of {len(check.screened.films)} films scored ({covid} covid, {other} not covid; "
             f"{check.n_patients} patients); the gate refused {counts['refused']}, {counts['error']} could not be read, "
             f"{counts['warned']} scored with a warning."]
    if not covid or not other:
        lines.append("Only one class among the scored films: AUROC, sensitivity and specificity cannot all be measured. "
                     "Label films of both kinds.")
        return lines
    auroc = check.metrics["roc_auc"]
    point = {p.name: p for p in check.operating_points}["the model's threshold"]
    measured = [("AUROC", auroc), ("sensitivity", point.sensitivity), ("specificity", point.specificity)]
    too_wide = [name for name, estimate in measured if wide(estimate)]
    if too_wide:
        lines.append(f"Too few films to say how good the model is here: the 95% interval of {', '.join(too_wide)} is "
                     f"wider than ±{TOO_WIDE} (AUROC {auroc}). Treat these figures as unknown; label more "
                     "films of both kinds (the interval narrows roughly as one over the square root of n).")
    else:
        band = "high" if auroc.value >= 0.9 else "good" if auroc.value >= 0.8 else "moderate" if auroc.value >= 0.7 else "poor"
        lines.append(f"AUROC {auroc}: {band} separation of covid from not covid at this site.")
    if auroc.ci_low <= 0.5:
        lines.append("The AUROC interval reaches 0.5: the model is not shown to do better than chance here.")
    lines.append(f"At the model's threshold ({point.threshold.value:.3f}): sensitivity {point.sensitivity}, "
                 f"specificity {point.specificity}.")
    ece = check.calibration["ece"]
    if wide(ece):
        lines.append(f"Calibration: ECE {ece}, too uncertain to judge.")
    elif ece.value <= 0.05:
        lines.append(f"Calibration: ECE {ece}; p(covid) matches the observed frequency within 0.05 on average.")
    else:
        lines.append(f"Calibration: ECE {ece}; p(covid) is off from the observed frequency here; "
                     "`covidxray adapt` refits it on part of these films and reports on the rest.")
    refused = counts["refused"] / max(1, len(check.screened.films))
    if refused > 0.1:
        lines.append(f"The gate refused {refused:.0%} of the films: check that they are frontal chest radiographs "
                     "as the site sends them (the refusals and their reasons are listed below).")
    return lines


def write_check(check: SiteCheck, out: Path, reproduce_model: str) -> dict[str, Path]:
    """Write report.html, site-check.json, films.csv (every film, its status and answer) and scored.csv
    (the scored films as a manifest that `covidxray evaluate --part all` reads) into out.

    Args:
        check: the site check.
        out: the folder (checked by the caller: never inside the site's image folders).
        reproduce_model: the checkpoint named in the page's evaluate command.

    Returns:
        {"html", "json", "films", "scored"}: the paths written.
    """
    import json

    from covidxray.paths.shown import portable
    from covidxray.site.report_html import check_document, check_figures, check_page

    out.mkdir(parents=True, exist_ok=True)
    check.screened.films.to_csv(out / "films.csv", index=False)
    check.scored[["path", "source", "patient_id", "label"]].to_csv(out / "scored.csv", index=False)
    reproduce = (f"covidxray evaluate {portable(reproduce_model)} --split scored.csv --part all --no-audits "
                 f"--resamples {check.resamples} --seed {check.seed} --out REPORT")
    document = check_document(check, reproduce)
    check.figures = check_figures(check)
    (out / "site-check.json").write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    (out / "report.html").write_text(check_page(check, document), encoding="utf-8")
    return {"html": out / "report.html", "json": out / "site-check.json", "films": out / "films.csv",
            "scored": out / "scored.csv"}

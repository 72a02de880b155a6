"""The site adaptation: refit a model's calibration and threshold to a site, judged only on films not fitted on.

Calibration (temperature and logit bias, training's own fit_calibration) and the threshold for a
wanted sensitivity are fitted on some of the site's patients and measured on the others: one split
of the patients in two when there are many, cross-fitting (k folds by patient, each fold scored by
a fit on the others) when there are few. The weights are never touched; a site model is the same
network with the new settings and a record of the fit (written by write_site_model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covidxray.errors import CovidxrayError
from covidxray.evaluation.calibration import brier_score, expected_calibration_error
from covidxray.evaluation.metrics import Estimate, auroc_estimate, bootstrap_estimate
from covidxray.evaluation.parts import patient_keys
from covidxray.inference.calibration import probabilities
from covidxray.site.screening import ScreenedSite, screen_site
from covidxray.site.sites import Site
from covidxray.site.validate import threshold_for_sensitivity, wide
from covidxray.training.calibration import fit_calibration

SCHEMES = ("auto", "split", "crossfit")
#: From this many patients up, "auto" fits on one half of them and reports on the other half.
SPLIT_FROM_PATIENTS = 400
#: Fewer scored films, or fewer patients of either class, and nothing can be fitted and checked honestly.
MIN_FILMS, MIN_PATIENTS_PER_CLASS = 10, 4
#: p(covid) is stored as float32: its logit is finite within these bounds.
_P_CLIP = 1e-7


@dataclass(frozen=True)
class SiteFit:
    """Calibration and threshold fitted on some films: applied to the shipped calibrated logit
    u = logit(p_shipped) as p = sigmoid(u / temperature + logit_bias), then p >= threshold."""

    temperature: float
    logit_bias: float
    threshold: float
    films: int
    patients: int

    def p_covid(self, shipped_logit: np.ndarray) -> np.ndarray:
        return probabilities(shipped_logit, "binary", self.temperature, self.logit_bias)[:, 1].astype(float)

    def composed(self, temperature: float, logit_bias: float) -> tuple[float, float]:
        """(temperature, logit bias) on the network's own logit z, given the shipped ones: since
        u = z / T0 + b0, u / T + b = z / (T0 T) + b0 / T + b."""
        return temperature * self.temperature, logit_bias / self.temperature + self.logit_bias


@dataclass
class SiteAdaptation:
    """What was fitted, on which films, and how it did on films it was not fitted on."""

    screened: ScreenedSite
    scheme: str
    folds: int
    target_sensitivity: float
    #: The fit the site model carries (on the fitting half, or on every film when cross-fitting).
    final: SiteFit
    #: Settings for the checkpoint: temperature, logit_bias, threshold (composed with the shipped ones).
    settings: dict
    #: One row per film judged: path, label, patient_id, fold, p_shipped, p_adapted, threshold_adapted.
    held_out_films: pd.DataFrame
    #: Shipped vs adapted on the films judged: {"bundled": {...}, "adapted": {...}, "ece_difference": Estimate, ...}.
    held_out: dict
    fits: list[dict]
    resamples: int
    seed: int
    verdict: list[str] = field(default_factory=list)
    #: PNG bytes of the report's figures, made when the report is written (write_adaptation).
    figures: dict[str, bytes] = field(default_factory=dict)

    @property
    def site(self) -> Site:
        return self.screened.site

    @property
    def scheme_text(self) -> str:
        if self.scheme == "split":
            return "fitted on one half of the patients, judged on the other"
        return f"cross-fitted, {self.folds} folds by patient"


def shipped_logit(p_covid: np.ndarray) -> np.ndarray:
    """logit(p) of the shipped calibrated p(covid), float64 (p clipped to what float32 holds)."""
    p_covid = np.clip(np.asarray(p_covid, float), _P_CLIP, 1 - _P_CLIP)
    return np.log(p_covid) - np.log1p(-p_covid)


def fit_site(logit: np.ndarray, is_covid: np.ndarray, groups: np.ndarray, target: float) -> SiteFit:
    """Calibration (fit_calibration: temperature and logit bias by NLL) then the threshold reaching
    `target` sensitivity on the calibrated p(covid), both on these films only."""
    temperature, logit_bias = fit_calibration(logit, np.asarray(is_covid).astype(int), "binary")
    fitted = SiteFit(temperature, logit_bias, 0.0, int(len(logit)), int(len(set(groups))))
    threshold = threshold_for_sensitivity(fitted.p_covid(logit), is_covid, target)
    return SiteFit(temperature, logit_bias, threshold, fitted.films, fitted.patients)


def folds_of(is_covid: np.ndarray, groups: np.ndarray, scheme: str, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitting rows, judged rows) per fold: patients never on both sides, classes balanced across folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    splits = 2 if scheme == "split" else folds
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    found = list(splitter.split(np.zeros(len(groups)), np.asarray(is_covid).astype(int), np.asarray(groups, str)))
    return found[:1] if scheme == "split" else found


def _patients_per_class(is_covid: np.ndarray, groups: np.ndarray) -> tuple[int, int]:
    return len(set(groups[is_covid])), len(set(groups[~is_covid]))


def choose_scheme(scheme: str, folds: int, is_covid: np.ndarray, groups: np.ndarray) -> tuple[str, int]:
    """(scheme, folds) to use: auto is split from SPLIT_FROM_PATIENTS patients up, else crossfit;
    the folds never outnumber either class's patients."""
    if scheme not in SCHEMES:
        raise CovidxrayError(f"scheme '{scheme}' unknown; use one of {', '.join(SCHEMES)}")
    covid, other = _patients_per_class(is_covid, groups)
    if len(is_covid) < MIN_FILMS or min(covid, other) < MIN_PATIENTS_PER_CLASS:
        raise CovidxrayError(f"{len(is_covid)} scored films ({covid} covid and {other} not-covid patients): too few to fit "
                             f"on some and judge on others; adapt needs at least {MIN_FILMS} films and "
                             f"{MIN_PATIENTS_PER_CLASS} patients of each class")
    if scheme == "auto":
        scheme = "split" if len(set(groups)) >= SPLIT_FROM_PATIENTS else "crossfit"
    if scheme == "split":
        return scheme, 2
    if folds < 2:
        raise CovidxrayError(f"--folds {folds}: cross-fitting needs at least 2 folds")
    return scheme, min(folds, covid, other)


def adapt_site(site: Site, model: str | Path | None = None, sensitivity: float = 0.90, scheme: str = "auto",
               folds: int = 5, resamples: int = 1000, seed: int = 0, backend: str = "auto") -> SiteAdaptation:
    """Screen the site's films, fit calibration and threshold on some, judge on the others.

    Args:
        site: the films (read_site).
        model: the checkpoint to adapt; None for the bundled model.
        sensitivity: the sensitivity the threshold is fitted to reach, in (0, 1].
        scheme: "split", "crossfit" or "auto" (split from SPLIT_FROM_PATIENTS patients up).
        folds: cross-fitting folds (fewer when a class has fewer patients).
        resamples, seed: the bootstrap's; seed also deals the folds.
        backend: as predict's ("auto": the fresh ONNX export).

    Returns:
        The SiteAdaptation: the fit a site model carries and its figures on films it was not fitted on.
    """
    if not 0 < sensitivity <= 1:
        raise CovidxrayError(f"--sensitivity {sensitivity}: must lie in (0, 1]")
    screened = screen_site(site, model, backend)
    return adapt_screened(screened, sensitivity, scheme, folds, resamples, seed)


def adapt_screened(screened: ScreenedSite, sensitivity: float = 0.90, scheme: str = "auto", folds: int = 5,
                   resamples: int = 1000, seed: int = 0) -> SiteAdaptation:
    """adapt_site on films already screened."""
    scored = screened.scored
    is_covid = scored["is_covid"].to_numpy(bool)
    groups = patient_keys(scored) if len(scored) else np.zeros(0, str)
    scheme, folds = choose_scheme(scheme, folds, is_covid, groups)
    logit = shipped_logit(scored["p_covid"].to_numpy(float))
    judged_parts, fits = [], []
    for number, (fitting, judged) in enumerate(folds_of(is_covid, groups, scheme, folds, seed)):
        fit = fit_site(logit[fitting], is_covid[fitting], groups[fitting], sensitivity)
        fits.append({"fold": number, "fitted_films": fit.films, "fitted_patients": fit.patients,
                     "judged_films": int(len(judged)), "judged_patients": int(len(set(groups[judged]))),
                     "temperature": fit.temperature, "logit_bias": fit.logit_bias, "threshold": fit.threshold})
        judged_parts.append(pd.DataFrame({"row": judged, "fold": number, "p_adapted": fit.p_covid(logit[judged]),
                                          "threshold_adapted": fit.threshold}))
        final = fit
    if scheme == "crossfit":
        final = fit_site(logit, is_covid, groups, sensitivity)
    judged = pd.concat(judged_parts).sort_values("row").reset_index(drop=True)
    rows = judged["row"].to_numpy()
    films = scored.loc[rows, ["path", "label", "is_covid", "patient_id", "source"]].reset_index(drop=True)
    films["fold"] = judged["fold"].to_numpy()
    films["p_shipped"] = scored["p_covid"].to_numpy(float)[rows]
    films["p_adapted"] = judged["p_adapted"].to_numpy()
    films["threshold_adapted"] = judged["threshold_adapted"].to_numpy()
    model = screened.model
    temperature, logit_bias = final.composed(model["temperature"], model["logit_bias"])
    settings = {"temperature": temperature, "logit_bias": logit_bias, "threshold": final.threshold}
    held_out = judge(films, model["threshold"], groups[rows], resamples, seed)
    adaptation = SiteAdaptation(screened, scheme, folds, sensitivity, final, settings, films, held_out, fits, resamples, seed)
    adaptation.verdict = adaptation_verdict(adaptation)
    return adaptation


def judge(films: pd.DataFrame, shipped_threshold: float, groups: np.ndarray, resamples: int, seed: int) -> dict:
    """Shipped and adapted figures on the judged films, each with its patient-bootstrap CI, and the
    paired difference of ECE (adapted minus shipped, the same resamples)."""
    is_covid = films["is_covid"].to_numpy(bool)
    shipped, adapted = films["p_shipped"].to_numpy(float), films["p_adapted"].to_numpy(float)
    called = {"bundled": shipped >= shipped_threshold, "adapted": adapted >= films["threshold_adapted"].to_numpy(float)}
    probability = {"bundled": shipped, "adapted": adapted}
    positives, negatives = int(is_covid.sum()), int((~is_covid).sum())

    def with_n(estimate: Estimate, n: int) -> Estimate:
        return Estimate(estimate.value, n, estimate.ci_low, estimate.ci_high)

    def rate(calls: np.ndarray, among: np.ndarray):
        return lambda rows: float(calls[rows][among[rows]].mean()) if among[rows].any() else float("nan")

    found: dict = {"n_films": int(len(films)), "n_patients": int(len(set(groups))), "n_covid": positives,
                   "n_not_covid": negatives}
    for name in ("bundled", "adapted"):
        p = probability[name]
        found[name] = {
            "ece": bootstrap_estimate(lambda rows, p=p: expected_calibration_error(is_covid[rows], p[rows]), groups, resamples, seed),
            "brier": bootstrap_estimate(lambda rows, p=p: brier_score(is_covid[rows], p[rows]), groups, resamples, seed),
            "roc_auc": auroc_estimate(is_covid, p, groups, resamples, seed),
            "sensitivity": with_n(bootstrap_estimate(rate(called[name], is_covid), groups, resamples, seed), positives),
            "specificity": with_n(bootstrap_estimate(rate(~called[name], ~is_covid), groups, resamples, seed), negatives),
        }
    found["ece_difference"] = bootstrap_estimate(
        lambda rows: expected_calibration_error(is_covid[rows], adapted[rows]) - expected_calibration_error(is_covid[rows], shipped[rows]),
        groups, resamples, seed)
    return found


def adaptation_verdict(adaptation: SiteAdaptation) -> list[str]:
    """The plain-words reading of an adaptation; says when the films are too few to tell."""
    held = adaptation.held_out
    fits = adaptation.fits
    if adaptation.scheme == "split":
        lines = [f"Fitted on {fits[0]['fitted_films']} films of {fits[0]['fitted_patients']} patients; judged on the other "
                 f"{held['n_films']} films of {held['n_patients']} patients, which the fit never saw. The site model "
                 "carries exactly this fit."]
    else:
        lines = [f"Cross-fitted in {adaptation.folds} folds by patient: each of the {held['n_films']} films "
                 f"({held['n_patients']} patients) was judged by a fit on the other folds' patients only. The site model "
                 f"carries the same procedure fitted on all {adaptation.final.films} films; these figures estimate how it "
                 "does on films it has not seen."]
    bundled, adapted, difference = held["bundled"]["ece"], held["adapted"]["ece"], held["ece_difference"]
    ece_text = f"ECE as shipped {bundled}, adapted {adapted}; difference {difference}"
    if difference.ci_high < 0:
        lines.append(f"Calibration: better after adaptation ({ece_text}).")
    elif difference.ci_low > 0:
        lines.append(f"Calibration: WORSE after adaptation ({ece_text}); keep the shipped calibration.")
    else:
        lines.append(f"Calibration: no difference shown ({ece_text}); the interval of the difference includes 0."
                     + (" Adapted is no worse on the point estimate." if difference.value <= 0 else ""))
    sens = held["adapted"]["sensitivity"]
    lines.append(f"Threshold fitted for sensitivity {adaptation.target_sensitivity:.2f}: on films not fitted on it gave "
                 f"sensitivity {sens}, specificity {held['adapted']['specificity']} (as shipped: "
                 f"{held['bundled']['sensitivity']}, {held['bundled']['specificity']}).")
    if sens.value < adaptation.target_sensitivity:
        lines.append(f"The wanted sensitivity {adaptation.target_sensitivity:.2f} was not reached on unseen films "
                     "(a threshold fitted on few covid films misses it often); aim higher or label more covid films.")
    too_wide = [name for name, estimate in (("ECE", adapted), ("sensitivity", sens),
                                             ("specificity", held["adapted"]["specificity"])) if wide(estimate)]
    if too_wide:
        lines.append(f"Too few films to say: the 95% interval of {', '.join(too_wide)} is wider than ±0.1. "
                     "Use the site model only as an experiment, and validate it on new films.")
    return lines


def write_site_model(adaptation: SiteAdaptation, path: str | Path) -> Path:
    """A copy of the adapted checkpoint with the site's calibration and threshold and, in its record,
    `site_fit`: on what it was fitted and what it scored on films it was not fitted on."""
    from covidxray.hashing import sha256_file
    from covidxray.inference.checkpoint import OLD_BIAS_KEY, ModelInfo, read_checkpoint, write_content
    from covidxray.site.report_html import site_record

    model = adaptation.screened.model
    content = read_checkpoint(model["path"])
    info = ModelInfo.from_meta(content)
    info.temperature = float(adaptation.settings["temperature"])
    info.bias = float(adaptation.settings["logit_bias"])
    info.threshold = float(adaptation.settings["threshold"])
    content.pop(OLD_BIAS_KEY, None)
    content.update(info.settings())
    content["record"] = {**(content.get("record") or {}), "site_fit": site_record(adaptation, sha256_file(model["path"]))}
    return write_content(content, path)


def write_adaptation(adaptation: SiteAdaptation, out: Path) -> dict[str, Path]:
    """Write site-model.pt, MODEL_CARD.md, report.html, adapt.json and judged-films.csv into out
    (checked by the caller: never inside the site's image folders nor the bundled weights)."""
    import json

    from covidxray.site.report_html import adaptation_document, adaptation_figures, adaptation_page, model_card

    out.mkdir(parents=True, exist_ok=True)
    document = adaptation_document(adaptation)
    adaptation.figures = adaptation_figures(adaptation)
    model_path = write_site_model(adaptation, out / "site-model.pt")
    adaptation.held_out_films.to_csv(out / "judged-films.csv", index=False)
    (out / "adapt.json").write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(model_card(document), encoding="utf-8")
    (out / "report.html").write_text(adaptation_page(adaptation, document), encoding="utf-8")
    return {"model": model_path, "card": out / "MODEL_CARD.md", "html": out / "report.html", "json": out / "adapt.json",
            "films": out / "judged-films.csv"}

"""The site check's and the site adaptation's pages: one self-contained HTML each, JSON beside it.

Every number on a page comes from the JSON written beside it (the same dictionary); figures are
inlined PNGs, so a page works offline and can be mailed. Each page leads with the research notice.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from covidxray import RESEARCH_NOTICE
from covidxray.evaluation.metrics import Estimate
from covidxray.evaluation.report import HEADLINE, metric_name
from covidxray.paths.shown import portable

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222} img{max-width:100%}"
         " .notice{background:#fff3cd;padding:.6em;border:1px solid #e0c36a}"
         " .verdict{background:#e8f0fe;padding:.6em 1em;border:1px solid #9bb8e8} .verdict li{margin:.3em 0}"
         " .warning{background:#f8d7da;padding:.5em} .small{font-size:85%;color:#555}"
         " table.numbers{border-collapse:collapse;font-size:90%} table.numbers td,table.numbers th"
         "{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}")


# --- small writers -------------------------------------------------------------------------------

def clean(value):
    """value as JSON allows: NaN -> None, Estimates and numpy scalars as plain values, recursively."""
    if isinstance(value, Estimate):
        return clean(value.as_dict())
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    return value


def cell(estimate: dict | Estimate | None) -> str:
    """'value [low, high] (n=...)' of an estimate (its dict form too); 'n/a' when not measured."""
    if estimate is None:
        return "n/a"
    if isinstance(estimate, Estimate):
        estimate = estimate.as_dict()
    value = estimate.get("value")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"n/a (n={estimate.get('n')})"
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None and not math.isnan(low) else ""
    return f"{value:.3f}{interval} (n={estimate.get('n')})"


def image(png: bytes, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="numbers", na_rep="n/a")


def page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def shown_path(path: str, site_origin: Path) -> str:
    """A film's path as a report shows it: relative to the site's folder when inside it, else its name."""
    folder = site_origin.resolve() if site_origin.is_dir() else site_origin.resolve().parent
    try:
        return Path(os.path.abspath(path)).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


# --- figures ---------------------------------------------------------------------------------------

def roc_with_points(is_covid: np.ndarray, p_covid: np.ndarray, points: list[dict], title: str) -> bytes:
    """The ROC curve with operating points (each with its sensitivity and specificity intervals)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figure, axis = plt.subplots(figsize=(5.6, 5.0))
    if is_covid.min(initial=1) != is_covid.max(initial=0):
        fpr, tpr, _ = roc_curve(is_covid, p_covid)
        axis.plot(fpr, tpr, color="#1f77b4", label="ROC at this site")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    markers = ["o", "s", "^", "D", "v"]
    for number, point in enumerate(points):
        sens, spec = point["sensitivity"], point["specificity"]
        if sens["value"] is None or spec["value"] is None:
            continue
        x, y = 1 - spec["value"], sens["value"]
        xerr = [[max(0.0, x - (1 - spec["ci_high"]))], [max(0.0, (1 - spec["ci_low"]) - x)]] if spec["ci_low"] is not None else None
        yerr = [[max(0.0, y - sens["ci_low"])], [max(0.0, sens["ci_high"] - y)]] if sens["ci_low"] is not None else None
        axis.errorbar([x], [y], xerr=xerr, yerr=yerr, marker=markers[number % len(markers)], capsize=3, linestyle="none",
                      label=f"{point['name']}: p >= {point['threshold']['value']:.3f}")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, loc="lower right")
    axis.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def check_figures(check) -> dict[str, bytes]:
    """The site check's ROC (with its operating points) and reliability diagram, as PNG bytes."""
    from covidxray.evaluation.calibration import reliability_table
    from covidxray.evaluation.plots import reliability_diagram

    scored = check.scored
    if not len(scored):
        return {}
    is_covid, p_covid = scored["is_covid"].to_numpy(bool), scored["p_covid"].to_numpy(float)
    points = [clean(point.as_dict()) for point in check.operating_points]
    figures = {"roc": roc_with_points(is_covid, p_covid, points, f"ROC at {check.site.name}")}
    figures["reliability"] = reliability_diagram(reliability_table(is_covid, p_covid), check.calibration["ece"].value,
                                                 check.calibration["brier"].value)
    return figures


# --- the site check ----------------------------------------------------------------------------------

def check_document(check, reproduce: str) -> dict:
    """The site check as JSON: every number its page shows."""
    site, model = check.site, check.screened.model
    scored = check.scored
    return clean({
        "notice": RESEARCH_NOTICE,
        "site": {"name": site.name, "origin": portable(str(site.origin.resolve())), "layout": site.layout,
                 "patient_ids": site.patient_ids, "films": int(len(site.films)), "left_out": int(len(site.left_out)),
                 "left_out_reasons": site.left_out["reason"].value_counts().to_dict() if len(site.left_out) else {}},
        "model": portable({k: v for k, v in model.items() if k != "record"}),
        "resamples": check.resamples, "seed": check.seed,
        "n_scored": int(len(scored)), "n_patients": check.n_patients,
        "n_covid": int(scored["is_covid"].sum()), "n_not_covid": int((~scored["is_covid"].astype(bool)).sum()),
        "gate": check.gate,
        "metrics": {k: v.as_dict() for k, v in check.metrics.items()},
        "calibration": {"ece": check.calibration["ece"], "brier": check.calibration["brier"],
                        "bins": check.calibration["bins"]} if check.calibration else {},
        "operating_points": [p.as_dict() for p in check.operating_points],
        "verdict": check.verdict,
        "reproduce": reproduce,
    })


def _model_lines(model: dict) -> str:
    which = "the bundled model" if model["bundled"] else "model"
    return (f"Model: {which} {html.escape(Path(model['path']).name)} (sha256 {model['sha256'][:12]}, "
            f"{html.escape(model['architecture'])}), run by {html.escape(model['backend'])}; decision threshold "
            f"{model['threshold']:.4f} and calibration (temperature {model['temperature']:.3f}, logit bias "
            f"{model['logit_bias']:+.3f}) as shipped, fitted on its own validation films, not on these.")


def check_page(check, document: dict) -> str:
    """The site check's HTML page from its JSON document and figures."""
    from covidxray.site.sites import patient_note

    site = check.site
    gate = document["gate"]
    left_out = document["site"]["left_out"]
    left_out_text = f", {left_out} rows left out for want of a usable label" if left_out else ""
    body = [f"<h1>covidxray site check: {html.escape(site.name)}</h1>",
            f"<p class='notice'>{html.escape(RESEARCH_NOTICE)}</p>",
            "<h2>Verdict</h2><div class='verdict'><ul>" + "".join(f"<li>{html.escape(l)}</li>" for l in document["verdict"])
            + "</ul></div>",
            f"<p>{_model_lines(document['model'])}</p>",
            f"<p>Site: {html.escape(site.layout)} {html.escape(document['site']['origin'])}; {document['site']['films']} "
            f"labelled films{left_out_text}. "
            f"{html.escape(patient_note(site))} Intervals: 95%, {check.resamples} bootstrap resamples, seed {check.seed}. "
            "If any of these films were used to train or calibrate the model, every figure here is optimistic.</p>"]
    if document["n_scored"]:
        headline = pd.DataFrame([{"metric": metric_name(k), "value [95% CI] (n)": cell(document["metrics"][k])}
                                 for k in HEADLINE if k in document["metrics"]])
        body += ["<h2>Metrics at the model's threshold</h2>",
                 f"<p>On the {document['n_scored']} films the model scored ({document['n_covid']} covid, "
                 f"{document['n_not_covid']} not covid, {document['n_patients']} patients); n is each figure's "
                 "denominator.</p>", table(headline)]
        points = pd.DataFrame([{"operating point": p["name"], "threshold on p(covid) [95% CI]": cell(p["threshold"]) if p["target_sensitivity"] else f"{p['threshold']['value']:.4f} (as shipped)",
                                "sensitivity [95% CI] (n)": cell(p["sensitivity"]),
                                "specificity [95% CI] (n)": cell(p["specificity"])} for p in document["operating_points"]])
        body += ["<h2>ROC and the operating points a site would pick</h2>",
                 "<p>Each wanted sensitivity's threshold is the highest p(covid) cut-off that reaches it on these films, "
                 "chosen again in every bootstrap resample, so its intervals include the choosing. Chosen and measured on "
                 "the same films, these are descriptive and optimistic: <code>covidxray adapt</code> fits a threshold on "
                 "part of the films and reports on the rest.</p>", table(points), image(check.figures.get("roc", b""), "ROC")]
        calibration = document["calibration"]
        body += ["<h2>Calibration at this site</h2>", image(check.figures.get("reliability", b""), "reliability diagram"),
                 f"<p>Expected calibration error (10 bins) {cell(calibration['ece'])}, Brier score {cell(calibration['brier'])}, "
                 "p(covid) against covid.</p>"]
    counts = gate["counts"]
    body += ["<h2>The input gate and unreadable files</h2>",
             f"<p>{counts['screened']} screened, {counts['warned']} scored with a warning, {counts['refused']} refused "
             f"(not scored), {counts['error']} unreadable. Refused and unreadable films are left out of every figure above "
             "(docs/gate.md says what the gate checks).</p>"]
    for status, title in (("refused", "Refusals by reason"), ("warned", "Warnings by reason")):
        if gate.get(status):
            body += [f"<h3>{title}</h3>", table(pd.DataFrame([{"reason": r, "films": n} for r, n in gate[status].items()]))]
    films = check.screened.films
    unscored = films[films["status"].isin(("refused", "error"))]
    if len(unscored):
        listing = pd.DataFrame({"film": [shown_path(p, site.origin) for p in unscored["path"]], "label": unscored["label"],
                                "status": unscored["status"],
                                "why": [portable(e or n) for e, n in zip(unscored["error"], unscored["input_note"])]})
        body += ["<h3>Films not scored</h3>", table(listing.head(200))]
        if len(listing) > 200:
            body.append(f"<p class='small'>... and {len(listing) - 200} more, all in films.csv.</p>")
    if document["site"]["left_out"]:
        reasons = pd.DataFrame([{"reason": r, "rows": n} for r, n in document["site"]["left_out_reasons"].items()])
        body += ["<h3>Rows left out for want of a usable label</h3>", table(reasons)]
    body += ["<h2>Reproduce</h2>",
             "<p>The same figures from <code>covidxray evaluate</code> on the films scored here (scored.csv, written beside "
             f"this page; run in this folder, with the model's checkpoint): <code>{html.escape(document['reproduce'])}</code>. "
             "Every film's answer is in films.csv; "
             "every number of this page in site-check.json.</p>"]
    return page(f"covidxray site check: {site.name}", body)


# --- the site adaptation ------------------------------------------------------------------------------

def site_record(adaptation, from_sha256: str) -> dict:
    """What a site model records of its fit (no machine paths: the site's file or folder by name)."""
    from covidxray.hashing import sha256_file

    site, model, held = adaptation.site, adaptation.screened.model, adaptation.held_out
    return clean({
        "site": site.name, "site_input": site.origin.name, "layout": site.layout,
        "site_table_sha256": sha256_file(site.origin) if site.origin.is_file() else "",
        "films_scored": int(len(adaptation.screened.scored)), "fitted_on_films": adaptation.final.films,
        "fitted_on_patients": adaptation.final.patients, "scheme": adaptation.scheme, "folds": adaptation.folds,
        "seed": adaptation.seed, "target_sensitivity": adaptation.target_sensitivity,
        "from_checkpoint": Path(model["path"]).name, "from_checkpoint_sha256": from_sha256,
        "shipped": {"temperature": model["temperature"], "logit_bias": model["logit_bias"], "threshold": model["threshold"]},
        "site_fit_on_shipped_logit": {"temperature": adaptation.final.temperature, "logit_bias": adaptation.final.logit_bias},
        "judged_on": {"films": held["n_films"], "patients": held["n_patients"], "covid": held["n_covid"],
                      "not_covid": held["n_not_covid"]},
        "held_out": {name: {key: value.as_dict() for key, value in held[name].items()} for name in ("bundled", "adapted")},
        "ece_difference": held["ece_difference"].as_dict(),
    })


def adaptation_figures(adaptation) -> dict[str, bytes]:
    """Reliability diagrams of the shipped and the adapted p(covid) on the films judged, and the ROC
    with both thresholds."""
    from covidxray.evaluation.calibration import reliability_table
    from covidxray.evaluation.plots import reliability_diagram

    films = adaptation.held_out_films
    is_covid = films["is_covid"].to_numpy(bool)
    figures = {}
    for name, column in (("bundled", "p_shipped"), ("adapted", "p_adapted")):
        p_covid = films[column].to_numpy(float)
        held = adaptation.held_out[name]
        figures[f"reliability_{name}"] = reliability_diagram(reliability_table(is_covid, p_covid), held["ece"].value,
                                                             held["brier"].value)
    return figures


def adaptation_document(adaptation) -> dict:
    """The adaptation as JSON: every number its page and its model card show."""
    site, model = adaptation.site, adaptation.screened.model
    return clean({
        "notice": RESEARCH_NOTICE,
        "site": {"name": site.name, "origin": portable(str(site.origin.resolve())), "layout": site.layout,
                 "patient_ids": site.patient_ids, "films": int(len(site.films)), "left_out": int(len(site.left_out))},
        "model": portable({k: v for k, v in model.items() if k != "record"}),
        "gate": {"counts": adaptation.screened.counts()},
        "scheme": adaptation.scheme, "scheme_text": adaptation.scheme_text, "folds": adaptation.folds,
        "target_sensitivity": adaptation.target_sensitivity, "resamples": adaptation.resamples, "seed": adaptation.seed,
        "site_model_settings": adaptation.settings,
        "fits": adaptation.fits,
        "held_out": {**{k: v for k, v in adaptation.held_out.items() if k not in ("bundled", "adapted")},
                     "bundled": adaptation.held_out["bundled"], "adapted": adaptation.held_out["adapted"]},
        "record": site_record(adaptation, model["sha256"]),
        "verdict": adaptation.verdict,
    })


def _comparison(document: dict) -> pd.DataFrame:
    held = document["held_out"]
    names = (("ECE (10 bins)", "ece"), ("Brier score", "brier"), ("AUROC", "roc_auc"), ("sensitivity", "sensitivity"),
             ("specificity", "specificity"))
    return pd.DataFrame([{"on films not fitted on": label, "as shipped [95% CI] (n)": cell(held["bundled"][key]),
                          "adapted [95% CI] (n)": cell(held["adapted"][key])} for label, key in names]
                        + [{"on films not fitted on": "ECE adapted minus shipped", "as shipped [95% CI] (n)": "",
                            "adapted [95% CI] (n)": cell(held["ece_difference"])}])


def _settings_table(document: dict) -> pd.DataFrame:
    model, settings = document["model"], document["site_model_settings"]
    return pd.DataFrame([{"setting": name, "as shipped": f"{model[key]:.4f}", "site model": f"{settings[key]:.4f}"}
                         for name, key in (("threshold on p(covid)", "threshold"), ("temperature", "temperature"),
                                           ("logit bias", "logit_bias"))])


def adaptation_page(adaptation, document: dict) -> str:
    """The adaptation's HTML page from its JSON document and figures."""
    from covidxray.site.sites import patient_note

    site = adaptation.site
    counts = document["gate"]["counts"]
    body = [f"<h1>covidxray site adaptation: {html.escape(site.name)}</h1>",
            f"<p class='notice'>{html.escape(RESEARCH_NOTICE)}</p>",
            "<h2>Verdict</h2><div class='verdict'><ul>" + "".join(f"<li>{html.escape(l)}</li>" for l in document["verdict"])
            + "</ul></div>",
            f"<p>{_model_lines(document['model'])}</p>",
            f"<p>Site: {html.escape(site.layout)} {html.escape(document['site']['origin'])}; {document['site']['films']} labelled "
            f"films, of which the gate refused {counts['refused']} and {counts['error']} could not be read (neither fitted on "
            f"nor judged). {html.escape(patient_note(site))}</p>",
            "<h2>What was fitted, and how it was judged</h2>",
            f"<p>Calibration (temperature and logit bias on the shipped calibrated logit, by likelihood) and the threshold that "
            f"reaches sensitivity {document['target_sensitivity']:.2f} on the fitting films; {html.escape(document['scheme_text'])} "
            f"(folds dealt by patient, classes balanced, seed {document['seed']}). No film is judged by a fit that saw it or "
            "another film of its patient. The weights are unchanged.</p>",
            table(_settings_table(document)),
            "<h2>Shipped against adapted, on films not fitted on</h2>",
            f"<p>{document['held_out']['n_films']} films of {document['held_out']['n_patients']} patients "
            f"({document['held_out']['n_covid']} covid, {document['held_out']['n_not_covid']} not covid); 95% intervals from "
            f"{document['resamples']} bootstrap resamples of patients, the same resamples for both columns.</p>",
            table(_comparison(document)),
            "<h3>Calibration as shipped</h3>", image(adaptation.figures.get("reliability_bundled", b""), "reliability as shipped"),
            "<h3>Calibration adapted</h3>", image(adaptation.figures.get("reliability_adapted", b""), "reliability adapted")]
    if len(document["fits"]) > 1:
        fits = pd.DataFrame([{"fold": f["fold"], "fitted on films": f["fitted_films"], "judged films": f["judged_films"],
                              "temperature": f"{f['temperature']:.3f}", "logit bias": f"{f['logit_bias']:+.3f}",
                              "threshold": f"{f['threshold']:.4f}"} for f in document["fits"]])
        body += ["<h3>The fits, fold by fold (on the shipped calibrated logit)</h3>", table(fits)]
    body += ["<h2>Files</h2>", "<p>site-model.pt (the same weights, the site's calibration and threshold, the fit in its record "
             "under <code>site_fit</code>), MODEL_CARD.md, adapt.json (every number of this page), judged-films.csv (each judged "
             "film's p(covid) as shipped and adapted). Check the site model on new films with "
             "<code>covidxray validate NEW.csv --model site-model.pt</code>.</p>"]
    return page(f"covidxray site adaptation: {site.name}", body)


def model_card(document: dict) -> str:
    """The site model's card (Markdown), every figure from the adaptation's JSON document."""
    from covidxray.evaluation.report import markdown_table

    record, model, held = document["record"], document["model"], document["held_out"]
    lines = [f"# Site model card: {record['site']}", "", f"> {RESEARCH_NOTICE}", "",
             f"The network of `{record['from_checkpoint']}` (sha256 {record['from_checkpoint_sha256'][:12]}), its weights "
             f"unchanged, with a decision threshold and a calibration fitted to the labelled films of `{record['site_input']}` "
             f"({document['site']['layout']}{', table sha256 ' + record['site_table_sha256'][:12] if record['site_table_sha256'] else ''}) "
             f"by `covidxray adapt`.", "",
             "## Fitted on", "",
             f"- {record['fitted_on_films']} films of {record['fitted_on_patients']} patients"
             f" ({'one half of the patients' if record['scheme'] == 'split' else 'all scored films; judged by cross-fitting'}),"
             f" of {record['films_scored']} films the model scored at the site.",
             f"- Threshold: the highest p(covid) cut-off reaching sensitivity {record['target_sensitivity']:.2f} on those films.",
             "- Calibration: temperature and logit bias, by likelihood (covidxray.training.calibration.fit_calibration), "
             "on the shipped calibrated logit.", "",
             markdown_table(_settings_table(document)), "",
             "## What it scored on films it was not fitted on", "",
             f"{document['scheme_text'].capitalize()}: {held['n_films']} films of {held['n_patients']} patients "
             f"({held['n_covid']} covid, {held['n_not_covid']} not covid), none of them, nor another film of their patient, "
             "in the fit that judged them. 95% intervals from a bootstrap of patients.", "",
             markdown_table(_comparison(document)), "",
             *[f"- {line}" for line in document["verdict"]], "",
             "## Use", "",
             f"`covidxray predict FILMS --model site-model.pt` (and `validate`, `serve --model`). Being a new file, it runs by "
             "PyTorch until exported (`covidxray export --onnx --model site-model.pt`); severity, tied to the shipped "
             "checkpoint's sha256, falls back to the lungs-only model. Validate it on films labelled after this fit "
             "before relying on it: `covidxray validate NEW.csv --model site-model.pt`.", ""]
    return "\n".join(lines)

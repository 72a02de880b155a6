"""Write an evaluation as one self-contained HTML page, summary.md and metrics.json.

Every number in the HTML is also in metrics.json; images are inlined, so the page works offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import pandas as pd

from covidxray import RESEARCH_NOTICE
from covidxray.evaluation.metrics import Estimate
from covidxray.evaluation.yardstick import yardstick_rows
from covidxray.inference.checkpoint import logit_bias_of
from covidxray.paths.shown import portable

PUBLISHED = Path(__file__).with_name("published.csv")
HEADLINE = ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity", "precision", "npv", "f1")
SOURCE_COLUMNS = ("roc_auc", "sensitivity", "specificity", "accuracy")
#: What people read for each metric key; metrics.json keeps the keys.
METRIC_NAMES = {"roc_auc": "AUROC", "pr_auc": "AUPRC", "precision": "PPV", "npv": "NPV", "f1": "F1"}


def metric_name(key: str) -> str:
    """'roc_auc' -> 'AUROC (roc_auc)', 'covid/npv' -> 'covid: NPV (covid/npv)': readable, and the key beside it;
    keys that are already words ('sensitivity', 'macro/accuracy') stay as they are."""
    scope, _, base = key.rpartition("/")
    name = METRIC_NAMES.get(base)
    if name is None:
        return key
    return f"{scope + ': ' if scope else ''}{name} ({key})"


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def metrics_document(header: dict, parts: list) -> dict:
    """The JSON form of an evaluation: header (model, data) and every part's numbers."""
    document = {"notice": RESEARCH_NOTICE, **portable(header), "parts": {}}
    for part in parts:
        document["parts"][part.part] = {
            "n_images": part.n_images, "n_patients": part.n_patients, "unreadable": part.unreadable,
            "metrics": {k: v.as_dict() for k, v in part.overall.items()},
            "per_source": {s: {k: v.as_dict() for k, v in m.items()} for s, m in part.per_source.items()},
            "confusion": part.confusion, "calibration": part.calibration, "audits": part.audits, "notes": part.notes,
            "within_hospital": part.within_hospital, "held_out_sources": part.held_out_sources,
        }
    return _clean(document)


def _headline_keys(overall: dict) -> list[str]:
    if "roc_auc" in overall:
        return [k for k in HEADLINE if k in overall]
    return ["accuracy"] + [k for k in overall if k.startswith("macro/")] + [k for k in overall if "/" in k and not k.startswith("macro/")]


def _estimate_cell(estimate) -> str:
    return str(estimate)


def _image(png: bytes, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="numbers", na_rep="n/a")


def _probe_verdict(probe: dict) -> str:
    margin = probe["balanced_accuracy"] - probe["chance"]
    if margin > 0.25:
        return "Far above chance: the model's features encode the data source, a likely shortcut."
    if margin > 0.1:
        return "Above chance: the features carry some information about the source."
    return "Near chance: little sign that the features encode the source."


def _audit_text(audits: dict) -> list[str]:
    lines = []
    for key, title in (("source_probe", "all images"), ("source_probe_covid_only", "covid images only")):
        probe = audits.get(key)
        if not probe:
            continue
        if probe.get("applicable"):
            lines.append(f"Source probe ({title}): balanced accuracy {probe['balanced_accuracy']:.3f} predicting the source "
                         f"({', '.join(probe['sources'])}) from the model's penultimate features, chance {probe['chance']:.3f}, "
                         f"n={probe['n']}, 5-fold patient-grouped CV. " + _probe_verdict(probe))
        else:
            lines.append(f"Source probe ({title}): not applicable ({probe.get('reason')}), n={probe.get('n')}.")
    lungs = audits.get("lungs")
    if lungs:
        if lungs.get("applicable"):
            fmt = lambda e: f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"  # noqa: E731
            lines.append(f"Lungs hidden (n={lungs['n']} images; lung masks drawn by hand for {lungs.get('hand_masks', lungs['n'])}, "
                         f"by the bundled segmenter for {lungs.get('segmenter_masks', 0)}): AUROC original {fmt(lungs['original'])}, "
                         f"lungs blanked {fmt(lungs['lungs_hidden'])}, only lungs kept {fmt(lungs['lungs_only'])}. "
                         "AUROC well above 0.5 with the lungs blanked means the model uses cues outside the lungs; "
                         "AUROC with only the lungs kept far below the unaltered one means it needs them.")
        else:
            lines.append(f"Lungs hidden: not applicable ({lungs.get('reason')}), n={lungs.get('n')}.")
    cam = audits.get("cam_in_lungs")
    if cam and cam.get("share"):
        share = cam["share"]
        lines.append(f"Grad-CAM inside the lungs: {share['value']:.3f} [{share['ci_low']:.3f}, {share['ci_high']:.3f}] of the covid "
                     f"heat map's mass lies inside the lung masks (n={cam['n']} images"
                     f"{'; ' + str(cam['empty_maps']) + ' more sampled images had an empty covid map, no covid evidence anywhere' if cam.get('empty_maps') else ''}"
                     "; the lungs cover "
                     f"{cam['lung_area_share']:.3f} of the model's input, what an evenly spread map would score).")
    return lines


def part_tables(part) -> tuple[pd.DataFrame, pd.DataFrame]:
    headline = pd.DataFrame([{"metric": metric_name(k), "value [95% CI] (n)": _estimate_cell(part.overall[k])}
                             for k in _headline_keys(part.overall)])
    rows = []
    for source, metrics in part.per_source.items():
        row = {"source": source}
        for key in SOURCE_COLUMNS:
            chosen = key if key in metrics else f"macro/{key}"
            if chosen in metrics:
                row[metric_name(key)] = _estimate_cell(metrics[chosen])
        rows.append(row)
    return headline, pd.DataFrame(rows)


VERDICTS = {True: "yes", False: "NO", None: "not measured"}


def check_cell(check: dict) -> str:
    """A shortcut figure as 'value [low, high] (n=...)', with what of it was measured."""
    if check.get("value") is None:
        return "n/a"
    interval = f" [{check['ci_low']:.3f}, {check['ci_high']:.3f}]" if check.get("ci_low") is not None else ""
    count = f" (n={check['n']})" if check.get("n") is not None else ""
    return f"{check['value']:.3f}{interval}{count}"


def yardstick_tables(part) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(within-hospital contrasts, shortcut figures against their targets) of one part, for people."""
    auroc = part.overall.get("roc_auc") or part.overall.get("covid/roc_auc")
    rows = [{"within-hospital contrast": row["description"],
             "AUROC [95% CI] (n)": (_estimate_cell(Estimate(**row["auroc"])) if row["auroc"]
                                    else f"not applicable ({row['reason']})" if row["reason"] else "n/a"),
             "covid / other": row["counts"]}
            for row in yardstick_rows(part.within_hospital, part.held_out_sources, auroc.as_dict() if auroc else None)]
    targets = [{"shortcut figure": name, "value [95% CI] (n)": check_cell(check), "target": check["target"],
                "met": VERDICTS[check["met"]]} for name, check in (part.audits.get("targets") or {}).items()]
    return pd.DataFrame(rows), pd.DataFrame(targets)


def write_report(out_dir: Path, header: dict, parts: list, curves_png: bytes | None) -> dict[str, Path]:
    """Write report.html, summary.md, metrics.json and predictions-<part>.csv into out_dir.

    Args:
        out_dir: the report folder (created).
        header: the model's settings and record, checkpoint and table hashes, bootstrap settings.
        parts: the PartResults, in order.
        curves_png: the training run's curves.png, shown when given.

    Returns:
        {"html", "summary", "metrics"} -> the paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    header = portable(header)  # the page and summary show file names, never the folders of this machine
    document = metrics_document(header, parts)
    (out_dir / "metrics.json").write_text(json.dumps(document, indent=2, sort_keys=True))
    for part in parts:
        part.predictions.to_csv(out_dir / f"predictions-{part.part}.csv", index=False)
    published = pd.read_csv(PUBLISHED)
    model = header["model"]
    intro = [
        f"Model: <b>{html.escape(model['architecture'])}</b>, task {html.escape(model['task'])}, labels {', '.join(model['labels'])}; "
        f"decision threshold {model['threshold']:.4f} and calibration (temperature {model['temperature']:.3f}, logit bias {logit_bias_of(model):+.3f}), both fitted on the validation split "
        "during training, never on the evaluated part.",
        f"Checkpoint {html.escape(header['checkpoint'])} (sha256 {header['checkpoint_sha256'][:12]}); evaluated table "
        f"{html.escape(header['table'])} (fingerprint {header.get('table_fingerprint', '')[:12]}, the sha256 with paths "
        f"relative to the datasets' folder; file sha256 {header['table_sha256'][:12]}); bootstrap: {header['resamples']} resamples of patients, seed {header['seed']}.",
    ]
    body = [f"<h1>covidxray evaluation report</h1><p class='notice'>{html.escape(RESEARCH_NOTICE)}</p>"]
    body += [f"<p>{line}</p>" for line in intro]
    markdown = ["# covidxray evaluation report", "", f"> {RESEARCH_NOTICE}", "", *[html.unescape(l.replace('<b>', '**').replace('</b>', '**')) for l in intro], ""]
    for part in parts:
        headline, sources = part_tables(part)
        body.append(f"<h2>Part: {html.escape(part.part)}</h2><p>{part.n_images} images of {part.n_patients} patients"
                    f"{f'; {part.unreadable} unreadable images left out' if part.unreadable else ''}.</p>")
        body += [f"<p class='warning'>{html.escape(note)}</p>" for note in part.notes]
        within, targets = yardstick_tables(part)
        body += ["<h3>Within-hospital yardstick (decides; docs/evaluation.md)</h3>",
                 "<p>Both classes of each contrast come from one source and pipeline, so a model that only "
                 "recognises the source scores 0.5 here. These figures, and a source held out entirely, decide; the "
                 "mixed-source metrics below are reported, never chosen on.</p>", _table(within)]
        if len(targets):
            body += ["<h3>Shortcut figures against their targets</h3>", _table(targets)]
        body += ["<h3>Metrics</h3>", "<p>On mixed sources: reported, never chosen on.</p>", _table(headline), "<h3>Per source</h3>", _table(sources),
                 "<h3>ROC and precision-recall</h3>", _image(part.figures.get("roc_pr", b""), "ROC and PR curves"),
                 "<h3>Confusion matrix</h3>", _image(part.figures.get("confusion", b""), "confusion matrices"),
                 "<h3>Calibration</h3>", _image(part.figures.get("reliability", b""), "reliability diagram"),
                 f"<p>Expected calibration error {part.calibration['ece']:.4f}, Brier score {part.calibration['brier']:.4f} (p(covid) against covid).</p>"]
        audit_lines = _audit_text(part.audits)
        if audit_lines or part.figures.get("montage"):
            body.append("<h3>Shortcut audits</h3>")
            body += [f"<p>{html.escape(line)}</p>" for line in audit_lines]
            body += ["<h4>Grad-CAM: most confident right and wrong cases per class</h4>", _image(part.figures.get("montage", b""), "Grad-CAM montage")]
        markdown += [f"## Part: {part.part}", "", f"{part.n_images} images of {part.n_patients} patients.", "",
                     *[f"**Warning:** {n}" for n in part.notes], "",
                     "Within-hospital yardstick (decides):", "", markdown_table(within), "",
                     *(["Shortcut figures against their targets:", "", markdown_table(targets), ""] if len(targets) else []),
                     "Mixed-source metrics (reported, never chosen on):", "",
                     markdown_table(headline), "", "Per source:", "", markdown_table(sources), "",
                     f"ECE {part.calibration['ece']:.4f}, Brier {part.calibration['brier']:.4f}.", "", *audit_lines, ""]
    if curves_png:
        body += ["<h2>Training curves of the run</h2>", _image(curves_png, "training curves")]
    body += ["<h2>Published figures (not comparable)</h2>",
             "<p>As their authors report them, on other test sets and protocols; quoted for context only, never as if measured here.</p>",
             _table(published)]
    markdown += ["## Published figures (not comparable: other data, other protocols)", "", markdown_table(published), ""]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222} img{max-width:100%}"
             " .notice{background:#fff3cd;padding:.6em;border:1px solid #e0c36a} .warning{background:#f8d7da;padding:.5em}"
             " table.numbers{border-collapse:collapse;font-size:90%} table.numbers td,table.numbers th{border-bottom:1px solid #ddd;padding:3px 8px}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>covidxray evaluation</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    (out_dir / "summary.md").write_text("\n".join(markdown), encoding="utf-8")
    return {"html": out_dir / "report.html", "summary": out_dir / "summary.md", "metrics": out_dir / "metrics.json"}

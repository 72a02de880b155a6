"""Write a model card from evaluation reports: every figure in it comes from a metrics.json.

The card says what the model is for and not for, how it was trained, how well it did on the
internal test part and on a source held out of training, how well calibrated it is, what the
shortcut audits found, and the commands that reproduce it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError
from covidxray.inference.checkpoint import logit_bias_of

#: The README's copy of the card's yardstick sits between these two lines (`covidxray model-card --readme`).
README_START = "<!-- yardstick: copied from the model card by `covidxray model-card --readme README.md`; do not edit -->"
README_END = "<!-- end of the yardstick copied from the model card -->"
YARDSTICK_HEADING = "## The yardstick that decides"

HEADLINE = ("roc_auc", "sensitivity", "specificity", "precision", "npv", "accuracy", "f1")


def _estimate(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "n/a"
    low, high = metric.get("ci_low"), metric.get("ci_high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{metric['value']:.3f}{interval} (n={metric['n']})"


def _table_hash(document: dict) -> str:
    """The evaluated table's fingerprint (covidxray.data.fingerprint: matches on any disk), or its file sha256 for older reports."""
    if document.get("table_fingerprint"):
        return f"fingerprint {document['table_fingerprint'][:12]}"
    return f"sha256 {document['table_sha256'][:12]}"


def _split_hash(record: dict) -> str:
    """The training split's fingerprint, or the file sha256 of records made before fingerprints."""
    if record.get("split_fingerprint"):
        return f"fingerprint {record['split_fingerprint'][:12]} (`covidxray.data.fingerprint.split_fingerprint`)"
    return f"file sha256 {str(record.get('split_sha256', ''))[:12]}"


def _part_section(title: str, document: dict, part_name: str) -> list[str]:
    part = document["parts"][part_name]
    metrics = part["metrics"]
    keys = [k for k in HEADLINE if k in metrics] or [k for k in metrics if k.startswith("macro/")]
    lines = [f"### {title}", "", f"{part['n_images']} images of {part['n_patients']} patients "
             f"(part `{part_name}` of `{Path(document['table']).name}`, {_table_hash(document)}).", "",
             "| metric | value [95% CI] (n) |", "|---|---|"]
    lines += [f"| {k} | {_estimate(metrics[k])} |" for k in keys]
    lines += ["", "Per source:", "", "| source | AUROC | sensitivity | specificity |", "|---|---|---|---|"]
    for source, values in part["per_source"].items():
        lines.append(f"| {source} | {_estimate(values.get('roc_auc') or values.get('macro/roc_auc'))} | "
                     f"{_estimate(values.get('sensitivity') or values.get('macro/sensitivity'))} | "
                     f"{_estimate(values.get('specificity') or values.get('macro/specificity'))} |")
    calibration = part["calibration"]
    lines += ["", f"Calibration: expected calibration error {calibration['ece']:.3f}, Brier score {calibration['brier']:.3f}.", ""]
    lines += [f"**Warning:** {note}" for note in part.get("notes", [])]
    audits = part.get("audits") or {}
    probe = audits.get("source_probe") or {}
    if probe.get("applicable"):
        lines.append(f"Source probe: the data source is predicted from the model's penultimate features with balanced accuracy "
                     f"{probe['balanced_accuracy']:.3f} (chance {probe['chance']:.3f}, n={probe['n']}).")
    lungs = audits.get("lungs") or {}
    if lungs.get("applicable"):
        lines.append(f"Lungs hidden: AUROC {_estimate(lungs['lungs_hidden'])} with the lung fields blanked, "
                     f"{_estimate(lungs['lungs_only'])} with only the lungs kept, {_estimate(lungs['original'])} unaltered.")
    elif lungs:
        lines.append(f"Lungs-hidden audit: not applicable here ({lungs.get('reason')}).")
    return lines + [""]


def _yardstick_lines(label: str, document: dict, part_name: str) -> list[str]:
    """Table rows of the within-hospital contrasts that apply (and the held-out source) of one report part."""
    from covidxray.evaluation.yardstick import yardstick_rows

    part = document["parts"][part_name]
    auroc = part["metrics"].get("roc_auc") or part["metrics"].get("covid/roc_auc")
    rows = yardstick_rows(part.get("within_hospital") or {}, part.get("held_out_sources") or [], auroc)
    return [f"| {label} | {row['description']} | {_estimate(row['auroc'])} |" for row in rows if row["auroc"]]


def _shortcut_lines(document: dict, part_name: str) -> list[str]:
    """Table rows of the shortcut figures against their targets, as the evaluation judged them."""
    from covidxray.evaluation.report import VERDICTS, check_cell

    targets = (document["parts"][part_name].get("audits") or {}).get("targets") or {}
    return [f"| {name} | {check_cell(check)} | {check['target']} | {VERDICTS[check['met']]} |" for name, check in targets.items()]


def _input_lines(preprocessing: dict | None, record: dict) -> list[str]:
    """What the network sees (size, lung crop, equalisation) and how training varied it; reports made before
    preprocessing was recorded give nothing."""
    if not preprocessing:
        return []
    steps = [f"{preprocessing['size']} px, {preprocessing.get('channels', 1)} channel(s)",
             f"intensity normalisation {preprocessing.get('intensity', 'none')}"]
    if preprocessing.get("lung_crop"):
        steps.append("cut to the bundled segmenter's lung box")
    if preprocessing.get("hide_outside_lungs"):
        steps.append("outside the lungs filled with their median")
    if preprocessing.get("crop_border"):
        steps.append(f"border crop {preprocessing['crop_border']}")
    if preprocessing.get("equalise"):
        steps.append("histogram equalised")
    adversary = f", source adversary weight {record['source_adversary']}" if record.get("source_adversary") else ""
    return [f"- input: {', '.join(steps)}; training augmentation `{record.get('augmentation_preset', 'unrecorded')}`{adversary}"]


def _recipe_lines(record: dict, recipe_name: str | None = None) -> list[str]:
    """The named recipe the model was trained with and what was changed from it. A record made before
    recipes had names is named by recipe_name (the release script's, whose settings tests/test_training.py
    holds equal to the record's); without either, nothing."""
    recipe = record.get("recipe") or {}
    if not recipe.get("name"):
        if not recipe_name:
            return []
        return [f"- Recipe: `{recipe_name}` (`covidxray train --recipe {recipe_name}`; the training record predates "
                "recipe names and holds the same settings one by one)"]
    changes = record.get("recipe_changes") or {}
    sets = "".join(f" --set {key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in changes.items())
    changed = f", changed: {', '.join(f'{key}={value}' for key, value in changes.items())}" if changes else ""
    return [f"- Recipe: `{recipe['name']}`{changed} (`covidxray train --recipe {recipe['name']}{sets}`)"]


def _provenance(record: dict) -> list[str]:
    """Where the weights were trained (device, pack) and from which teacher, when that applies."""
    planned = f" of {record['epochs']} planned" if record.get("epochs") else ""
    lines = [f"- trained on `{record.get('device', 'cpu')}`; kept the weights of epoch {record.get('best_epoch', '?')}{planned}, "
             f"the best {record.get('selection', 'validation AUROC')}"]
    pack = record.get("pack")
    if pack:
        lines.append(f"- images read from a pack (`covidxray data pack`, longest side {pack.get('max_side')} px, JPEG quality "
                     f"{pack.get('quality')}, sha256 {str(pack.get('sha256', ''))[:12]}) made from the same split's files")
    teacher = record.get("distillation")
    if teacher:
        lines.append(f"- distilled from a `{teacher['architecture']}` teacher trained on the same split (checkpoint sha256 "
                     f"{teacher['sha256'][:12]}, input {teacher['input_size']} px): loss weight {teacher['weight']} on its "
                     f"outputs softened at temperature {teacher['temperature']}, the rest on the labels")
    recalibrated = record.get("recalibrated_on")
    if recalibrated:
        lines.append(f"- calibration and threshold refitted on the original files of part `{recalibrated.get('part')}` "
                     "(`covidxray calibrate`)")
    return lines


def build_model_card(internal: str | Path, out: str | Path = "MODEL_CARD.md", external: str | Path | None = None,
                     baselines: Sequence[str | Path] = (), script: str | Path | None = None, how: Sequence[str] = (),
                     readme: str | Path | None = None, recipe: str | None = None) -> Path:
    """The model card from evaluation reports (what `covidxray model-card` runs); outputs checked before any write.

    Args:
        internal: report folder of the shipped model on the internal test part.
        out: the card to write (Markdown).
        external: report folder of the same recipe on a source held out of training.
        baselines: report folders of baselines (seed-cnn).
        script: the script that reproduces the model; its commands go into the card.
        how: how the script was run, when not plainly (steps before it, its settings); default `bash SCRIPT`.
        readme: also copy the card's yardstick into this README's marked block (README_START, README_END).
        recipe: the recipe's name, for a model whose training record predates recipe names.

    Returns:
        The card's path. A README without the block, or an output over an input, is refused
        (CovidxrayError) before anything is written.
    """
    from covidxray.paths.outputs import check_outputs

    internal, out = Path(internal), Path(out)
    external = Path(external) if external is not None else None
    baselines = [Path(folder) for folder in baselines]
    script = Path(script) if script is not None else None
    readme = Path(readme) if readme is not None else None
    reports_given = [internal / "metrics.json", *([external / "metrics.json"] if external else []),
                     *[folder / "metrics.json" for folder in baselines], *([script] if script else [])]
    check_outputs([(out, "model card")], (), reports_given + ([readme] if readme else []))
    readme_text = ""
    if readme:
        check_outputs([(readme, "README")], (), reports_given + [out])
        try:
            readme_text = read_readme(readme)  # before the card is written: a bad README changes nothing
        except ValueError as error:
            raise CovidxrayError(str(error)) from None
    commands = list(how) if how else [f"bash {script}"] if script else []
    if script and script.is_file():
        commands += ["# which runs:"] + [line for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    written = write_model_card(out, internal, external, commands, baselines, recipe)
    if readme:
        readme.write_text(with_yardstick(readme_text, written.read_text(encoding="utf-8")), encoding="utf-8")
    return written


def write_model_card(out: Path, internal_report: Path, external_report: Path | None, commands: list[str],
                     baseline_reports: Sequence[Path] = (), recipe: str | None = None) -> Path:
    """Render MODEL_CARD.md from the reports' metrics.json files.

    Args:
        out: the card to write.
        internal_report: report folder of the shipped model on the internal test part.
        external_report: report folder of the same recipe on a held-out source, or None.
        commands: the lines of the card's Reproduce block.
        baseline_reports: report folders of baselines.
        recipe: the recipe's name when the training record predates recipe names.

    Returns:
        out.
    """
    internal = json.loads((internal_report / "metrics.json").read_text())
    model = internal["model"]
    record = model.get("training_record", {})
    lines = [f"# Model card: covidxray default model ({model['architecture']}, {model['task']})", "",
             f"> {RESEARCH_NOTICE}", "",
             "## Intended use", "",
             "Research on chest-radiograph screening methods: a first, contact-free read of a frontal chest X-ray that "
             "says how much it resembles the COVID-19 images of public collections, with a heat map and a calibrated "
             "probability. Not for diagnosis, triage or any clinical decision; not validated prospectively or in any hospital.", "",
             "## Model", "",
             f"- architecture `{model['architecture']}`, task `{model['task']}`, labels {', '.join(model['labels'])}",
             *_recipe_lines(record, recipe),
             f"- decision threshold {model['threshold']:.4f} and calibration (temperature {model['temperature']:.3f}, logit bias {logit_bias_of(model):+.3f}), both fitted on the "
             f"validation part (`{record.get('val_part', 'val')}`) of the training split",
             f"- trained with seed {record.get('seed')}, batch size {record.get('batch_size')}, learning rate {record.get('lr')}, "
             f"optimizer {record.get('optimizer')}, schedule {record.get('schedule')}, sampler {record.get('sampler')}, "
             f"covidxray {record.get('covidxray_version')}, torch {record.get('torch_version')}",
             *_input_lines(model.get("preprocessing"), record),
             f"- training data: split {_split_hash(record)}; images per part and label: "
             f"{json.dumps(record.get('counts', {}))}",
             *_provenance(record), "",
             YARDSTICK_HEADING, "",
             "Both classes of each row come from one hospital pipeline, or from a source the model never saw, so a "
             "model that had learned where an image comes from would score 0.5 (`docs/evaluation.md`).", "",
             "| model | contrast | AUROC [95% CI] (n) |", "|---|---|---|",
             *_yardstick_lines("shipped model, internal test part", internal, "test")]
    external = json.loads((external_report / "metrics.json").read_text()) if external_report else None
    if external:
        for name in [p for p in external["parts"] if p == "external"]:
            lines += _yardstick_lines("same recipe, source held out", external, name)
    for report in baseline_reports:
        baseline = json.loads((report / "metrics.json").read_text())
        for name in baseline["parts"]:
            lines += _yardstick_lines(f"baseline `{baseline['model']['architecture']}` ({report.name}), part `{name}`",
                                      baseline, name)
    shortcut = _shortcut_lines(internal, "test")
    if shortcut:
        lines += ["", "Shortcut figures of the shipped model on the internal test part (`docs/evaluation.md`):", "",
                  "| figure | value | target | met |", "|---|---|---|---|", *shortcut]
    lines += ["", "## Performance on mixed sources (reported, never chosen on)", ""]
    lines += _part_section("Internal test part (same sources as training, other patients)", internal, "test")
    if external:
        ext_model = external["model"]
        parts = [p for p in external["parts"] if p == "external"] or list(external["parts"])
        lines += [f"A model of the same recipe was trained on a split that holds one source out entirely "
                  f"(`{Path(external['table']).name}`), to measure what happens in a hospital the model never saw "
                  f"(its threshold {ext_model['threshold']:.4f} was fitted on its own validation part).", ""]
        for name in parts:
            lines += _part_section(f"Held-out source (part `{name}`)", external, name)
    for report in baseline_reports:
        baseline = json.loads((report / "metrics.json").read_text())
        for name in baseline["parts"]:
            auroc = baseline["parts"][name]["metrics"].get("roc_auc") or baseline["parts"][name]["metrics"].get("macro/roc_auc")
            lines.append(f"- baseline `{baseline['model']['architecture']}` on part `{name}` of `{Path(baseline['table']).name}`: "
                         f"AUROC {_estimate(auroc)}")
    lines += ["", "## Input gate", "",
              "Inputs that are certainly not frontal chest radiographs (blank, colour photographs, non-X-ray DICOM "
              "modalities, clear lateral views, nothing like a radiograph) are refused and get no probability; unusual "
              "but plausible radiographs get one, with a warning in plain words. How it was built and tested, leave one "
              "collection out: ""`docs/gate.md`.", "",
              "## Limits", "",
              "- Trained on public collections in which the classes come from different hospitals, countries and pipelines; "
              "the per-source tables and the held-out source show how much of the internal figure survives a new source.",
              "- Image-level labels from public metadata (NIH labels were mined from report text and are noisy); no pediatric images.",
              "- Duplicate radiographs across collections were clustered and kept in one split, but a cropped copy under a "
              "new, generic name can escape detection (`docs/data.md`).",
              "- Probabilities are calibrated to the class mix and the sources of the validation part; on a source "
              "with another mix they are not (compare the held-out source's ECE above). Refit on local "
              "validation images with `covidxray calibrate` before reading them as risks.",
              "- The sample images shipped with the package were part of the training data.", "",
              "## Reproduce", "", "```bash", *commands, "```", ""]
    # no folder of the machine that built the model (run, split, pack, script): file names only
    from covidxray.paths.shown import without_machine_paths

    out.write_text(without_machine_paths("\n".join(lines)), encoding="utf-8")
    return out


def yardstick_section(card: str) -> str:
    """The card's yardstick and shortcut tables (without their heading): what the README leads with."""
    if YARDSTICK_HEADING not in card:
        raise ValueError(f"the model card has no '{YARDSTICK_HEADING}' section")
    body = card.split(YARDSTICK_HEADING, 1)[1]
    return body.split("\n## ", 1)[0].strip()


def read_readme(readme: Path) -> str:
    """The README's text, checked to hold the block that with_yardstick replaces; ValueError naming the file."""
    try:
        text = readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{readme}: README not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{readme}: cannot read it as UTF-8 text ({type(exc).__name__})") from None
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme}: no yardstick block to replace (add the two lines README_START and README_END "
                         "of covidxray.evaluation.model_card where the figures belong)")
    return text


def with_yardstick(readme_text: str, card: str) -> str:
    """The README with its block between README_START and README_END replaced by the card's yardstick,
    so that the figures a reader meets first are the card's own, never typed by hand."""
    before, rest = readme_text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    return f"{before}{README_START}\n{yardstick_section(card)}\n{README_END}{after}"

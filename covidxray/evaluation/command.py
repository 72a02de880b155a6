"""`covidxray evaluate` and `covidxray compare`: honest reports from a checkpoint and a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from covidxray.errors import CovidxrayError


def register(app: typer.Typer) -> None:
    """Add evaluate and compare to the CLI app."""

    @app.command("evaluate")
    def evaluate_command(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) written by `covidxray train`."),
        split: Path = typer.Option(..., "--split", help="split.csv from `covidxray data split`, or any labelled manifest (with --part all)."),
        part: Optional[list[str]] = typer.Option(None, "--part", help="Part(s) to evaluate: test (default), val, external, all. Repeatable."),
        out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for report.html, summary.md, metrics.json."),
        resamples: int = typer.Option(1000, "--resamples", help="Patient-bootstrap resamples for the 95% CIs."),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (same seed, same numbers)."),
        audits: bool = typer.Option(True, "--audits/--no-audits", help="Run the shortcut audits and the Grad-CAM montage."),
    ) -> None:
        """Metrics with patient-bootstrap CIs, per source, calibration, shortcut audits; one HTML report."""
        from covidxray.console import console, print_frame
        from covidxray.data.schema import read_table
        from covidxray.evaluation.evaluate import evaluate_part, select_part
        from covidxray.data.fingerprint import same_split, split_fingerprint
        from covidxray.hashing import sha256_file
        from covidxray.evaluation.report import part_tables, write_report, yardstick_tables
        from covidxray.inference.classifier import load_checkpoint

        from covidxray.paths.outputs import check_output, manifest_guard

        table = read_table(split)
        roots, inputs = manifest_guard(table, split)
        check_output(out, roots, [*inputs, checkpoint], "report")  # before anything is written
        classifier = load_checkpoint(checkpoint)
        parts = part or ["test"]
        record = classifier.record or {}
        table_sha = sha256_file(split)
        fingerprint = split_fingerprint(split)  # what a model card quotes: independent of where the data sit
        results = []
        for name in parts:
            rows = select_part(table, name, str(split))
            result = evaluate_part(classifier, rows, name, resamples, seed, run_audits=audits)
            if name == record.get("val_part", "val"):
                result.notes.append("This is the part the threshold and temperature were fitted on: figures are optimistic.")
            if same_split(record, fingerprint, table_sha) and name == record.get("train_part", "train"):
                result.notes.append("The model was trained on these images: figures say nothing about new images.")
            results.append(result)
            headline, sources = part_tables(result)
            within, targets = yardstick_tables(result)
            print_frame(within, f"{name}: within-hospital yardstick (decides)", index=False)
            if len(targets):
                print_frame(targets, f"{name}: shortcut figures against their targets", index=False)
            print_frame(headline, f"{name}: {result.n_images} images, {result.n_patients} patients (mixed sources)", index=False)
            print_frame(sources, f"{name}: per source", index=False)
        header = {
            "model": {"architecture": classifier.architecture, "task": classifier.task, "labels": list(classifier.labels),
                      "threshold": classifier.threshold, "temperature": classifier.temperature,
                      "bias": classifier.bias, "preprocessing": classifier.preprocessing.to_dict(),
                      "training_record": record},
            "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
            "table": str(split), "table_sha256": table_sha, "table_fingerprint": fingerprint,
            "resamples": resamples, "seed": seed,
        }
        curves = Path(checkpoint).with_name("curves.png")
        written = write_report(out, header, results, curves.read_bytes() if curves.is_file() else None)
        console.print(f"wrote {written['html']}, {written['summary']}, {written['metrics']}")

    @app.command("model-card")
    def model_card_command(
        internal: Path = typer.Option(..., "--internal", help="Report folder of the shipped model on the internal test part."),
        external: Optional[Path] = typer.Option(None, "--external", help="Report folder of the same recipe on a held-out source."),
        baseline: Optional[list[Path]] = typer.Option(None, "--baseline", help="Report folders of baselines (seed-cnn), repeatable."),
        script: Optional[Path] = typer.Option(None, "--script", help="The script that reproduces the model; its commands go into the card."),
        how: Optional[list[str]] = typer.Option(None, "--how", help="How the script was run, when not plainly (steps before it, its settings); repeatable."),
        out: Path = typer.Option(Path("MODEL_CARD.md"), "--out", "-o", help="Model card to write (Markdown)."),
        readme: Optional[Path] = typer.Option(None, "--readme", help="Also copy the card's yardstick into this README's marked block."),
    ) -> None:
        """Write a model card whose every figure comes from the reports' metrics.json."""
        from covidxray.console import console
        from covidxray.evaluation.model_card import read_readme, with_yardstick, write_model_card
        from covidxray.paths.outputs import check_outputs

        reports_given = [internal / "metrics.json", *([external / "metrics.json"] if external else []),
                         *[b / "metrics.json" for b in baseline or []], *([script] if script else [])]
        check_outputs([(out, "model card")], (), reports_given + ([readme] if readme else []))
        if readme:
            check_outputs([(readme, "README")], (), reports_given + [out])
            try:
                readme_text = read_readme(readme)  # before the card is written: a bad README changes nothing
            except ValueError as error:
                raise CovidxrayError(str(error)) from None

        commands = list(how) if how else [f"bash {script}"] if script else []
        if script and script.is_file():
            commands += ["# which runs:"] + [line for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
        written = write_model_card(out, internal, external, commands, baseline or [])
        console.print(f"wrote {written}")
        if readme:
            readme.write_text(with_yardstick(readme_text, written.read_text(encoding="utf-8")), encoding="utf-8")
            console.print(f"copied its yardstick into {readme}")

    @app.command("compare")
    def compare_command(
        reports: list[Path] = typer.Argument(..., help="Report folders written by `covidxray evaluate`."),
        out: Path = typer.Option(Path("comparison.md"), "--out", "-o", help="Markdown table to write."),
    ) -> None:
        """Side by side: within-hospital AUROCs, then mixed-source AUROC, sensitivity, specificity (with CIs), per part."""
        import pandas as pd
        from covidxray.console import console, print_frame
        from covidxray.paths.outputs import check_output

        check_output(out, (), [folder / name for folder in reports for name in ("metrics.json", "report.html", "summary.md")],
                     "comparison")
        rows = []
        for folder in reports:
            path = folder / "metrics.json"
            if not path.is_file():
                raise CovidxrayError(f"{path}: not found; run `covidxray evaluate` first")
            document = json.loads(path.read_text())
            for name, part in document["parts"].items():
                metrics = part["metrics"]
                row = {"report": folder.name, "model": document["model"]["architecture"], "part": name, "n": part["n_images"]}
                for key, entry in (part.get("within_hospital") or {}).items():  # the yardstick leads
                    if entry.get("applicable"):
                        m = entry["auroc"]
                        row[f"within: {key}"] = f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] (n={m['n']})"
                for key in ("roc_auc", "macro/roc_auc", "sensitivity", "specificity", "accuracy"):
                    if key in metrics and metrics[key]["value"] is not None:
                        m = metrics[key]
                        row[key] = f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
                row["ECE"] = f"{part['calibration']['ece']:.3f}"
                rows.append(row)
        frame = pd.DataFrame(rows).fillna("")
        print_frame(frame, "comparison (95% CIs from patient bootstrap)", index=False)
        from covidxray.evaluation.report import _markdown

        out.write_text("# Comparison\n\n" + _markdown(frame) + "\n")
        console.print(f"wrote {out}")

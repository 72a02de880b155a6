"""Evaluate a checkpoint on parts of a split, from Python or `covidxray evaluate`: the figures and the report.

evaluate() reads the table and the checkpoint, measures each part (covidxray.evaluation.parts) and,
given out, writes report.html, summary.md, metrics.json and predictions-<part>.csv; the CLI only prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from covidxray.evaluation.parts import PartResult

__all__ = ["Evaluation", "evaluate"]


@dataclass
class Evaluation:
    """What evaluate measured: one PartResult per part, in the order asked; the header of the report
    (the model's settings and training record, the checkpoint's and table's hashes, the bootstrap);
    and the files written (html, summary, metrics, predictions-<part>), empty when out was None."""

    parts: dict[str, PartResult]
    header: dict
    files: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The figures as metrics.json holds them: the header and every part's numbers."""
        from covidxray.evaluation.report import metrics_document

        return metrics_document(self.header, list(self.parts.values()))


def evaluate(checkpoint: str | Path, split: str | Path, part: str | Sequence[str] = "test", out: str | Path | None = None,
             audits: bool = True, resamples: int = 1000, seed: int = 0) -> Evaluation:
    """Metrics with patient-bootstrap 95% CIs, per source, calibration and shortcut audits of a checkpoint.

    The threshold and calibration are the checkpoint's (fitted on validation), never refitted on
    the part evaluated; the same checkpoint, table and seed give the same numbers.

    Args:
        checkpoint: a checkpoint (.pt) written by `covidxray train`.
        split: split.csv from `covidxray data split`, or any labelled manifest (with part "all").
        part: the part or parts to evaluate: test, val, external, all.
        out: folder for report.html, summary.md, metrics.json, predictions-<part>.csv; None writes
            nothing. Checked before any work: never inside a dataset, never over an input.
        audits: run the shortcut audits and the Grad-CAM montage (the slow part).
        resamples: patient-bootstrap resamples for the CIs.
        seed: seed of the bootstrap.

    Returns:
        Evaluation: the figures per part, the report's header, and the paths written.
    """
    from covidxray.data.fingerprint import same_split, split_fingerprint
    from covidxray.data.schema import read_table
    from covidxray.evaluation.parts import evaluate_part, select_part
    from covidxray.evaluation.report import write_report
    from covidxray.hashing import sha256_file
    from covidxray.inference.classifier import load_checkpoint
    from covidxray.paths.outputs import check_output, manifest_guard

    checkpoint, split = Path(checkpoint), Path(split)
    table = read_table(split)
    if out is not None:
        roots, inputs = manifest_guard(table, split)
        check_output(out, roots, [*inputs, checkpoint], "report")  # before anything is written
    classifier = load_checkpoint(checkpoint)
    names = [part] if isinstance(part, str) else list(part) or ["test"]
    record = classifier.record or {}
    table_sha = sha256_file(split)
    fingerprint = split_fingerprint(split)  # what a model card quotes: independent of where the data sit
    results: dict[str, PartResult] = {}
    for name in names:
        rows = select_part(table, name, str(split))
        result = evaluate_part(classifier, rows, name, resamples, seed, run_audits=audits)
        if name == record.get("val_part", "val"):
            result.notes.append("This is the part the threshold and temperature were fitted on: figures are optimistic.")
        if same_split(record, fingerprint, table_sha) and name == record.get("train_part", "train"):
            result.notes.append("The model was trained on these images: figures say nothing about new images.")
        results[name] = result
    header = {
        "model": {**classifier.info.settings(), "training_record": record},
        "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
        "table": str(split), "table_sha256": table_sha, "table_fingerprint": fingerprint,
        "resamples": resamples, "seed": seed,
    }
    files: dict[str, Path] = {}
    if out is not None:
        out = Path(out)
        curves = checkpoint.with_name("curves.png")
        files = write_report(out, header, list(results.values()), curves.read_bytes() if curves.is_file() else None)
        files.update({f"predictions-{name}": out / f"predictions-{name}.csv" for name in results})
    return Evaluation(results, header, files)

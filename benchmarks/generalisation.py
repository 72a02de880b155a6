"""Benchmark: does a model see the disease or the hospital? The yardstick, side by side with seed-cnn.

Usage: python benchmarks/generalisation.py --split prepared/split.csv --loso-split prepared/split-loso.csv
       [--model CKPT] [--loso-model CKPT] [--seed-cnn CKPT --seed-cnn-loso CKPT] [--extra NAME=CKPT ...]

`prepared/` comes from `covidxray data prepare ../shared/data --out prepared --holdout siim-covid19-detection`.
Rows, each with n and a patient/study-bootstrap 95% CI where it is an AUROC:
- within-hospital: SIIM Typical vs Negative on the test part; the COVID-19 collection's covid vs other pneumonia;
- leave-SIIM-out: a model trained with SIIM held out entirely, on all of SIIM (a model whose training
  record holds no SIIM image, like the first defaults, is its own leave-SIIM-out model);
- mixed-source internal test AUROC (reported, never chosen on);
- shortcut figures on the test part: lungs-only AUROC drop, lungs-hidden AUROC, source-probe balanced
  accuracy above chance, Grad-CAM mass inside the lungs.
The baseline is the seed study's CNN (`seed-cnn`), trained here for a few epochs when no checkpoint
is given; the ratio column is (model AUROC - 0.5) / (seed-cnn AUROC - 0.5), the gain over chance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SIIM = "siim-covid19-detection"


def trained_seed_cnn(split: Path, out: Path, epochs: int) -> Path:
    """The seed study's CNN on this split, trained once and reused (it is the baseline row)."""
    from covidxray.training.loop import TrainConfig, train

    if (out / "best.pt").is_file():
        return out / "best.pt"
    print(f"training seed-cnn on {split} for {epochs} epochs into {out} (baseline; reused next time)", flush=True)
    return train(TrainConfig(model="seed-cnn", task="binary", split=split, out=out, epochs=epochs, workers=2)).best_path


def trained_on(checkpoint: Path, split: pd.DataFrame) -> bool:
    """Whether the checkpoint's training images per source and label are those of this split's
    train part (so its test part is unseen); a subset of sources, as the SIIM-only twin, counts."""
    from covidxray.inference.classifier import load_checkpoint

    recorded = ((load_checkpoint(checkpoint).record or {}).get("counts") or {}).get("train") or {}
    rows = split[(split["split"] == "train") & (split["label"] != "")]
    here = rows.groupby(["source", "label"]).size()
    return bool(recorded) and all(here.get(tuple(key.split("|", 1)), 0) == count for key, count in recorded.items())


def saw_siim(classifier) -> bool:
    counts = ((classifier.record or {}).get("counts") or {}).get("train") or {}
    return any(key.startswith(f"{SIIM}|") for key in counts)


def unseen_siim(split: pd.DataFrame) -> pd.DataFrame:
    """SIIM images with no copy in another collection: a model trained before SIIM was added may
    have seen the copies (the radiography database took images from BIMCV)."""
    shared = set(split.loc[(split["source"] != SIIM) & (split["dup_cluster"] != ""), "dup_cluster"])
    return split[(split["source"] == SIIM) & ~split["dup_cluster"].isin(shared)]


def measure(checkpoint: Path, split: pd.DataFrame, loso_split: pd.DataFrame | None, loso_checkpoint: Path | None,
            resamples: int, audits: bool) -> dict:
    """The yardstick's figures for one model (and its leave-SIIM-out twin)."""
    from covidxray.evaluation.parts import evaluate_part, select_part
    from covidxray.inference.classifier import load_checkpoint

    classifier = load_checkpoint(checkpoint)
    test = evaluate_part(classifier, select_part(split, "test", "split"), "test", resamples, 0, run_audits=audits,
                         montage_per_class=0)
    figures = {key: entry.get("auroc") for key, entry in test.within_hospital.items()}
    figures["internal test AUROC (mixed sources)"] = test.overall["roc_auc"].as_dict()
    held_out = None
    if loso_checkpoint is not None and loso_split is not None:
        held_out = evaluate_part(load_checkpoint(loso_checkpoint), select_part(loso_split, "external", "loso split"),
                                 "external", resamples, 0, run_audits=False)
    elif not saw_siim(classifier):
        held_out = evaluate_part(classifier, select_part(unseen_siim(split), "all", "split"), "all",
                                 resamples, 0, run_audits=False)
    figures["leave-SIIM-out AUROC"] = held_out.within_hospital["siim_typical_vs_negative"].get("auroc") if held_out else None
    for name, check in (test.audits.get("targets") or {}).items():
        figures[f"{name} (target {check['target']})"] = check if check["value"] is not None else None
    return figures


#: AUROCs where higher is better: the rows that get a gain-over-chance ratio against seed-cnn.
RATIO_ROWS = ("siim_typical_vs_negative", "cohen_covid_vs_pneumonia", "internal test AUROC (mixed sources)",
              "leave-SIIM-out AUROC")

ROW_NAMES = {
    "siim_typical_vs_negative": "SIIM within-hospital AUROC (typical vs negative)",
    "cohen_covid_vs_pneumonia": "COVID-19 collection AUROC (covid vs other pneumonia)",
}


def cell(value) -> str:
    if value is None:
        return "n/a"
    from covidxray.evaluation.report import check_cell

    return check_cell(value)


def gain_ratio(model, baseline) -> str:
    if not (isinstance(model, dict) and isinstance(baseline, dict)) or None in (model.get("value"), baseline.get("value")):
        return ""
    excess = baseline["value"] - 0.5
    return f"{(model['value'] - 0.5) / excess:.2f}x" if abs(excess) > 1e-3 else ""


def build_parser() -> argparse.ArgumentParser:
    """The command line, every option with its help."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Run `make prepare` first: it writes prepared/split.csv and prepared/split-loso.csv.")
    parser.add_argument("--split", type=Path, default=ROOT / "prepared" / "split.csv",
                        help="Split whose test part is measured (default: prepared/split.csv, from `make prepare`).")
    parser.add_argument("--loso-split", type=Path, default=ROOT / "prepared" / "split-loso.csv",
                        help="Split holding SIIM out as `external`, for the leave-SIIM-out row (default: "
                             "prepared/split-loso.csv, from `make prepare`; the row is skipped when it is missing).")
    parser.add_argument("--model", type=Path, default=ROOT / "covidxray" / "weights" / "covidxray-default.pt",
                        help="Checkpoint measured (default: the bundled model).")
    parser.add_argument("--loso-model", type=Path, help="The same recipe trained on --loso-split (SIIM held out).")
    parser.add_argument("--seed-cnn", type=Path, help="seed-cnn trained on --split (default: trained now).")
    parser.add_argument("--seed-cnn-loso", type=Path, help="seed-cnn trained on --loso-split (default: trained now).")
    parser.add_argument("--seed-epochs", type=int, default=4,
                        help="Epochs of the seed-cnn baseline when it is trained now (default: 4; reused next time from runs/).")
    parser.add_argument("--extra", action="append", default=[], help="NAME=CKPT[,LOSO_CKPT]: another model's column.")
    parser.add_argument("--resamples", type=int, default=500,
                        help="Patient (SIIM: study) bootstrap resamples for each 95%% CI (default: 500).")
    parser.add_argument("--no-audits", action="store_true", help="Skip the shortcut figures (faster).")
    parser.add_argument("--out", type=Path, help="Also write the table as Markdown here.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from covidxray.data.schema import read_table
    from covidxray.errors import CovidxrayError

    if not args.split.is_file():
        raise CovidxrayError(f"{args.split}: split not found; run `make prepare` first (it writes prepared/split.csv and "
                             "prepared/split-loso.csv), or name one with --split")
    for checkpoint in (args.model, args.loso_model, args.seed_cnn, args.seed_cnn_loso):
        if checkpoint is not None and not checkpoint.is_file():
            raise CovidxrayError(f"{checkpoint}: checkpoint not found")
    started = time.perf_counter()
    split = read_table(args.split)
    if args.out:  # checked before hours of work, and never into a dataset or over an input
        from covidxray.paths.outputs import check_output, manifest_guard

        roots, inputs = manifest_guard(split, args.split)
        check_output(args.out, roots, [*inputs, args.model], "yardstick table")
    loso = read_table(args.loso_split) if args.loso_split.is_file() else None
    seed = args.seed_cnn or trained_seed_cnn(args.split, ROOT / "runs" / "bench-seed-cnn", args.seed_epochs)
    seed_loso = args.seed_cnn_loso or (trained_seed_cnn(args.loso_split, ROOT / "runs" / "bench-seed-cnn-loso", args.seed_epochs)
                                       if loso is not None else None)
    columns = {"bundled" if args.model.name == "covidxray-default.pt" else args.model.stem: (args.model, args.loso_model)}
    for extra in args.extra:
        name, _, paths = extra.partition("=")
        first, _, second = paths.partition(",")
        columns[name] = (Path(first), Path(second) if second else None)
    columns["seed-cnn"] = (seed, seed_loso)
    results = {name: measure(model, split, loso, loso_model, args.resamples, not args.no_audits)
               for name, (model, loso_model) in columns.items()}
    rows = []
    for key in results["seed-cnn"]:
        row = {"figure": ROW_NAMES.get(key, key)}
        for name, figures in results.items():
            row[name] = cell(figures.get(key))
        for name, figures in results.items():
            if key in RATIO_ROWS and name != "seed-cnn" and gain_ratio(figures.get(key), results["seed-cnn"].get(key)):
                row[f"{name} / seed-cnn (gain over 0.5)"] = gain_ratio(figures.get(key), results["seed-cnn"].get(key))
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    with pd.option_context("display.max_colwidth", None, "display.width", 250):
        print(table.to_string(index=False))
    print(f"\n{time.perf_counter() - started:.0f} s; split {args.split} (test part), SIIM held out in {args.loso_split}")
    notes = [f"{name} was trained on another split of these collections: its figures outside SIIM may include its own "
             "training images (optimistic); its SIIM figures are clean (it saw no SIIM image, copies left out)"
             for name, (model, _) in columns.items() if not trained_on(model, split)]
    for note in notes:
        print(f"note: {note}")
    if args.out:
        from covidxray.evaluation.report import markdown_table

        args.out.write_text("# Generalisation yardstick\n\n`python benchmarks/generalisation.py` (see its docstring);"
                            " 95% CIs from patient (SIIM: study) bootstraps.\n\n" + markdown_table(table) + "\n"
                            + "".join(f"\nNote: {note}\n" for note in notes))
    return 0


if __name__ == "__main__":
    from covidxray.errors import CovidxrayError

    try:
        sys.exit(main())
    except CovidxrayError as exc:  # a bad path or table: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

"""Benchmark: end-to-end predict throughput (file -> probability) against a reference pipeline.

Usage: python benchmarks/predict_throughput.py --split prepared/split.csv [--images 500]
       [--model CHECKPOINT] [--reference-checkpoint DENSENET_CHECKPOINT] [--report FILE.md]
       python benchmarks/predict_throughput.py --startup-only

Start-up first: the wall time of `python -m covidxray predict ONE_IMAGE` as a user runs it (a fresh
process: imports, model load, one answer), the minimum of 3 runs, for a sample the bundled model
reads as normal and one it reads as covid (severity and lungs too), against the 3 s target.

Both run in this process on the same files: covidxray's predictor (bundled model unless
--model), and the reference pipeline of the widely used public chest X-ray models: PIL decode ->
greyscale -> 224x224 -> MONAI DenseNet-121, batch 16. Prints images/s of each, the ratio, the
start-up time of the predictor, and AUROC (covid vs rest) on the images outside the training
part; the reference's AUROC is measured only when a trained DenseNet-121 checkpoint is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from printed_figures import PrintedFigures


def reference_pipeline(paths: list[str], network: torch.nn.Module, batch_size: int = 16) -> np.ndarray:
    """decode -> greyscale -> 224x224 -> DenseNet-121, as a plain loop; returns raw outputs."""
    outputs = []
    network.eval()
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start:start + batch_size]:
                with Image.open(path) as image:
                    grey = image.convert("L").resize((224, 224), Image.Resampling.BILINEAR)
                batch.append(np.asarray(grey, np.float32) / 255.0)
            tensor = torch.from_numpy(np.stack(batch))[:, None]
            outputs.append(network(tensor).numpy().reshape(len(batch), -1))
    return np.concatenate(outputs)


def auroc(is_covid: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    keep = ~np.isnan(score)
    return float(roc_auc_score(is_covid[keep], score[keep])) if len(set(is_covid[keep])) == 2 else float("nan")


def paired_auroc_difference(is_covid: np.ndarray, ours: np.ndarray, reference: np.ndarray, groups: np.ndarray,
                            resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUROC(ours) - AUROC(reference) on the same images, with a 95% CI from resampling patients.

    Pairing matters: both models read the same images, so most of the noise is shared and the
    interval of the difference is much narrower than the two AUROCs' own intervals suggest.
    """
    from sklearn.metrics import roc_auc_score

    from covidxray.evaluation.metrics import patient_resamples

    differences = [roc_auc_score(is_covid[rows], ours[rows]) - roc_auc_score(is_covid[rows], reference[rows])
                   for rows in patient_resamples(groups, resamples, seed) if len(set(is_covid[rows])) == 2]
    low, high = np.percentile(differences, [2.5, 97.5])
    return auroc(is_covid, ours) - auroc(is_covid, reference), float(low), float(high)


#: Start-up target for `covidxray predict one.png` (issue #5), wall seconds.
STARTUP_TARGET_S = 3.0
SAMPLES = Path(__file__).resolve().parents[1] / "covidxray" / "samples"
STARTUP_SAMPLES = ("normal-nih-00001280_004.png", "covid-cc-by-12941_2020_358_Fig1.jpg")


def cli_startup_seconds(image: Path, model: Path | None = None, runs: int = 3) -> float:
    """Minimum over runs of the wall time of a fresh `python -m covidxray predict image` process."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))}
    command = [sys.executable, "-m", "covidxray", "predict", str(image)] + (["--model", str(model)] if model else [])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return min(times)


def report_startup(model: Path | None, runs: int = 3, say=print) -> bool:
    """Print the CLI start-up time per sample against the target; True when all are under it."""
    say(f"CLI start-up, `python -m covidxray predict ONE_IMAGE`, minimum of {runs} runs (target < {STARTUP_TARGET_S:.0f} s):")
    met = True
    for name in STARTUP_SAMPLES:
        seconds = cli_startup_seconds(SAMPLES / name, model, runs)
        met &= seconds < STARTUP_TARGET_S
        say(f"  {name}: {seconds:.2f} s  {'ok' if seconds < STARTUP_TARGET_S else 'OVER TARGET'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("prepared/split.csv"))
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--reference-checkpoint", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-only", action="store_true", help="Only measure the CLI start-up time.")
    parser.add_argument("--report", type=Path, help="also write the printed figures to this Markdown file")
    args = parser.parse_args()
    figures = PrintedFigures()
    say = figures.say
    startup_met = report_startup(args.model, say=say)
    if args.startup_only:
        figures.write(args.report, "CLI start-up of covidxray predict")
        raise SystemExit(0 if startup_met else 1)
    if not args.split.is_file():
        raise SystemExit(f"{args.split}: not found; run `covidxray data prepare ../shared/data --out prepared --holdout covid19-radiography-database`")
    table = pd.read_csv(args.split, dtype=str, keep_default_na=False)
    pool = table[(table["label"] != "") & table["split"].isin(["test", "external"])]
    rows = pool.sample(n=min(args.images, len(pool)), random_state=args.seed)
    paths, is_covid = rows["path"].tolist(), (rows["label"] == "covid").to_numpy()

    started = time.perf_counter()
    from covidxray.inference.predictor import Predictor

    predictor = Predictor(args.model)
    predictor.probabilities([np.zeros((64, 64), np.float32) + 0.5])  # warm-up
    startup = time.perf_counter() - started
    started = time.perf_counter()
    if predictor.severity is not None:
        predictor.lungs()  # the segmenter's first load (MONAI when its ONNX export is missing): measured apart
    lungs_load = time.perf_counter() - started
    started = time.perf_counter()
    results = [r for r, _ in predictor.screen_paths(paths, batch_size=16)]
    ours_seconds = time.perf_counter() - started
    p_covid = np.array([np.nan if r.p_covid is None else r.p_covid for r in results])

    from monai.networks.nets import DenseNet121

    torch.manual_seed(args.seed)
    network = DenseNet121(spatial_dims=2, in_channels=1, out_channels=1)
    reference_pipeline(paths[:16], network)  # warm-up
    started = time.perf_counter()
    reference_pipeline(paths, network)
    reference_seconds = time.perf_counter() - started
    reference_auroc = float("nan")
    if args.reference_checkpoint:
        reference = Predictor(args.reference_checkpoint, use_gate=False, backend="torch")
        reference_scores = np.array([np.nan if r.p_covid is None else r.p_covid for r, _ in reference.screen_paths(paths)])
        reference_auroc = auroc(is_covid, reference_scores)

    n = len(paths)
    say(f"\npredict throughput on {n} images ({int(is_covid.sum())} covid) from {args.split} (test + external parts), "
          f"{torch.get_num_threads()} torch threads")
    say(f"  covidxray {predictor.name} ({predictor.backend}): {n / ours_seconds:7.1f} images/s   "
          f"AUROC {auroc(is_covid, p_covid):.3f}   gate-flagged {int(np.isnan(p_covid).sum())}")
    say(f"  start-up in this process: classifier and gate {startup:.2f} s, lung segmenter for severity "
          f"{lungs_load:.2f} s more on the first image read as covid or pneumonia")
    say(f"  reference DenseNet-121 224px batch 16: {n / reference_seconds:7.1f} images/s   AUROC "
          + (f"{reference_auroc:.3f}" if not np.isnan(reference_auroc) else "n/a (untrained; pass --reference-checkpoint)"))
    say(f"  ratio covidxray / reference: {reference_seconds / ours_seconds:.2f}x (target >= 2x)")
    if args.reference_checkpoint:
        both = ~np.isnan(p_covid) & ~np.isnan(reference_scores)  # the images the gate let through
        from covidxray.evaluation.parts import patient_keys

        difference, low, high = paired_auroc_difference(is_covid[both], p_covid[both], reference_scores[both],
                                                        patient_keys(rows)[both], seed=args.seed)
        say(f"  on the {int(both.sum())} images both scored: AUROC covidxray {auroc(is_covid[both], p_covid[both]):.3f}, "
              f"reference {auroc(is_covid[both], reference_scores[both]):.3f}; difference {difference:+.3f} "
              f"[{low:+.3f}, {high:+.3f}] (95% CI, 1000 patient resamples, paired)")
    figures.write(args.report, "Predict throughput against the reference pipeline")


if __name__ == "__main__":
    main()

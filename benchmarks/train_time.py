"""Benchmark: wall time of training the bundled model's recipe from scratch on this machine's CPU.

Usage: python benchmarks/train_time.py --split prepared/split.csv [--model CKPT] [--epochs N] [--seed-epochs 1]
       [--report docs/reports/train-time.md]
(--epochs fewer than recorded: the rest is extrapolated from the mean epoch, which includes the cache build, so high)

Reads the recipe from the checkpoint's training record (`covidxray.training.recipes.recipe_of_checkpoint`:
the recorded recipe, or for older checkpoints one rebuilt from their settings), trains it with a fresh image cache
(decoding and lung masks included) and prints the wall time against the one-hour budget; then
times seed-cnn, the baseline, for --seed-epochs on the same split and prints the time per epoch of
each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from printed_figures import PrintedFigures

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 3600


def timed_training(config) -> tuple[float, int]:
    from covidxray.training.loop import train

    started = time.perf_counter()
    result = train(config)
    return time.perf_counter() - started, len(result.history)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "prepared" / "split.csv")
    parser.add_argument("--model", type=Path, default=ROOT / "covidxray" / "weights" / "covidxray-default.pt")
    parser.add_argument("--epochs", type=int, help="Default: the recorded recipe's.")
    parser.add_argument("--seed-epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, help="also write the printed figures to this Markdown file")
    args = parser.parse_args(argv)
    figures = PrintedFigures()

    from covidxray.inference.checkpoint import read_checkpoint
    from covidxray.training.loop import TrainConfig
    from covidxray.training.recipes import recipe, recipe_of_checkpoint

    content = read_checkpoint(args.model)
    record, recorded_recipe = content.get("record") or {}, recipe_of_checkpoint(content)
    epochs = args.epochs or recorded_recipe.epochs
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        timed = TrainConfig(args.split, scratch / "default", recorded_recipe.updated({"epochs": epochs, "patience": epochs}),
                            workers=args.workers, cache_dir=scratch / "cache", seed=int(record.get("seed", 0)))
        print(f"training recipe `{recorded_recipe.name}` as recorded in {args.model.name}: {epochs} epochs, fresh cache",
              flush=True)
        seconds, ran = timed_training(timed)
        baseline = TrainConfig(args.split, scratch / "seed", recipe("seed-cnn").updated(
                                   {"task": recorded_recipe.task, "epochs": args.seed_epochs, "patience": args.seed_epochs}),
                               workers=args.workers, cache_dir=scratch / "cache")
        print(f"training seed-cnn for {args.seed_epochs} epoch(s), the baseline", flush=True)
        seed_seconds, seed_ran = timed_training(baseline)
    per_epoch, seed_per_epoch = seconds / ran, seed_seconds / seed_ran
    recorded = recorded_recipe.epochs
    whole = seconds if ran >= recorded else seconds + (recorded - ran) * per_epoch  # the first epoch carries the cache
    figures.say(f"{recorded_recipe.architecture} as recorded in {args.model.name}: {recorded_recipe.size} px, lung crop "
                f"{recorded_recipe.lung_crop}, augmentation {recorded_recipe.augmentation}, "
                f"batch {recorded_recipe.batch_size}, "
                f"{os.cpu_count()} CPU cores, {args.workers} loader workers")
    figures.say(f"default recipe: {seconds / 60:.1f} min for {ran} epochs, cache included ({per_epoch:.0f} s/epoch)"
          + (f"; all {recorded} recorded epochs: about {whole / 60:.1f} min" if ran < recorded else "")
          + f"; budget {BUDGET_S / 60:.0f} min: {'within' if whole <= BUDGET_S else 'OVER'}")
    figures.say(f"seed-cnn: {seed_per_epoch:.0f} s/epoch (cache included); default / seed-cnn per epoch: {per_epoch / seed_per_epoch:.2f}x")
    figures.write(args.report, "CPU training time of the bundled model's recipe")
    return 0


if __name__ == "__main__":
    sys.exit(main())

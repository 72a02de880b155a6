"""Benchmark: predict throughput and start-up, this tree against an earlier revision, in one run.

Usage: python benchmarks/predict_before_after.py [--before 05ffcd5] [--split prepared/split.csv] [--images 300]

The earlier revision (default: the commit before inference moved into covidxray.inference) is
checked out into a temporary git worktree; both trees then run, each in fresh processes with the
same interpreter and the same bundled model:
  - start-up: wall time of `python -m covidxray predict ONE_IMAGE`, the minimum of 3 x ROUNDS runs;
  - the same for one DICOM with `--heatmaps DIR` (heat maps drawn and written);
  - throughput: images/s of the predictor over the same files, after one warm-up image, the best of
    ROUNDS rounds that alternate the two trees.
Files come from the split's test part (or the bundled samples, repeated). Prints both and the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from printed_figures import PrintedFigures

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "covidxray" / "samples" / "covid-cc-by-12941_2020_358_Fig1.jpg"
DICOM_SAMPLE = REPO / "covidxray" / "samples" / "normal-nih-00001280_004.dcm"
#: Throughput rounds per tree, alternated; the best of each counts.
ROUNDS = 3
#: Run inside each tree: import the predictor from wherever that tree keeps it, time it.
THROUGHPUT = """
import sys, time
try:
    from covidxray.inference.predictor import Predictor
except ImportError:
    from covidxray.predict import Predictor
paths = open(sys.argv[1]).read().split("\\n")
predictor = Predictor()
list(predictor.screen_paths(paths[:1]))
started = time.perf_counter()
count = sum(1 for _ in predictor.screen_paths(paths))
print(count / (time.perf_counter() - started))
"""


def images(split: Path | None, count: int) -> list[str]:
    if split is not None:
        import pandas as pd

        table = pd.read_csv(split, dtype=str, keep_default_na=False)
        paths = table.loc[table["split"] == "test", "path"].tolist()
        return paths[:count]
    samples = sorted(str(p) for p in SAMPLE.parent.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    return [samples[i % len(samples)] for i in range(count)]


def in_tree(tree: Path, command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, check=True)


def start_up(tree: Path, cwd: Path, *extra: str, image: Path = SAMPLE) -> float:
    """The fastest of 3 fresh `python -m covidxray predict IMAGE [extra]` runs, in seconds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        in_tree(tree, [sys.executable, "-m", "covidxray", "predict", str(image), *extra], cwd)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="05ffcd5", help="git revision to compare against")
    parser.add_argument("--split", type=Path, help="split CSV whose test part gives the files")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--report", type=Path, help="also write the printed figures to this Markdown file")
    args = parser.parse_args()
    figures = PrintedFigures()
    say = figures.say

    paths = images(args.split, args.images)
    with tempfile.TemporaryDirectory(prefix="covidxray-before-") as work:
        work = Path(work)
        before = work / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(before), args.before], check=True)
        try:
            listing = work / "paths.txt"
            listing.write_text("\n".join(str(Path(p).resolve()) for p in paths))
            results = {}
            speeds = {"before": 0.0, "after": 0.0}
            for _ in range(ROUNDS):  # alternated, the best of each: one slow round (a busy disk or core) decides nothing
                for name, tree in (("before", before), ("after", REPO)):
                    run = in_tree(tree, [sys.executable, "-c", THROUGHPUT, str(listing)], work)
                    speeds[name] = max(speeds[name], float(run.stdout.split()[-1]))
            starts = {"before": float("inf"), "after": float("inf")}
            maps = dict(starts)
            for _ in range(ROUNDS):  # start-up is noisier still: alternated too, the fastest of each counts
                for name, tree in (("before", before), ("after", REPO)):
                    starts[name] = min(starts[name], start_up(tree, work))
                    maps[name] = min(maps[name], start_up(tree, work, "--heatmaps", str(work / f"maps-{name}"),
                                                          image=DICOM_SAMPLE))
            for name, tree in (("before", before), ("after", REPO)):  # the same order every run
                speed = speeds[name]
                results[name] = (speed, starts[name], maps[name])
                say(f"  {name:<6} ({args.before if name == 'before' else 'this tree'}): {speed:6.1f} images/s, "
                      f"start-up {results[name][1]:.2f} s, one DICOM with --heatmaps {results[name][2]:.2f} s")
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
    (speed_b, start_b, maps_b), (speed_a, start_a, maps_a) = results["before"], results["after"]
    say(f"{len(paths)} images; throughput after / before: {speed_a / speed_b:.2f}x (>= 1 is not worse); "
          f"start-up after / before: {start_a / start_b:.2f}x (<= 1 is not worse); "
          f"one DICOM with heat maps after / before: {maps_a / maps_b:.2f}x")

    figures.write(args.report, "Predict throughput and start-up, before and after")


if __name__ == "__main__":
    main()

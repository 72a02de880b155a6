"""Benchmark: peak memory of `covidxray predict` as the number of inputs grows (it must stay flat).

Usage: python benchmarks/predict_memory.py [--counts 2000 20000] [--data ../shared/data/covid-chestxray-dataset/images]

Builds, in a temporary folder (never inside a dataset), N symbolic links to a few real radiographs
(the bundled samples unless --data names a folder of images), lists them in a file, and runs
`python -m covidxray predict --files-from LIST --output results.csv` as a user would, once per N.
Prints each run's peak resident memory (from the kernel, for that process alone), its images/s,
and the ratio of the largest run's peak to the smallest's: flat is 1.0x.
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

SAMPLES = Path(__file__).resolve().parents[1] / "covidxray" / "samples"
SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm"}


def sources(folder: Path | None, count: int = 12) -> list[Path]:
    """A few readable radiographs to link to, in a fixed order."""
    folder = folder or SAMPLES
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)[:count]
    if not found:
        sys.exit(f"{folder}: no PNG, JPEG or DICOM files")
    return found


def peak_rss_run(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, seconds, exit status) of command, measured by wait4 for that child alone."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 20000], help="numbers of inputs to screen")
    parser.add_argument("--data", type=Path, help="folder of images to link to (default: the bundled samples)")
    parser.add_argument("--report", type=Path, help="also write the printed figures to this Markdown file")
    args = parser.parse_args()
    figures = PrintedFigures()
    say = figures.say

    images = sources(args.data)
    say(f"inputs: links to {len(images)} radiographs from {args.data or 'the bundled samples'}; "
          f"python -m covidxray predict --files-from LIST --output results.csv")
    rows = []
    with tempfile.TemporaryDirectory(prefix="covidxray-memory-") as work:
        work = Path(work)
        for count in sorted(args.counts):
            folder = work / f"n{count}"
            folder.mkdir()
            listed = []
            for number in range(count):
                source = images[number % len(images)]
                link = folder / f"{number:06d}{source.suffix}"
                link.symlink_to(source.resolve())
                listed.append(str(link))
            listing = work / f"n{count}.txt"
            listing.write_text("\n".join(listed) + "\n")
            output = work / f"n{count}.csv"
            peak, seconds, status = peak_rss_run([sys.executable, "-m", "covidxray", "predict", "--files-from",
                                                  str(listing), "--output", str(output)])
            written = sum(1 for _ in open(output)) - 1 if output.exists() else 0
            rows.append((count, peak, seconds, written, status))
            say(f"  {count:>6} inputs: peak RSS {peak:7.1f} MiB, {seconds:6.1f} s ({count / seconds:5.1f} images/s), "
                  f"{written} rows written, exit {status}")
    if len(rows) > 1:
        (small, small_peak, *_), (large, large_peak, *_) = rows[0], rows[-1]
        say(f"peak RSS at {large} inputs / at {small}: {large_peak / small_peak:.2f}x "
              f"(for {large / small:.0f}x the inputs; flat is 1.00x)")

    figures.write(args.report, "Peak memory of covidxray predict")


if __name__ == "__main__":
    main()

"""Benchmark: manifest, verify, dedupe and split of the shared collections, against the 2-minute budget.

Usage: python benchmarks/data_pipeline.py [DATA_DIR]   (default ../shared/data)
Prints the time of each step, the total, and, as the baseline measured in the same run, the
seed study's way of checking images (one process opening each image in turn) as a ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from covidxray.data.dedupe import find_duplicates
from covidxray.data.manifest import build_manifest
from covidxray.data.split import SplitSettings, assign_splits
from covidxray.data.verify import inspect_image, verify_manifest

BUDGET_S = 120.0


def main(data_dir: Path) -> None:
    timings = {}
    start = time.perf_counter()
    manifest = build_manifest([data_dir])
    timings["manifest"] = time.perf_counter() - start

    start = time.perf_counter()
    _, verified = verify_manifest(manifest)
    timings["verify"] = time.perf_counter() - start

    readable = verified[verified["status"] == "ok"].reset_index(drop=True)
    start = time.perf_counter()
    deduped, _ = find_duplicates(readable)
    timings["dedupe"] = time.perf_counter() - start

    start = time.perf_counter()
    assign_splits(deduped, SplitSettings(seed=0))
    assign_splits(deduped, SplitSettings(seed=0), ("covid19-radiography-database",))
    timings["split (internal + leave-one-source-out)"] = time.perf_counter() - start

    start = time.perf_counter()
    for path in manifest["path"]:
        inspect_image(path)
    baseline = time.perf_counter() - start

    total = sum(timings.values())
    print(f"\ndata pipeline on {data_dir} ({len(manifest)} images listed, {len(readable)} readable)")
    for step, seconds in timings.items():
        print(f"  {step:<42s} {seconds:7.1f} s")
    print(f"  {'total':<42s} {total:7.1f} s   (budget {BUDGET_S:.0f} s: {'within' if total <= BUDGET_S else 'OVER'})")
    print(f"  baseline: sequential verify (seed-study style) {baseline:.1f} s; "
          f"parallel verify is {baseline / timings['verify']:.2f}x as fast")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))

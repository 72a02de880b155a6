"""Benchmark: screening on a Dask cluster (local:1, local:2) against Predictor.screen_paths in this process.

Usage: python benchmarks/distributed_screening.py --images 400 [--data ../shared/data]
       [--chunk-size 16] [--batch-size 16]

Builds a temporary folder (under the system's temp folder, removed afterwards) of N symbolic links
to the bundled sample images, or with --data to images found in that dataset folder (only listed
and read, never written to), then screens them (a) in this process with Predictor.screen_paths,
the baseline, (b) on local:1 and (c) on local:2 with covidxray.inference.distributed.
Prints images/s of each, each one's ratio to the baseline and local:2's to local:1, and apart
from them the cluster's start-up (workers started, the model loaded on every worker), which the
images/s leave out, as the baseline's leave out its model load.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from covidxray.imaging.read import IMAGE_SUFFIXES
from covidxray.inference.distributed import _screen_chunk, connect, screen_on_cluster
from covidxray.inference.inputs import expand_inputs
from covidxray.inference.predictor import SAMPLES, Predictor


def build_inputs(folder: Path, count: int, data: Path | None, seed: int = 0) -> list[str]:
    """count symbolic links in folder (copies where links cannot be made), to the samples or to data's images."""
    if data is None:
        sources = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        sources = expand_inputs([str(data)])  # lists the folder; nothing is written there
        random.Random(seed).shuffle(sources)
    if not sources:
        raise SystemExit(f"no images found in {data or SAMPLES}")
    paths = []
    for number in range(count):
        source = Path(sources[number % len(sources)]).resolve()
        link = folder / f"{number:06d}{source.suffix.lower()}"
        try:
            link.symlink_to(source)
        except OSError:
            shutil.copyfile(source, link)
        paths.append(str(link))
    return paths


def _warm_up_worker(path: str, backend: str) -> None:
    """Runs on every worker before timing: one image screened loads the model, gate and lung
    segmenter there (as the baseline's warm-up does here), so images/s leave the loading out."""
    _screen_chunk([path], None, backend, True, True, True, 1)


def on_cluster(paths: list[str], workers: int, backend: str, chunk_size: int, batch_size: int) -> dict:
    start = time.perf_counter()
    client = connect(f"local:{workers}")
    try:
        client.wait_for_workers(workers, timeout=120)
        started = time.perf_counter() - start
        start = time.perf_counter()
        client.run(_warm_up_worker, paths[0], backend)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        results = list(screen_on_cluster(paths, client, backend=backend, chunk_size=chunk_size, batch_size=batch_size))
        seconds = time.perf_counter() - start
    finally:
        client.close()
    return {"seconds": seconds, "startup": started, "load": loaded, "p_covid": [r.p_covid for r in results],
            "errors": sum(r.status == "error" for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="how many inputs to screen (default 400)")
    parser.add_argument("--data", type=Path, help="a dataset folder to take real images from (read only)")
    parser.add_argument("--chunk-size", type=int, default=16, help="paths per cluster task (default 16)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model batch (default 16)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    args = parser.parse_args()
    if args.images < 1:
        parser.error("--images must be at least 1")
    if args.data is not None and not args.data.is_dir():
        parser.error(f"--data {args.data}: not a folder")

    with tempfile.TemporaryDirectory(prefix="covidxray-distributed-bench-") as folder:
        paths = build_inputs(Path(folder), args.images, args.data)
        start = time.perf_counter()
        predictor = Predictor(backend=args.backend)
        list(predictor.screen_paths(paths[:1]))  # loads the gate and the lung segmenter too, as on the workers
        baseline_load = time.perf_counter() - start
        start = time.perf_counter()
        baseline = [result.p_covid for result, _ in predictor.screen_paths(paths, batch_size=args.batch_size)]
        baseline_seconds = time.perf_counter() - start
        runs = {n: on_cluster(paths, n, args.backend, args.chunk_size, args.batch_size) for n in (1, 2)}

    n = len(paths)
    source = args.data or "the bundled samples"
    print(f"screening {n} images (links to {source}), model {predictor.name} ({predictor.backend} backend), "
          f"chunk size {args.chunk_size}, batch size {args.batch_size}, {os.cpu_count()} CPU cores")
    print(f"  {'(a) in this process (screen_paths)':36} {n / baseline_seconds:7.1f} images/s   1.00x baseline   "
          f"(models loaded in {baseline_load:.2f} s, not counted)")
    for label, workers in (("(b)", 1), ("(c)", 2)):
        run = runs[workers]
        agree = all((a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-6)
                    for a, b in zip(run["p_covid"], baseline))
        print(f"  {f'{label} on local:{workers}':36} {n / run['seconds']:7.1f} images/s   "
              f"{baseline_seconds / run['seconds']:.2f}x baseline   "
              f"(answers {'agree' if agree else 'DIFFER'}, {run['errors']} error rows)")
    print(f"  local:2 / local:1: {runs[1]['seconds'] / runs[2]['seconds']:.2f}x")
    for workers, run in runs.items():
        print(f"  start-up of local:{workers}, not counted above: workers up in {run['startup']:.2f} s, "
              f"models loaded on all of them in {run['load']:.2f} s")
    print(f"note: on a {os.cpu_count()}-core machine the 2 workers of local:2 compete with each other (and with this\n"
          "      process, which gathers their results) for the same cores, as do each worker's ONNX Runtime / torch\n"
          "      threads; more workers pay off on machines (or clusters) with cores to spare.")


if __name__ == "__main__":  # the cluster's worker processes are spawned: they import this file without running it
    main()

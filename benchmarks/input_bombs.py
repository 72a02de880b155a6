"""Benchmark: peak memory and time of reading hostile files (decompression bombs), one process each.

Usage: python benchmarks/input_bombs.py
For each file of tests/bomb_factory.py it reads the file as `covidxray predict` does (from its
path) and as the web service does (the whole file as bytes, for files under the 25 MB upload
limit), each in a fresh process, and prints the peak resident memory above the process's
baseline (after imports, with the upload already in memory), the seconds taken and the outcome.
Target (issue #17): no input over ~300 MB above baseline or a few seconds before it is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bomb_factory import BOMBS  # noqa: E402

UPLOAD_LIMIT = 25 * (1 << 20)
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from covidxray.predict import read_bytes_input, read_input
path, route = sys.argv[1], sys.argv[2]
data = open(path, "rb").read() if route == "bytes" else None
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    item = read_input(path) if route == "path" else read_bytes_input(data, path.rsplit("/", 1)[-1])
    outcome = item.error or ("read, %dx%d" % item.image.shape[::-1])
except Exception as exc:
    outcome = "raised %s: %s" % (type(exc).__name__, str(exc)[:120])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"mb": (peak - base) / 1024, "s": seconds, "outcome": outcome}}))
"""


def measure(path: Path, route: str, timeout: float = 120.0) -> dict:
    code = CHILD.format(root=str(ROOT))
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path), route], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mb": float("nan"), "s": timeout, "outcome": f"killed after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"mb": float("nan"), "s": float("nan"), "outcome": f"process died (rc {done.returncode}): {done.stderr.strip()[-160:]}"}
    answer = json.loads(lines[-1])
    if done.stderr.strip():
        answer["outcome"] += " [stderr: " + done.stderr.strip().splitlines()[-1][:80] + "]"
    return answer


def main() -> int:
    print("| file | on disk | route | peak MB above baseline | seconds | outcome |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, make in BOMBS.items():
            path = make(Path(folder))
            disk = path.stat().st_blocks * 512
            for route in ("path", "bytes"):
                if route == "bytes" and path.stat().st_size > UPLOAD_LIMIT:
                    continue
                result = measure(path, route)
                print(f"| {name} | {disk / 1e6:.2f} MB | {route} | {result['mb']:.0f} | {result['s']:.2f} | "
                      f"{result['outcome'].replace('|', '/')} |", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

from bomb_factory import BOMBS, read_in_fresh_process  # noqa: E402

UPLOAD_LIMIT = 25 * (1 << 20)


def measure(path: Path, route: str, timeout: float = 120.0) -> dict:
    try:
        done = read_in_fresh_process(path, route, timeout)
    except subprocess.TimeoutExpired:
        return {"mb": float("nan"), "s": timeout, "outcome": f"killed after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"mb": float("nan"), "s": float("nan"), "outcome": f"process died (rc {done.returncode}): {done.stderr.strip()[-160:]}"}
    answer = json.loads(lines[-1])
    shape = answer.pop("shape")
    answer["outcome"] = answer["outcome"][:160] or f"read, {shape[1]}x{shape[0]}"
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

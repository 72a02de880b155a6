"""Load on `covidxray serve`: 8 concurrent clients post an X-ray for a bounded time on loopback.

Starts the server as a subprocess on 127.0.0.1 (a free port), waits for /api/v1/health, runs the
clients, prints requests/s, p50/p95/p99 latency and the error count, then stops the server. Target:
no errors and p95 under 1 s. Without --model it uses the bundled model, or when that is missing an
untrained checkpoint of --architecture at its default input size (same cost per image). Run:
    .venv/bin/python benchmarks/serve_load.py [--seconds 20] [--clients 8] [--model CKPT] [--heatmap]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from covidxray.inference.predictor import DEFAULT_MODEL, SAMPLES

HOST = "127.0.0.1"  # loopback only, by design
MAX_CLIENTS = 32
MAX_SECONDS = 300
MAX_REQUESTS = 20_000
TARGET_P95_S = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def untrained_checkpoint(folder: Path, architecture: str) -> Path:
    """A 3-class checkpoint of architecture with random weights: as costly to run as a trained one."""
    from covidxray.models.registry import model_spec
    from covidxray.inference.checkpoint import build_screener, save_checkpoint

    preprocessing = model_spec(architecture).preprocessing
    labels = ("covid", "pneumonia", "normal")
    screener = build_screener(architecture, {}, len(labels), preprocessing)
    return save_checkpoint(folder / f"{architecture}-untrained.pt", screener, architecture=architecture, architecture_kwargs={},
                           preprocessing=preprocessing, task="3class", labels=labels, threshold=0.5, temperature=1.0,
                           record={"note": "untrained, for the serve load benchmark only"})


def start_server(model: Path, port: int, gate: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "covidxray", "serve", "--host", HOST, "--port", str(port), "--model", str(model),
               "--gate" if gate else "--no-gate"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_healthy(server: subprocess.Popen, base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer {base}/api/v1/health within {timeout:.0f} s")


def client_loop(url: str, image: Path, stop_at: float, latencies: list[float], errors: list[str], budget: threading.Semaphore) -> None:
    """Post image until stop_at or the shared request budget is spent; record latency or error."""
    payload = image.read_bytes()
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < stop_at and budget.acquire(blocking=False):
            began = time.perf_counter()
            try:
                response = client.post(url, files={"file": (image.name, payload)})
                elapsed = time.perf_counter() - began
                if response.status_code == 200 and response.json().get("prediction"):
                    latencies.append(elapsed)
                else:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help=f"how long the clients run (at most {MAX_SECONDS})")
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent clients (at most {MAX_CLIENTS})")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint; default: the bundled model, else an untrained one")
    parser.add_argument("--architecture", default="xray-cnn", help="architecture of the untrained stand-in checkpoint")
    parser.add_argument("--image", type=Path, default=SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg", help="X-ray to post")
    parser.add_argument("--heatmap", action="store_true", help="ask for the Grad-CAM heat map too (?heatmap=true)")
    parser.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                        help="run the input gate, as `covidxray serve` does (default: when covidxray/weights/gate.npz exists)")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS or not 0 < args.clients <= MAX_CLIENTS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}] and --clients in [1, {MAX_CLIENTS}]")

    if args.gate is None:
        from covidxray.gate.runtime import DEFAULT_GATE_PATH

        args.gate = DEFAULT_GATE_PATH.is_file()
    with tempfile.TemporaryDirectory(prefix="covidxray-serve-load-") as scratch:
        model = args.model or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else untrained_checkpoint(Path(scratch), args.architecture))
        port = free_port()
        base = f"http://{HOST}:{port}"
        server = start_server(model, port, args.gate)
        try:
            wait_until_healthy(server, base)
            url = f"{base}/api/v1/predict" + ("?heatmap=true" if args.heatmap else "")
            latencies: list[float] = []
            errors: list[str] = []
            budget = threading.Semaphore(MAX_REQUESTS)
            began = time.monotonic()
            stop_at = began + args.seconds
            clients = [threading.Thread(target=client_loop, args=(url, args.image, stop_at, latencies, errors, budget))
                       for _ in range(args.clients)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            wall = time.monotonic() - began
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(f"model: {model.name}; image: {args.image.name}; heat map: {'yes' if args.heatmap else 'no'}; "
          f"input gate: {'on' if args.gate else 'off'}")
    print(f"clients: {args.clients}; wall: {wall:.1f} s; requests ok: {len(latencies)}; errors: {len(errors)}")
    if latencies:
        print(f"throughput: {len(latencies) / wall:.1f} requests/s")
        print(f"latency: p50 {percentile(latencies, 0.50) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, mean {statistics.fmean(latencies) * 1000:.0f} ms")
    for message in sorted(set(errors))[:5]:
        print(f"error: {message}")
    met = not errors and latencies and percentile(latencies, 0.95) < TARGET_P95_S
    print(f"target (no errors, p95 < {TARGET_P95_S:.0f} s): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

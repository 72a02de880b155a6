"""`covidxray serve --workers N`: N processes, each building its app by the factory, all answering alike."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from covidxray.inference.predictor import SAMPLES, Predictor  # noqa: E402

SAMPLE = SAMPLES / "normal-nih-00001280_004.png"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """Processes whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def post_image(url: str, path: Path) -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts worker processes through /proc")
def test_two_workers_answer_like_the_api(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "covidxray", "serve", "--workers", "2", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline, health = time.time() + 180, None
        while time.time() < deadline and health is None:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as response:
                    health = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert health and health["status"] == "ok"
        workers = []
        while time.time() < deadline and len(workers) < 2:  # one spawned process per worker (beside multiprocessing's resource tracker)
            workers = [pid for pid in children(server.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            time.sleep(0.5)
        assert len(workers) == 2, children(server.pid)
        expected = Predictor().screen([SAMPLE])[0]
        for _ in range(4):
            answer = post_image(f"http://127.0.0.1:{port}/api/v1/predict", SAMPLE)
            assert answer["prediction"] == expected.prediction
            assert abs(answer["p_covid"] - expected.p_covid) < 1e-5
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_factory_reads_the_settings_serve_hands_its_workers(monkeypatch):
    from fastapi.testclient import TestClient

    from covidxray.serve.app import app_from_environment
    from covidxray.serve.settings import ServeSettings

    monkeypatch.delenv("COVIDXRAY_API_TOKEN", raising=False)
    for key, value in ServeSettings(None, 0.001, False).as_environment().items():
        monkeypatch.setenv(key, value)
    with TestClient(app_from_environment()) as client:
        response = client.post("/api/v1/predict", files={"file": ("x.png", SAMPLE.read_bytes(), "image/png")})
        assert response.status_code == 413  # the 0.001 MiB limit reached the worker's app
        assert client.get("/api/v1/health").json()["status"] == "ok"

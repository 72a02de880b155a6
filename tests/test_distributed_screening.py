"""Screening on a Dask cluster: a real 2-worker LocalCluster gives the in-process answers, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from covidxray.errors import CovidxrayError
from covidxray.inference.distributed import connect, screen_on_cluster
from covidxray.inference.predictor import SAMPLES, Predictor, ScreeningResult

distributed = pytest.importorskip("distributed")

IMAGES = (".png", ".jpg", ".jpeg", ".dcm")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on this machine, closed (cluster too) after the module."""
    client = connect("local:2")
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close()


@pytest.fixture()
def paths(tmp_path: Path) -> list[str]:
    """The bundled samples, twice (more chunks than workers), with an unreadable file between them."""
    samples = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGES)
    assert len(samples) >= 4 and any(p.endswith(".dcm") for p in samples)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG file")
    return samples + [str(broken)] + samples[::-1]


def test_cluster_gives_the_in_process_answers_in_input_order_on_both_workers(client, paths):
    with distributed.get_task_stream(client) as stream:
        results = list(screen_on_cluster(paths, client, chunk_size=2))
    expected = [result for result, _ in Predictor().screen_paths(paths)]

    assert [r.path for r in results] == paths
    for got, want in zip(results, expected):
        assert got.prediction == want.prediction, got.path
        assert got.error == want.error
        if want.p_covid is None:
            assert got.p_covid is None
        else:
            assert got.p_covid == pytest.approx(want.p_covid, abs=1e-6), got.path
        assert got.lung_mask is None and got.heatmap is None  # arrays stay on the workers

    broken = results[paths.index(next(p for p in paths if p.endswith("broken.png")))]
    assert broken.status == "error" and broken.prediction is None and "broken.png" in broken.error
    assert sum(r.status.scored for r in results) == len(paths) - 1

    chunks = [task for task in stream.data if str(task["key"]).startswith("covidxray-screen-")]
    assert len({task["key"] for task in chunks}) == -(-len(paths) // 2)  # one task per chunk of 2
    assert {task["worker"] for task in chunks} == set(client.nthreads())  # both workers screened


def test_a_failing_task_becomes_error_rows_and_the_run_goes_on(client, paths):
    results = list(screen_on_cluster(paths[:3], client, model="/no/such/checkpoint.pt", chunk_size=2))
    assert [r.path for r in results] == paths[:3]
    for result in results:
        assert result.status == "error" and result.p_covid is None
        assert result.error.startswith(f"{result.path}: worker failed (CovidxrayError: ")
        assert "checkpoint not found" in result.error


class _FakeFuture:
    def __init__(self, chunk: list[str]) -> None:
        self.chunk, self.cancelled = chunk, False

    def result(self) -> list[ScreeningResult]:
        return [ScreeningResult(path=p, status="screened", prediction="normal") for p in self.chunk]

    def release(self) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True


class _FakeClient:
    """Records what is submitted, so that the bound on chunks in flight can be checked without a cluster."""

    def __init__(self, threads: int) -> None:
        self.threads, self.futures = threads, []

    def nthreads(self) -> dict[str, int]:
        return {f"tcp://worker-{i}:1": 1 for i in range(self.threads)}

    def submit(self, function, chunk, *arguments, key):
        self.futures.append(_FakeFuture(chunk))
        return self.futures[-1]


def test_at_most_max_in_flight_chunks_wait_and_an_early_stop_cancels_them():
    fake = _FakeClient(threads=2)
    paths = [f"image-{i}.png" for i in range(100)]
    stream = screen_on_cluster(paths, fake, chunk_size=5)
    assert fake.futures == []  # nothing goes out before the caller asks
    first = next(stream)
    assert first.path == "image-0.png"
    assert len(fake.futures) == 2 * 2 + 1  # 2 x threads in flight, plus the one taking the consumed chunk's place
    stream.close()
    assert sum(f.cancelled for f in fake.futures) == 4 and len(fake.futures) == 5

    everything = list(screen_on_cluster(paths, _FakeClient(threads=1), chunk_size=7, max_in_flight=1))
    assert [r.path for r in everything] == paths


def test_bad_addresses_and_arguments_are_refused_in_one_line():
    for address in ("bad", "local:0", "local:two", "http://host:8786"):
        with pytest.raises(CovidxrayError, match="local:N") as caught:
            connect(address)
        assert address in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CovidxrayError, match="chunk size"):
        screen_on_cluster(["a.png"], _FakeClient(1), chunk_size=0)

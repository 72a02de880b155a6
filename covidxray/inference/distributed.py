"""Screening on a Dask cluster, for archives that outgrow one machine: chunks of paths out, results back in order.
Why Dask: pure Python, small install, a LocalCluster here (no server to run) and the same Client for SSH, HPC
(dask-jobqueue) or Kubernetes clusters; Ray Data would bring a large binary wheel and a runtime of its own.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from covidxray.errors import CovidxrayError
from covidxray.inference.inputs import unexpected
from covidxray.inference.results import ScreeningResult, Status

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["connect", "screen_on_cluster"]

INSTALL_HINT = "screening on a cluster needs the cluster extra: pip install 'covidxray[cluster]'"
ADDRESS_FORMS = "local:N (N worker processes on this machine) or a scheduler address such as tcp://host:8786"
_HOST = r"(?:\[[0-9a-fA-F:]+\]|[\w.-]+)"
#: tcp://host[:port] (and the other protocols distributed speaks), or host:port.
_SCHEDULER_ADDRESS = re.compile(rf"^(?:(?:tcp|tls|ws|wss|ucx)://{_HOST}(?::\d{{1,5}})?|{_HOST}:\d{{1,5}})$")

#: One Predictor per worker process and loading arguments: a checkpoint is loaded once, not once per chunk.
_PREDICTORS: dict[tuple, object] = {}
_LOADING = threading.Lock()


def connect(address: str) -> "Client":
    """A dask.distributed Client for `address`: "local:N" starts N single-threaded worker processes
    here (closed with the client), anything else is a running scheduler's address (tcp://host:8786)."""
    text = str(address).strip()
    workers = None
    if text.lower().startswith("local:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise CovidxrayError(f"cluster address '{address}': N in local:N must be a whole number of at least 1; "
                                 f"expected {ADDRESS_FORMS}")
        workers = int(count)
    elif not _SCHEDULER_ADDRESS.match(text):
        raise CovidxrayError(f"cluster address '{address}' not understood; expected {ADDRESS_FORMS}")
    try:
        from distributed import Client
    except ImportError:
        raise CovidxrayError(INSTALL_HINT) from None
    if workers is not None:
        # Client(**cluster arguments) starts its own LocalCluster, and so closes it when the client closes.
        return Client(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        return Client(text)
    except OSError as exc:  # distributed raises OSError (often TimeoutError) when nothing answers there
        raise CovidxrayError(f"{text}: cannot reach the Dask scheduler ({unexpected(exc)})") from None


def screen_on_cluster(paths: Sequence[str], client: "Client", model: str | Path | None = None, *,
                      backend: str = "auto", gate: bool = True, gate_warnings: bool = True, severity: bool = True,
                      chunk_size: int = 64, batch_size: int = 16,
                      max_in_flight: int | None = None) -> Iterator[ScreeningResult]:
    """Screen `paths` on the cluster behind `client`, one ScreeningResult per path, in input order.

    Paths go out in chunks of chunk_size; at most max_in_flight chunks (default: twice the cluster's
    worker threads) are submitted and not yet consumed, so memory stays flat however many paths
    there are and every worker stays busy. The paths must be readable by the workers; each worker
    process loads the model once (the bundled one when model is None: workers run the same installed
    covidxray). A chunk whose task fails (a worker died, ...) comes back as error rows; the rest go on.
    Results carry no lung mask or heat map (arrays are not shipped back).
    """
    if chunk_size < 1:
        raise CovidxrayError(f"chunk size must be at least 1, not {chunk_size}")
    if batch_size < 1:
        raise CovidxrayError(f"batch size must be at least 1, not {batch_size}")
    if max_in_flight is None:
        max_in_flight = 2 * max(1, sum(client.nthreads().values()))
    if max_in_flight < 1:
        raise CovidxrayError(f"max_in_flight must be at least 1, not {max_in_flight}")
    arguments = (None if model is None else str(model), backend, gate, gate_warnings, severity, batch_size)
    return _screen_in_chunks([str(path) for path in paths], client, arguments, chunk_size, max_in_flight)


def _screen_in_chunks(paths: list[str], client: "Client", arguments: tuple, chunk_size: int,
                      max_in_flight: int) -> Iterator[ScreeningResult]:
    """screen_on_cluster's stream (apart, so that its arguments are checked on the call, not on first use)."""
    run, numbers = uuid.uuid4().hex[:8], itertools.count()
    chunks = (paths[start:start + chunk_size] for start in range(0, len(paths), chunk_size))
    pending: deque = deque()  # (chunk, future), oldest first

    def submit_next() -> bool:
        chunk = next(chunks, None)
        if chunk is None:
            return False
        key = f"covidxray-screen-{run}-{next(numbers)}"
        pending.append((chunk, client.submit(_screen_chunk, chunk, *arguments, key=key)))
        return True

    try:
        while len(pending) < max_in_flight and submit_next():
            pass
        while pending:
            chunk, future = pending.popleft()
            try:
                results = future.result()
            except Exception as exc:  # noqa: BLE001 - a failed task is its chunk's rows, never the run's end
                reason = unexpected(exc)
                results = [ScreeningResult(path=p, status=Status.ERROR, error=f"{p}: worker failed ({reason})")
                           for p in chunk]
            finally:
                future.release()  # the worker may drop this chunk's results now
            submit_next()  # keep the cluster busy while the caller consumes this chunk
            yield from results
    finally:  # the caller stopped early (or something broke): leave nothing running for it
        for _, future in pending:
            future.cancel()


def _screen_chunk(paths: list[str], model: str | None, backend: str, gate: bool, gate_warnings: bool,
                  severity: bool, batch_size: int) -> list[ScreeningResult]:
    """Runs on a worker: screen one chunk with this process's Predictor; arrays are left behind."""
    predictor = _predictor(model, backend, gate, gate_warnings, severity)
    results = []
    for result, _ in predictor.screen_paths(paths, batch_size=batch_size):
        result.lung_mask = result.heatmap = None
        results.append(result)
    return results


def _predictor(model: str | None, backend: str, gate: bool, gate_warnings: bool, severity: bool):
    key = (model, backend, gate, gate_warnings, severity)
    with _LOADING:  # a worker with several threads loads the model once, not once per thread
        if key not in _PREDICTORS:
            from covidxray.inference.api import load_model

            _PREDICTORS[key] = load_model(model, backend=backend, gate=gate, gate_warnings=gate_warnings,
                                          severity=severity)
        return _PREDICTORS[key]

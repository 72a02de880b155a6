"""The two PACS sessions the commands run: passes over a DICOMweb server (once, or polling with --watch),
and a storage SCP that screens what it receives until stopped. Console lines carry UIDs and counts only.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from covidxray import RESEARCH_NOTICE

__all__ = ["listen_session", "say", "screen_session"]


def say(line: str) -> None:
    """One line on the console (stderr), printed as is: no markup, no highlighting."""
    from covidxray.console import console

    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _screener(model: Path | None, backend: str, heatmaps: bool):
    from covidxray.inference.predictor import Predictor
    from covidxray.pacs.screening import Screener

    return Screener(Predictor(model, backend=backend), heatmaps=heatmaps)


def screen_session(settings, selection, *, watch: bool, every: float, dry_run: Path | None, state_path: Path | None,
                   retries: int, model: Path | None, backend: str, batch_size: int, heatmaps: bool) -> int:
    """Run `pacs screen`; the exit status: 0, 1 when an image had an error or was skipped, 130 when stopped.

    Args:
        settings: the DICOMweb server (covidxray.pacs.connection.PacsSettings).
        selection: which studies (covidxray.pacs.run.Selection).
        watch: poll again every `every` seconds until stopped.
        every: seconds between polls.
        dry_run: a folder for the results instead of the PACS (the state file is then left alone).
        state_path: the state file; None: the default one for this server and model.
        retries: attempts per request.
        model: checkpoint, None for the bundled one.
        backend: auto, torch or onnx.
        batch_size: images screened together.
        heatmaps: store the heat-map secondary captures.

    Returns:
        The exit status.
    """
    from covidxray.pacs.dicomweb import DicomWebPacs
    from covidxray.pacs.retry import PacsUnavailable, RetryPolicy
    from covidxray.pacs.run import RunSummary, screen_pass
    from covidxray.pacs.sinks import FolderSink, StowSink
    from covidxray.pacs.state import RunState, default_state_path

    screener = _screener(model, backend, heatmaps)
    pacs = DicomWebPacs(settings, RetryPolicy(attempts=retries), say)
    sink = FolderSink(dry_run) if dry_run is not None else StowSink(pacs)
    sha = screener.model.sha256
    state = RunState(None if dry_run is not None else (state_path or default_state_path(settings.url, sha)), settings.url, sha)
    if state.note:
        say(state.note)
    say(f"screening {settings.url} with {screener.model.name}; results to {sink.where}. {RESEARCH_NOTICE}")
    total = RunSummary()
    try:
        with _sigterm_stops():
            while True:
                try:
                    summary = screen_pass(pacs, screener, sink, state, selection, say, batch_size)
                except PacsUnavailable as exc:
                    if not watch:
                        raise
                    say(f"{exc}; polling again in {every:g} s")
                else:
                    total.add(summary)
                    if summary.screened or summary.skipped or not watch:
                        say(summary.line())
                if not watch:
                    break
                time.sleep(every)
    except Stopped:
        say("stopped (SIGTERM): every result stored so far is whole; the same command goes on from there")
        return 0
    except KeyboardInterrupt:
        say("stopped: every result stored so far is whole; the same command goes on where this one stopped")
        return 130
    failed = total.skipped + total.statuses.get("error", 0)
    return 1 if failed else 0


class Stopped(BaseException):
    """SIGTERM (a service manager's stop) arrived: the session ends where it is, as Ctrl-C would."""


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """While inside (in the main thread): SIGTERM raises Stopped. Stopping anywhere is safe: a result is
    stored whole or not at all (its SR last), and the next run takes up what is left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(*_) -> None:
        raise Stopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def listen_session(*, host: str, port: int, ae_title: str, send_to: str | None, dry_run: Path | None,
                   spool: Path | None, retries: int, model: Path | None, backend: str, batch_size: int,
                   heatmaps: bool) -> None:
    """Run `pacs listen` until Ctrl-C or SIGTERM.

    Args:
        host: address to listen on.
        port: TCP port of the storage SCP.
        ae_title: this SCP's AE title, also the calling AE title towards send_to.
        send_to: AETITLE@HOST:PORT that results are C-STOREd to, or None with dry_run.
        dry_run: a folder for the results instead of a PACS.
        spool: the folder holding received images until their results are stored; None: the default.
        retries: attempts per association.
        model: checkpoint, None for the bundled one.
        backend: auto, torch or onnx.
        batch_size: images screened together.
        heatmaps: send the heat-map secondary captures.
    """
    from covidxray.errors import CovidxrayError
    from covidxray.pacs.dimse import StorageListener
    from covidxray.pacs.dimse_sink import CStoreSink, parse_node
    from covidxray.pacs.retry import RetryPolicy
    from covidxray.pacs.sinks import FolderSink
    from covidxray.pacs.state import default_state_path

    peer = parse_node(send_to) if send_to else None
    screener = _screener(model, backend, heatmaps)
    if peer is not None:
        sink = CStoreSink(peer, ae_title, lambda study: screener.uids(study, "").report_series,
                          RetryPolicy(attempts=retries), say)
    else:
        sink = FolderSink(dry_run)
    spool = spool or default_state_path(f"dimse:{ae_title}:{port}", screener.model.sha256).with_suffix(".spool")
    listener = StorageListener(screener, sink, spool, ae_title, say, batch_size)
    try:
        listener.start(host, port)
    except OSError as exc:
        raise CovidxrayError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    say(f"listening as {ae_title} on {host}:{port}; results to {sink.where}; spool {spool}. {RESEARCH_NOTICE}")
    try:
        with _sigterm_stops():
            while True:
                time.sleep(0.5)
    except (Stopped, KeyboardInterrupt):
        pass
    listener.stop(drain_seconds=30)
    counts = ", ".join(f"{count} {status}" for status, count in sorted(listener.counts.items())) or "nothing"
    say(f"stopped; screened {counts}; anything not finished stays in the spool for the next start")

"""The DIMSE path end to end against a live Orthanc: pynetdicom sends a mixed study to `covidxray pacs
listen`, which screens each CR/DX radiograph and C-STOREs its SR and heat map into Orthanc; an image sent
again is not screened again; what a stopped listener left in its spool is screened at the next start.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orthanc_server import OrthancServer, free_port, frontal_study, missing_reason, mixed_study

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

ROOT = Path(__file__).resolve().parents[1]
IDENTIFIERS = ("Doe^Jane", "SECRET123", "ACC-SECRET-77")


@pytest.fixture(scope="module")
def listener_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, listener_port):
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"),
                           modalities={"covidxray": ("COVIDXRAY", "127.0.0.1", listener_port)}).start()
    yield server
    server.stop(kill=True)  # its storage is a temporary folder: no need to shut down cleanly


class Listener:
    """`covidxray pacs listen` in its own process, its output in a file."""

    def __init__(self, orthanc: OrthancServer, port: int, folder: Path, *args: str) -> None:
        self.log = folder / f"listen-{time.monotonic_ns()}.log"
        self.spool = folder / "spool"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "covidxray", "pacs", "listen", "--port", str(port), "--send-to", orthanc.node,
                 "--spool", str(self.spool), *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "XDG_STATE_HOME": str(folder / "state"), "PYTHONUNBUFFERED": "1"})
        wait_for(lambda: "listening as" in self.output(), 120, "the listener to start", self.process)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=90)
        finally:
            self.process.kill()


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended (exit {process.returncode})")
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def send(files, port: int) -> list[int]:
    """C-STORE each file to the listener (pynetdicom, as a modality or router would): the statuses."""
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.presentation import build_context
    from pydicom.uid import ExplicitVRLittleEndian

    datasets = [dcmread(io.BytesIO(item.data)) for item in files]
    ae = AE(ae_title="MODALITY")
    ae.requested_contexts = [build_context(uid, [ExplicitVRLittleEndian]) for uid in sorted({str(d.SOPClassUID) for d in datasets})]
    association = ae.associate("127.0.0.1", port, ae_title="COVIDXRAY")
    assert association.is_established
    try:
        return [association.send_c_store(dataset).Status for dataset in datasets]
    finally:
        association.release()


def reports_by_source(orthanc: OrthancServer, study_uid: str) -> dict:
    from pydicom import dcmread

    from covidxray.pacs.results_sr import read_report

    found = {}
    for row in orthanc.instances(study_uid):
        if row["modality"] == "SR":
            report = read_report(dcmread(io.BytesIO(orthanc.file(row["sop"]))))
            assert report.source_uid not in found, "two reports for one image"
            found[report.source_uid] = report
    return found


def study_of(files) -> str:
    from pydicom import dcmread

    return str(dcmread(io.BytesIO(files[0].data), stop_before_pixels=True).StudyInstanceUID)


@pytest.fixture(scope="module")
def screener():
    from covidxray.inference.predictor import Predictor
    from covidxray.pacs.screening import Screener

    return Screener(Predictor())


def test_listener_screens_what_it_receives_and_stores_results_once(orthanc, listener_port, screener, tmp_path):
    """The storage SCP in this process (its model warm), sending results to Orthanc by C-STORE."""
    from covidxray.pacs.dimse import StorageListener
    from covidxray.pacs.dimse_sink import CStoreSink, parse_node
    from covidxray.pacs.retry import RetryPolicy

    files = mixed_study()
    candidates = [item for item in files if item.candidate]
    lines: list[str] = []
    sink = CStoreSink(parse_node(orthanc.node), "COVIDXRAY", lambda study: screener.uids(study, "").report_series,
                      RetryPolicy(attempts=3), lines.append)
    listener = StorageListener(screener, sink, tmp_path / "spool", "COVIDXRAY", lines.append)
    listener.start("127.0.0.1", listener_port)
    try:
        assert send(files, listener_port) == [0x0000] * len(files)  # every instance acknowledged
        wait_for(lambda: len(reports_by_source(orthanc, study_of(files))) == len(candidates), 120, "a report per radiograph")
        reports = reports_by_source(orthanc, study_of(files))
        statuses = {item.kind: reports[item.sop_uid].status for item in candidates}
        assert statuses["frontal CR"] in ("screened", "warned") and statuses["frontal DX"] in ("screened", "warned")
        assert statuses["lateral DX"] == "refused" and statuses["truncated DX"] == "error"
        scored = sum(status in ("screened", "warned") for status in statuses.values())
        stored = orthanc.instances(study_of(files))
        assert sum(row["modality"] == "OT" for row in stored) == scored  # heat maps; the CT and the photo are not screened
        assert len(stored) == len(candidates) + scored
        wait_for(lambda: not list((tmp_path / "spool").glob("*.dcm")), 30, "the spool to empty")

        before = orthanc.instance_count()  # the same image again: its result is already in the PACS (C-FIND)
        assert send(candidates[:1], listener_port) == [0x0000]
        wait_for(lambda: any("already has its result" in line for line in lines), 60, "the repeat to be recognised")
        assert orthanc.instance_count() == before
    finally:
        listener.stop(drain_seconds=10)
    output = "\n".join(lines)
    assert not any(value in output for value in IDENTIFIERS)


def test_listen_command_screens_its_spool_at_start_and_stops_on_sigterm(orthanc, listener_port, tmp_path):
    """`covidxray pacs listen` as a service runs it: what a stopped listener left in its spool (received,
    acknowledged, not yet screened) is screened when it starts again; SIGTERM stops it cleanly."""
    late = frontal_study(1)
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / f"{late[0].sop_uid}.dcm").write_bytes(late[0].data)
    listener = Listener(orthanc, listener_port, tmp_path, "--no-heatmaps")
    try:
        wait_for(lambda: len(reports_by_source(orthanc, study_of(late))) == 1, 120, "the spooled image screened",
                 listener.process)
        wait_for(lambda: not list(listener.spool.glob("*.dcm")), 30, "the spool to empty")
    finally:
        assert listener.stop() == 0
    output = listener.output()
    assert "Traceback" not in output and "stopped; screened" in output
    assert not any(value in output for value in IDENTIFIERS)

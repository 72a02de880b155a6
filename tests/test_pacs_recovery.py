"""Exactly once against a live Orthanc: a `pacs screen` killed half-way (kill -9) and started again, and
one whose PACS restarts mid-run, each end with one result per image; --watch finds new studies and
stops on SIGTERM.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orthanc_server import OrthancServer, frontal_study, missing_reason

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop(kill=True)  # its storage is a temporary folder: no need to shut down cleanly


def environment(orthanc: OrthancServer, state_home: Path) -> dict:
    return {**os.environ, "COVIDXRAY_PACS_USER": orthanc.user, "COVIDXRAY_PACS_PASSWORD": orthanc.password,
            "XDG_STATE_HOME": str(state_home), "PYTHONUNBUFFERED": "1"}


def start_screen(orthanc: OrthancServer, tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "screen.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "covidxray", "pacs", "screen", "--url", orthanc.dicomweb_url, *args],
                            cwd=ROOT, env=environment(orthanc, tmp_path / "state"), stdout=log, stderr=subprocess.STDOUT)


def study_of(files) -> str:
    from pydicom import dcmread

    return str(dcmread(io.BytesIO(files[0].data), stop_before_pixels=True).StudyInstanceUID)


def results(orthanc: OrthancServer, files) -> tuple[list[str], list[str]]:
    """(SOP UIDs of the SRs, of the heat-map captures) in the study."""
    sources = {item.sop_uid for item in files}
    rows = [row for row in orthanc.instances(study_of(files)) if row["sop"] not in sources]
    return [row["sop"] for row in rows if row["modality"] == "SR"], [row["sop"] for row in rows if row["modality"] == "OT"]


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None and not condition():
            raise AssertionError(f"{what}: the run ended first (exit {process.returncode})")
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def one_result_each(orthanc: OrthancServer, files, heatmaps: bool = True) -> None:
    from pydicom import dcmread

    from covidxray.pacs.results_sr import read_report

    reports, pictures = results(orthanc, files)
    assert len(reports) == len(set(reports)) == len(files)
    sources = sorted(read_report(dcmread(io.BytesIO(orthanc.file(uid)))).source_uid for uid in reports)
    assert sources == sorted(item.sop_uid for item in files)
    scored = sum(read_report(dcmread(io.BytesIO(orthanc.file(uid)))).status in ("screened", "warned") for uid in reports)
    assert len(pictures) == len(set(pictures)) == (scored if heatmaps else 0)


def test_a_run_killed_half_way_and_started_again_writes_each_result_once(orthanc, tmp_path):
    files = frontal_study(6)
    for item in files:
        orthanc.upload(item.data)
    # Without heat maps this process starts in seconds (Grad-CAM imports torch); the restart test covers them.
    run = start_screen(orthanc, tmp_path, "--study", study_of(files), "--batch-size", "1", "--no-heatmaps")
    try:
        wait_for(lambda: len(results(orthanc, files)[0]) >= 1, 120, "a first result", run)
        run.send_signal(signal.SIGKILL)  # no clean-up of any kind
        run.wait(timeout=10)
    finally:
        run.kill()
    assert len(results(orthanc, files)[0]) < len(files), "the run finished before it was killed"
    status, output = run_cli(orthanc, tmp_path, "--study", study_of(files), "--no-heatmaps")  # started again
    assert status == 0, output
    one_result_each(orthanc, files, heatmaps=False)
    assert "already had a result" in output


def run_cli(orthanc: OrthancServer, tmp_path: Path, *args: str) -> tuple[int, str]:
    """`covidxray pacs screen` in this process (its imports stay warm between tests): (exit status, output)."""
    import contextlib

    from covidxray.cli import main

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        for name, value in environment(orthanc, tmp_path / "state").items():
            patch.setenv(name, value)
        status = main(["pacs", "screen", "--url", orthanc.dicomweb_url, *args])
    return status, printed.getvalue()


def test_a_pacs_restarted_mid_run_costs_retries_not_results(orthanc, tmp_path):
    files = frontal_study(6)
    for item in files:
        orthanc.upload(item.data)
    answer: dict = {}
    run = threading.Thread(target=lambda: answer.update(zip(("status", "output"), run_cli(
        orthanc, tmp_path, "--study", study_of(files), "--batch-size", "1"))))
    run.start()
    try:
        wait_for(lambda: len(results(orthanc, files)[0]) >= 1 or not run.is_alive(), 120, "a first result")
        assert run.is_alive(), "the run finished before the PACS went down"
        orthanc.stop()
        time.sleep(2.0)  # down for a while: requests fail and are retried
    finally:
        orthanc.start()
        run.join(timeout=180)
    assert answer["status"] == 0, answer["output"]
    assert "trying again in" in answer["output"] and "Traceback" not in answer["output"]
    one_result_each(orthanc, files)


def test_watch_screens_new_studies_until_sigterm(orthanc, tmp_path):
    first, second = frontal_study(1), frontal_study(2)
    for item in first:
        orthanc.upload(item.data)
    run = start_screen(orthanc, tmp_path, "--watch", "--every", "1", "--no-heatmaps")
    try:
        wait_for(lambda: len(results(orthanc, first)[0]) == 1, 120, "the first study screened", run)
        for item in second:
            orthanc.upload(item.data)
        wait_for(lambda: len(results(orthanc, second)[0]) == 2, 60, "the new study screened", run)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 0
    finally:
        run.kill()
    one_result_each(orthanc, first, heatmaps=False)
    one_result_each(orthanc, second, heatmaps=False)
    assert "stopped" in (tmp_path / "screen.log").read_text()

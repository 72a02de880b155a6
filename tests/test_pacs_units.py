"""The PACS package's parts on their own (no server): derived UIDs, settings and credentials, retries,
the SR and secondary capture builders, storing order, the state file, WADO-RS multipart answers.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from covidxray.errors import CovidxrayError  # noqa: E402


@pytest.fixture
def source():
    from dicom_factory import radiograph_dataset
    from pydicom.uid import generate_uid

    dataset = radiograph_dataset((np.linspace(0, 255, 64 * 64).reshape(64, 64)).astype(np.uint8))
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    return dataset


@pytest.fixture
def model():
    from covidxray.pacs.identity import ModelIdentity

    return ModelIdentity(name="xray-cnn", sha256="ab" * 32, labels=("not_covid", "covid"), threshold=0.546)


def result(**fields):
    from covidxray.inference.predictor import ScreeningResult

    return ScreeningResult(path="instance.dcm", **fields)


def test_result_uids_are_fixed_by_source_and_model_and_valid():
    from covidxray.pacs.uids import result_uids

    first, again = result_uids("1.2.3", "1.2.3.4", "a" * 64), result_uids("1.2.3", "1.2.3.4", "a" * 64)
    other_model = result_uids("1.2.3", "1.2.3.4", "b" * 64)
    assert first == again and first.report != other_model.report
    assert result_uids("1.2.3", "1.2.3.5", "a" * 64).report_series == first.report_series  # one series a study
    for uid in (first.report, first.picture, first.report_series, first.picture_series):
        assert uid.startswith("2.25.") and len(uid) <= 64 and uid.replace(".", "").isdigit()
    assert len({first.report, first.picture, first.report_series, first.picture_series}) == 4


def test_settings_refuse_credentials_in_the_url_and_read_them_from_the_environment(monkeypatch, tmp_path):
    from covidxray.pacs.connection import pacs_settings

    for name in ("COVIDXRAY_PACS_USER", "COVIDXRAY_PACS_PASSWORD", "COVIDXRAY_PACS_TOKEN", "COVIDXRAY_PACS_CREDENTIALS",
                 "COVIDXRAY_PACS_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CovidxrayError, match="do not belong in the URL") as caught:
        pacs_settings("https://admin:hunter2@pacs.example/dicom-web")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(CovidxrayError, match="no PACS"):
        pacs_settings(None)
    monkeypatch.setenv("COVIDXRAY_PACS_USER", "reader")
    with pytest.raises(CovidxrayError, match="go together"):
        pacs_settings("http://127.0.0.1:8042/dicom-web")
    monkeypatch.setenv("COVIDXRAY_PACS_PASSWORD", "hunter2")
    settings = pacs_settings("http://127.0.0.1:8042/dicom-web/")
    assert settings.url == "http://127.0.0.1:8042/dicom-web" and settings.verify is True  # TLS verified by default
    assert settings.credentials.password == "hunter2" and "hunter2" not in repr(settings)
    secret = tmp_path / "pacs.json"
    secret.write_text(json.dumps({"token": "t0ken"}))
    secret.chmod(0o600)
    assert pacs_settings("https://pacs.example/dicom-web", credentials_file=secret).credentials.token == "t0ken"
    with pytest.raises(CovidxrayError, match="CA bundle not found"):
        pacs_settings("https://pacs.example/dicom-web", ca_bundle=tmp_path / "missing.pem")


def test_retries_back_off_then_give_up_in_one_line(monkeypatch):
    import requests

    from covidxray.pacs import retry

    waits, lines = [], []
    monkeypatch.setattr(retry.time, "sleep", waits.append)

    def down():
        raise requests.exceptions.ConnectionError("Connection refused")

    with pytest.raises(retry.PacsUnavailable, match="gave up after 4 attempts"):
        retry.call_with_retries(down, "PACS x: search", retry.RetryPolicy(attempts=4), lines.append)
    assert waits == [1.0, 2.0, 4.0] and len(lines) == 3 and all("connection refused" in line for line in lines)
    calls = iter([requests.exceptions.Timeout(), "answer"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry.call_with_retries(flaky, "PACS x", retry.RetryPolicy(), lines.append) == "answer"
    not_found = requests.exceptions.HTTPError(response=type("R", (), {"status_code": 404, "reason": "Not Found"})())
    assert retry.transient_problem(not_found) is None  # not retried: raised at once


@pytest.mark.parametrize("status", ["screened", "warned", "refused", "error"])
def test_the_report_says_what_happened_and_numbers_only_when_scored(source, model, status):
    import highdicom as hd
    from pydicom import dcmread

    from covidxray import RESEARCH_NOTICE
    from covidxray.pacs.results_sr import read_report, screening_report
    from covidxray.pacs.uids import result_uids

    scored = status in ("screened", "warned")
    answer = result(status=status, p_covid=0.812345 if scored else None, prediction="covid" if scored else None,
                    threshold=0.546, severity_extent=3.25 if scored else None, severity_opacity=2.5 if scored else None,
                    input_note="check the exposure" if status == "warned" else "a lateral view" if status == "refused" else "",
                    error="pixel data cut short" if status == "error" else "")
    uids = result_uids(source.StudyInstanceUID, source.SOPInstanceUID, model.sha256)
    buffer = io.BytesIO()
    screening_report(source, answer, model, uids).save_as(buffer, enforce_file_format=True)
    dataset = dcmread(io.BytesIO(buffer.getvalue()))
    assert dataset.SOPInstanceUID == uids.report and dataset.Modality == "SR"
    assert dataset.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert hd.sr.ComprehensiveSR.from_dataset(dataset)  # highdicom reads it back
    values = read_report(dataset)
    assert values.status == status and values.source_uid == source.SOPInstanceUID and values.notice == RESEARCH_NOTICE
    if scored:
        assert (values.p_covid, values.threshold, values.severity_extent, values.severity_opacity) == (0.812345, 0.546, 3.25, 2.5)
        assert values.decision == "covid"
    else:
        assert values.p_covid is values.threshold is values.severity_extent is values.decision is None
        assert values.note in ("a lateral view", "pixel data cut short")


def test_the_report_copes_with_a_source_missing_type_2_attributes(source, model):
    from covidxray.pacs.results_sr import read_report, screening_report
    from covidxray.pacs.uids import result_uids

    del source.PatientName, source.PatientBirthDate
    report = screening_report(source, result(status="refused", input_note="not a chest"), model,
                              result_uids(source.StudyInstanceUID, source.SOPInstanceUID, model.sha256))
    assert report.PatientName == "" and read_report(report).status == "refused"


def test_the_capture_references_its_source_and_burns_the_notice_in(source, model):
    from PIL import Image

    from covidxray import RESEARCH_NOTICE
    from covidxray.pacs.secondary_capture import heatmap_capture
    from covidxray.pacs.uids import result_uids

    uids = result_uids(source.StudyInstanceUID, source.SOPInstanceUID, model.sha256)
    capture = heatmap_capture(source, Image.new("RGB", (40, 30), (200, 10, 10)), model, uids)
    assert capture.SOPInstanceUID == uids.picture and capture.StudyInstanceUID == source.StudyInstanceUID
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert capture.BurnedInAnnotation == "YES" and capture.ImageComments == RESEARCH_NOTICE
    assert capture.pixel_array.shape == (30, 40, 3) and capture.PatientID == source.PatientID


def test_reports_are_stored_after_every_picture(tmp_path, source, model):
    from covidxray.pacs.screening import Outcome
    from covidxray.pacs.sinks import FolderSink, in_storing_order
    from covidxray.pacs.uids import result_uids

    outcomes = [Outcome("s", str(number), "screened", result_uids("s", str(number), "a"), objects=[f"picture{number}", f"report{number}"])
                for number in range(3)]
    pictures, reports = in_storing_order(outcomes)
    assert pictures == ["picture0", "picture1", "picture2"] and reports == ["report0", "report1", "report2"]
    assert FolderSink(tmp_path).stored("1.2.3", {"anything"}) == set()


def test_state_is_written_atomically_and_never_trusted_across_models(tmp_path):
    from covidxray.pacs.state import RunState, default_state_path

    path = tmp_path / "state.json"
    state = RunState(path, "http://pacs/dicom-web", "a" * 64)
    state.finished("1.2.3", 7)
    assert RunState(path, "http://pacs/dicom-web", "a" * 64).unchanged("1.2.3", 7)
    assert not RunState(path, "http://pacs/dicom-web", "a" * 64).unchanged("1.2.3", 8)
    other = RunState(path, "http://pacs/dicom-web", "b" * 64)
    assert not other.unchanged("1.2.3", 7) and "another server, model" in other.note
    path.write_text("{ half a file")
    assert "unreadable" in RunState(path, "http://pacs/dicom-web", "a" * 64).note
    assert not list(tmp_path.glob(".*partial"))
    assert default_state_path("http://a", "x") != default_state_path("http://b", "x")


def test_wado_multipart_answers_are_split_byte_for_byte():
    from covidxray.pacs.dicomweb import multipart_parts
    from covidxray.pacs.screening import with_preamble

    payload = b"\x02\x00\x10\x00UI\r\n\r\n--not-the-boundary\r\n\x00\xff"
    body = (b"--abc\r\nContent-Type: application/dicom\r\nContent-Length: %d\r\n\r\n" % len(payload)) + payload + b"\r\n--abc--\r\n"
    assert multipart_parts('multipart/related; type="application/dicom"; boundary=abc', body) == [payload]
    fixed = with_preamble(payload)
    assert fixed[128:132] == b"DICM" and fixed.endswith(payload) and with_preamble(fixed) == fixed


def test_importing_the_package_stays_light():
    import subprocess

    code = ("import sys, covidxray.pacs, covidxray.pacs.command; "
            "print(sorted(m for m in ('torch', 'highdicom', 'pynetdicom', 'dicomweb_client', 'pydicom') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"

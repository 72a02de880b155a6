"""`covidxray pacs screen` against a live Orthanc (DICOMweb): a study of mixed content is screened, each
radiograph gets one SR (and, when scored, one heat-map capture) that parses with pydicom and highdicom,
references its source and carries the numbers `covidxray predict` gives the same file; nothing leaks.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from orthanc_server import OrthancServer, frontal_study, missing_reason, mixed_study

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

#: Values in the test DICOMs that identify the made-up patient: never printed.
IDENTIFIERS = ("Doe^Jane", "Doe", "SECRET123", "ACC-SECRET-77", "19700101")


def run_cli(*args: str) -> tuple[int, str]:
    """covidxray's CLI in this process: (exit status, everything it printed)."""
    from covidxray.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = main(list(args))
    return status, printed.getvalue()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop(kill=True)  # its storage is a temporary folder: no need to shut down cleanly


@pytest.fixture(scope="module")
def credentials(orthanc):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COVIDXRAY_PACS_USER", orthanc.user)
        patch.setenv("COVIDXRAY_PACS_PASSWORD", orthanc.password)
        yield patch


@pytest.fixture(scope="module")
def screened(orthanc, credentials, tmp_path_factory):
    """The mixed study stored in Orthanc, then screened once: (its files, exit status, output, state file)."""
    files = mixed_study()
    for item in files:
        orthanc.upload(item.data)
    state = tmp_path_factory.mktemp("state") / "state.json"
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--state", str(state))
    return files, status, output, state


def study_uid(files) -> str:
    from pydicom import dcmread

    return str(dcmread(io.BytesIO(files[0].data), stop_before_pixels=True).StudyInstanceUID)


def result_uids_of(files, source_uid: str):
    from covidxray.hashing import sha256_file
    from covidxray.inference.predictor import DEFAULT_MODEL
    from covidxray.pacs.uids import result_uids

    return result_uids(study_uid(files), source_uid, sha256_file(DEFAULT_MODEL))


def read_instance(orthanc: OrthancServer, sop_uid: str):
    from pydicom import dcmread

    return dcmread(io.BytesIO(orthanc.file(sop_uid)))


def test_each_radiograph_gets_one_result_and_nothing_else_is_screened(orthanc, screened):
    files, status, output, _ = screened
    stored = {row["sop"]: row for row in orthanc.instances(study_uid(files))}
    expected = {"frontal CR": ("screened", "warned"), "frontal DX": ("screened", "warned"),
                "lateral DX": ("refused",), "truncated DX": ("error",)}
    from covidxray.pacs.results_sr import read_report

    for item in files:
        uids = result_uids_of(files, item.sop_uid)
        if not item.candidate:  # the CT slice and the RGB secondary capture are not radiographs to screen
            assert uids.report not in stored and uids.picture not in stored, item.kind
            continue
        assert stored[uids.report]["modality"] == "SR", item.kind
        report = read_report(read_instance(orthanc, uids.report))
        assert report.status in expected[item.kind], (item.kind, report)
        scored = report.status in ("screened", "warned")
        assert (uids.picture in stored) == scored, item.kind
        if not scored:  # a refused or unreadable image: the SR says why, and carries no probability
            assert report.p_covid is None and report.decision is None and report.note, item.kind
    results = [row for row in stored.values() if row["modality"] in ("SR", "OT") and row["sop"] not in {f.sop_uid for f in files}]
    assert len(results) == 4 + 2  # one SR per radiograph (4), one heat map per scored one (2)
    assert status == 1  # the truncated file: an image ended in error (its SR says so)
    assert "1 error" in output and "1 refused" in output


def test_reports_parse_reference_their_source_and_carry_the_research_notice(orthanc, screened):
    import highdicom as hd

    from covidxray import RESEARCH_NOTICE
    from covidxray.pacs.results_sr import read_report

    files, *_ = screened
    source = next(item for item in files if item.kind == "frontal CR")
    uids = result_uids_of(files, source.sop_uid)
    dataset = read_instance(orthanc, uids.report)
    document = hd.sr.ComprehensiveSR.from_dataset(dataset)
    evidence = document.get_evidence()
    assert len(evidence) == 1 and source.sop_uid in evidence[0]
    assert dataset.StudyInstanceUID == study_uid(files) and dataset.ContentQualification == "RESEARCH"
    assert dataset.PatientID == "SECRET123"  # the SR belongs to the patient's study (it is never printed)
    report = read_report(dataset)
    assert report.source_uid == source.sop_uid
    assert report.notice == RESEARCH_NOTICE and report.algorithm.startswith("xray-cnn sha256:")
    assert 0.0 <= report.p_covid <= 1.0 and report.decision in ("covid", "not_covid")

    capture = read_instance(orthanc, uids.picture)
    assert capture.Modality == "OT" and capture.BurnedInAnnotation == "YES"
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == source.sop_uid
    assert capture.SeriesInstanceUID == uids.picture_series != dataset.SeriesInstanceUID
    image = hd.imread(io.BytesIO(orthanc.file(uids.picture)))
    pixels = image.get_frame(1)
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.shape[0] > 256  # the radiograph and its caption strip


def test_reports_carry_the_numbers_of_predict_on_the_same_file(orthanc, screened, tmp_path):
    from covidxray.pacs.results_sr import read_report

    files, *_ = screened
    candidates = [item for item in files if item.candidate]
    paths = []
    for number, item in enumerate(candidates):
        path = tmp_path / f"{number}.dcm"
        path.write_bytes(orthanc.file(item.sop_uid))  # the file as the PACS holds it
        paths.append(str(path))
    status, _ = run_cli("predict", *paths, "--output", str(tmp_path / "rows.json"))
    rows = json.loads((tmp_path / "rows.json").read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert len(rows) == len(candidates)
    for item, row in zip(candidates, rows):
        report = read_report(read_instance(orthanc, result_uids_of(files, item.sop_uid).report))
        assert report.status == row["status"], item.kind
        for name in ("p_covid", "threshold", "severity_extent", "severity_opacity"):
            if row[name] is None or name == "threshold" and report.status not in ("screened", "warned"):
                assert getattr(report, name) is None, (item.kind, name)
            else:
                assert getattr(report, name) == pytest.approx(row[name], abs=1e-5), (item.kind, name)
        assert report.decision == row["prediction"], item.kind


def test_a_second_run_writes_nothing(orthanc, screened, credentials):
    files, _, _, state = screened
    before = orthanc.instance_count()
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--state", str(state))
    assert orthanc.instance_count() == before
    assert "unchanged since the last run" in output and "0 result objects stored" in output
    # Without the state file the PACS itself says what is done: still nothing new.
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--study", study_uid(files))
    assert orthanc.instance_count() == before
    assert "4 already had a result" in output and status == 0


def test_no_patient_identifier_or_secret_is_printed(orthanc, screened):
    _, _, output, _ = screened
    for value in (*IDENTIFIERS, orthanc.password):
        assert value not in output
    assert "Traceback" not in output


def test_dry_run_writes_a_folder_and_leaves_the_pacs_alone(orthanc, credentials, tmp_path):
    from pydicom import dcmread

    from covidxray.pacs.results_sr import read_report

    files = frontal_study(2)
    for item in files:
        orthanc.upload(item.data)
    before = orthanc.instance_count()
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--study", study_uid(files),
                             "--dry-run", str(tmp_path / "results"))
    assert status == 0 and orthanc.instance_count() == before
    written = sorted((tmp_path / "results" / study_uid(files)).glob("*.dcm"))
    reports = [read_report(dcmread(path)) for path in written if dcmread(path).Modality == "SR"]
    assert sorted(report.source_uid for report in reports) == sorted(item.sop_uid for item in files)
    assert len(written) == 2 + sum(report.status in ("screened", "warned") for report in reports)


def test_wrong_credentials_are_one_line_and_never_shown(orthanc, monkeypatch, tmp_path):
    monkeypatch.setenv("COVIDXRAY_PACS_USER", orthanc.user)
    monkeypatch.setenv("COVIDXRAY_PACS_PASSWORD", "not-the-password-42")
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--dry-run", str(tmp_path / "unused"))
    assert status == 2 and "refused access (HTTP 401)" in output
    assert "not-the-password-42" not in output and "Traceback" not in output


def test_a_pacs_that_is_down_gets_retries_then_one_line(monkeypatch, tmp_path):
    from orthanc_server import free_port

    monkeypatch.setenv("COVIDXRAY_PACS_USER", "someone")
    monkeypatch.setenv("COVIDXRAY_PACS_PASSWORD", "secret-never-shown")
    status, output = run_cli("pacs", "screen", "--url", f"http://127.0.0.1:{free_port()}/dicom-web", "--retries", "2",
                             "--state", str(tmp_path / "state.json"))
    assert status == 2
    assert "trying again in 1 s" in output and "gave up after 2 attempts" in output
    assert "Traceback" not in output and "secret-never-shown" not in output


def test_a_study_date_range_selects_studies(orthanc, credentials, tmp_path):
    files = frontal_study(1)
    for item in files:
        orthanc.upload(item.data)
    folder = tmp_path / "results"
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--from", "2030-01-01", "--dry-run", str(folder))
    assert status == 0 and "0 studies" in output and not folder.exists()
    status, output = run_cli("pacs", "screen", "--url", orthanc.dicomweb_url, "--from", "2024-01-05", "--to", "20240105",
                             "--dry-run", str(folder))
    assert status in (0, 1) and (folder / study_uid(files)).is_dir()  # the test studies are dated 2024-01-05

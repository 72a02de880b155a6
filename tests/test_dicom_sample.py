"""The DICOM sample shipped in covidxray/samples: small, de-identified, credited, rebuilt by its script, screened."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from covidxray.cli import main
from covidxray.inference.predictor import SAMPLES, Predictor, expand_inputs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = SAMPLES / "normal-nih-00001280_004.dcm"
PERSON_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
               "OtherPatientIDs", "PatientAddress", "AccessionNumber", "StudyID", "StudyDate", "StudyTime",
               "SeriesDate", "AcquisitionDate", "ContentDate", "InstitutionName", "InstitutionAddress",
               "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "StationName",
               "DeviceSerialNumber")


def test_sample_is_small_de_identified_and_credited():
    assert SAMPLE.is_file() and SAMPLE.stat().st_size < 300_000
    dataset = pydicom.dcmread(SAMPLE)
    present = [tag for tag in PERSON_TAGS if tag in dataset]
    assert present == [], present
    assert dataset.PatientIdentityRemoved == "YES" and dataset.Modality == "DX"
    assert "NIH Clinical Center" in dataset.ImageComments
    assert SAMPLE.name in (SAMPLES / "ATTRIBUTION.md").read_text()
    png = np.asarray(Image.open(SAMPLE.with_suffix(".png")).convert("L"), dtype=np.uint16)
    np.testing.assert_array_equal(dataset.pixel_array, png * 16)  # the shipped PNG's pixels, in 12 bits


def test_the_script_rebuilds_the_shipped_file_byte_for_byte():
    script = runpy.run_path(str(ROOT / "scripts" / "make_dicom_sample.py"))
    assert script["sample_bytes"]() == SAMPLE.read_bytes()
    assert script["main"](["--check"]) == 0


def test_the_dicom_sample_is_screened_like_its_png(capsys):
    dicom, png = (r for r, _ in Predictor().screen_paths([str(SAMPLE), str(SAMPLE.with_suffix(".png"))]))
    assert dicom.status == "screened" and not dicom.error, (dicom.error, dicom.input_note)
    assert abs(dicom.p_covid - png.p_covid) < 0.02
    assert str(SAMPLE) in expand_inputs([str(SAMPLES)])  # `make demo` (predict covidxray/samples) screens it
    assert main(["predict", str(SAMPLE)]) == 0
    assert "normal-nih-00001280_004.dcm" in capsys.readouterr().out

#!/usr/bin/env python3
"""Regenerate covidxray/samples/normal-nih-00001280_004.dcm, the shipped DICOM sample, from the shipped PNG.

The DICOM holds the same pixels as `normal-nih-00001280_004.png` (NIH ChestX-ray8, free use with
credit to the NIH Clinical Center), written as a 12-bit Digital X-Ray image for presentation with a
VOI window, the way a radiograph usually leaves a hospital. It carries no identifying tag: no patient
name, id, birth date, study date, institution or physician; `PatientIdentityRemoved` is YES. Its UIDs
are derived from the file name, so every run writes the same bytes.

    .venv/bin/python scripts/make_dicom_sample.py            # writes beside the PNG
    .venv/bin/python scripts/make_dicom_sample.py --check    # fails when the shipped file differs
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import DigitalXRayImageStorageForPresentation, generate_uid

from covidxray.imaging.dicom_writing import new_dataset, put_pixels

SAMPLES = Path(__file__).resolve().parents[1] / "covidxray" / "samples"
SOURCE = SAMPLES / "normal-nih-00001280_004.png"
TARGET = SOURCE.with_suffix(".dcm")
CREDIT = ("NIH ChestX-ray8 image 00001280_004.png (Wang et al., CVPR 2017), courtesy of the NIH Clinical Center; "
          "downscaled copy shipped with covidxray as a de-identified DICOM sample. Research use only, not for diagnosis.")


def _uid(role: str) -> str:
    """A UID derived from the sample's name and role, so the file is the same on every run."""
    return generate_uid(entropy_srcs=[f"covidxray sample {TARGET.name} {role}"])


def sample_dataset(png: Path = SOURCE) -> Dataset:
    """The DICOM dataset of the sample: the PNG's 8-bit pixels spread over 12 bits (x 16), MONOCHROME2."""
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint16) * 16
    dataset = new_dataset(DigitalXRayImageStorageForPresentation, _uid("instance"))
    dataset.StudyInstanceUID = _uid("study")
    dataset.SeriesInstanceUID = _uid("series")
    dataset.Modality = "DX"
    dataset.BodyPartExamined = "CHEST"
    dataset.PresentationIntentType = "FOR PRESENTATION"
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "scripts/make_dicom_sample.py: from a public PNG, no patient data"
    dataset.BurnedInAnnotation = "NO"
    dataset.ImageComments = CREDIT
    put_pixels(dataset, pixels, bits_stored=12)
    dataset.WindowCenter, dataset.WindowWidth = 2048, 4096
    return dataset


def sample_bytes() -> bytes:
    """The sample as a DICOM Part 10 file (preamble, file meta), byte for byte."""
    buffer = io.BytesIO()
    sample_dataset().save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = parser.parse_args(argv)
    data = sample_bytes()
    if args.check:
        if not TARGET.is_file() or TARGET.read_bytes() != data:
            print(f"{TARGET}: differs from what scripts/make_dicom_sample.py writes; rerun it", file=sys.stderr)
            return 1
        print(f"{TARGET}: up to date ({len(data) / 1000:.0f} kB)")
        return 0
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data) / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The source image's header as its result objects need it: patient and study copied as they are,
without the pixels, and with the type 2 attributes a real archive sometimes omits present but empty.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

#: Patient and study attributes every result object carries (type 2: present, possibly empty).
TYPE_2_PATIENT_AND_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                            "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def evidence_header(source: Dataset) -> Dataset:
    """A shallow copy of source without Pixel Data, every TYPE_2_PATIENT_AND_STUDY attribute present."""
    header = Dataset()
    for element in source:
        if element.keyword not in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            header.add(element)
    for keyword in TYPE_2_PATIENT_AND_STUDY:
        if keyword not in header:
            setattr(header, keyword, "")
    if hasattr(source, "file_meta"):
        header.file_meta = source.file_meta
    return header


def instance_number(source: Dataset) -> int:
    """The source's Instance Number (its results take the same number), 1 when absent or not a number."""
    try:
        return int(source.get("InstanceNumber") or 1)
    except (TypeError, ValueError):
        return 1

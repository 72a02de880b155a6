"""Which instances of a study covidxray screens: frontal-chest candidates by modality and SOP class
(CR, DX for presentation), read from QIDO answers; the input gate then refuses what is not a frontal chest.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODALITIES", "SCREENED_SOP_CLASSES", "InstanceRow", "StudyRow", "instance_row", "is_candidate", "json_value", "study_row"]

#: Modalities of the radiographs covidxray reads.
MODALITIES = ("CR", "DX")
#: SOP classes screened: CR, DX for presentation (DX for processing is the detector's raw data, not
#: meant for display), and secondary captures in a CR/DX series (digitised films).
SCREENED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1": "CR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
}


@dataclass(frozen=True)
class StudyRow:
    """A study as QIDO-RS lists it: its UID and how many instances it holds now."""

    study_uid: str
    instances: int | None


@dataclass(frozen=True)
class InstanceRow:
    """An instance as QIDO-RS lists it: where it is and what it is (no patient attribute is kept)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str


def is_candidate(row: InstanceRow) -> bool:
    """True for an instance covidxray screens (a radiograph of a CR or DX series, of a screened class)."""
    return row.modality.upper() in MODALITIES and row.sop_class_uid in SCREENED_SOP_CLASSES


def json_value(item: dict, tag: str) -> str:
    """The first value of tag (e.g. "0020000D") in a DICOM JSON object, as text; "" when absent."""
    values = (item.get(tag) or {}).get("Value") or [""]
    return str(values[0])


def study_row(item: dict) -> StudyRow:
    """A StudyRow from one QIDO-RS study answer (DICOM JSON)."""
    count = json_value(item, "00201208")
    return StudyRow(json_value(item, "0020000D"), int(count) if count.isdigit() else None)


def instance_row(item: dict, study_uid: str) -> InstanceRow:
    """An InstanceRow from one QIDO-RS instance answer (DICOM JSON)."""
    return InstanceRow(json_value(item, "0020000D") or study_uid, json_value(item, "0020000E"), json_value(item, "00080018"),
                       json_value(item, "00080016"), json_value(item, "00080060"))

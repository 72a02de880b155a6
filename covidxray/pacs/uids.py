"""The UIDs of covidxray's results, derived from what they answer: the same source image and model
always give the same UIDs, so a result stored twice is one instance in the PACS (exactly once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

#: Namespace of every covidxray result UID (a fixed, random UUID; never change it: results would repeat).
NAMESPACE = uuid.UUID("6f0d8a52-3b61-4c1e-9a4f-2d7b5e0c9a11")


def derived_uid(*parts: str) -> str:
    """A DICOM UID under the 2.25 root (ITU-T X.667: a UUID as one integer), the same for the same parts."""
    return f"2.25.{uuid.uuid5(NAMESPACE, '|'.join(parts)).int}"


@dataclass(frozen=True)
class ResultUids:
    """Where the results of one source image go: its SR and heat-map instances, and their two series."""

    report_series: str
    report: str
    picture_series: str
    picture: str


def result_uids(study_uid: str, source_uid: str, model_sha256: str) -> ResultUids:
    """The result UIDs of source image source_uid (of study study_uid) screened by the model whose
    file has model_sha256: one SR series and one heat-map series per study and model.

    Args:
        study_uid: Study Instance UID of the source image.
        source_uid: SOP Instance UID of the source image.
        model_sha256: sha256 of the checkpoint that screened it (another model's results are new results).

    Returns:
        The four UIDs.
    """
    return ResultUids(report_series=derived_uid("report-series", study_uid, model_sha256),
                      report=derived_uid("report", source_uid, model_sha256),
                      picture_series=derived_uid("picture-series", study_uid, model_sha256),
                      picture=derived_uid("picture", source_uid, model_sha256))

"""Results sent to a PACS by DIMSE (pynetdicom), for sites without DICOMweb: C-FIND asks which reports
the PACS already holds, C-STORE sends heat maps then reports. Nothing is modified or deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from covidxray.errors import CovidxrayError
from covidxray.pacs.retry import RetryPolicy, call_with_retries
from covidxray.pacs.screening import Outcome
from covidxray.pacs.sinks import in_storing_order

__all__ = ["CStoreSink", "DicomNode", "parse_node"]

#: C-STORE statuses that mean stored: success, and the warnings (coercion, elements discarded).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclass(frozen=True)
class DicomNode:
    """A DIMSE peer: AE title, host, port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_node(text: str) -> DicomNode:
    """'AETITLE@host:port' -> DicomNode; one line naming the expected form otherwise."""
    match = re.fullmatch(r"([^@\s\\]{1,16})@([^:\s]+):(\d{1,5})", text.strip())
    if not match or not 0 < int(match.group(3)) < 65536:
        raise CovidxrayError(f"'{text}': expected AETITLE@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242")
    return DicomNode(match.group(1), match.group(2), int(match.group(3)))


class CStoreSink:
    """Results C-STOREd to a DIMSE peer; which reports it holds is asked by C-FIND on the report series."""

    def __init__(self, peer: DicomNode, calling_ae_title: str, report_series: Callable[[str], str],
                 retry: RetryPolicy, say: Callable[[str], None]) -> None:
        """A sink towards peer.

        Args:
            peer: the PACS that stores the results.
            calling_ae_title: the AE title covidxray calls it as.
            report_series: study UID -> the UID of covidxray's report series in it (asked by C-FIND).
            retry: attempts and waits for each association.
            say: prints one line.
        """
        self.peer, self.calling, self.report_series = peer, calling_ae_title, report_series
        self.retry, self.say = retry, say
        self.where = f"PACS {peer}"
        self.into_pacs = True
        self._find_refused = False

    def _associate(self, contexts: list[str]):
        from pynetdicom import AE
        from pynetdicom.presentation import build_context
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        ae = AE(ae_title=self.calling)
        ae.requested_contexts = [build_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for uid in contexts]
        association = ae.associate(self.peer.host, self.peer.port, ae_title=self.peer.ae_title)
        if not association.is_established:
            raise ConnectionError(f"no association with {self.peer}")
        return association

    def stored(self, study_uid: str, listed: set[str]) -> set[str]:
        """SOP Instance UIDs in covidxray's report series of the study, by C-FIND (empty when refused)."""
        if self._find_refused:
            return set()
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = study_uid, self.report_series(study_uid), ""

        def ask() -> set[str] | None:
            association = self._associate([FIND])
            try:
                found, refused = set(), False
                for status, identifier in association.send_c_find(query, FIND):
                    code = getattr(status, "Status", None)
                    if code is None:
                        raise ConnectionError(f"{self.peer} stopped answering a C-FIND")
                    if code in (0xFF00, 0xFF01) and identifier is not None:
                        found.add(str(identifier.get("SOPInstanceUID", "")))
                    elif code != 0x0000:
                        refused = True
                return None if refused else found
            finally:
                association.release()

        found = call_with_retries(ask, f"{self.where}: C-FIND", self.retry, self.say)
        if found is None:
            self._find_refused = True
            self.say(f"{self.where}: C-FIND refused; results are sent again when asked, and their fixed UIDs keep "
                     "them single in the PACS")
            return set()
        return found

    def store(self, outcomes: list[Outcome]) -> int:
        pictures, reports = in_storing_order(outcomes)
        datasets = pictures + reports
        if not datasets:
            return 0

        def send() -> int:
            association = self._associate(sorted({str(dataset.SOPClassUID) for dataset in datasets}))
            try:
                for dataset in datasets:  # in order: the reports after every picture
                    status = association.send_c_store(dataset)
                    code = getattr(status, "Status", None)
                    if code is None:
                        raise ConnectionError(f"{self.peer} stopped answering a C-STORE")
                    if code not in STORED:
                        raise CovidxrayError(f"{self.where}: did not store {dataset.SOPInstanceUID} (status 0x{code:04X})")
            finally:
                association.release()
            return len(datasets)

        return call_with_retries(send, f"{self.where}: C-STORE", self.retry, self.say)

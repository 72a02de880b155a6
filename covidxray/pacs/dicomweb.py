"""A DICOMweb server as covidxray uses it (dicomweb-client): QIDO-RS to find studies and instances,
WADO-RS to retrieve an instance, STOW-RS to store results. Nothing here modifies or deletes anything.

Every request goes through the retry policy; a request that is not worth retrying raises at once.
"""

from __future__ import annotations

from typing import Callable, Iterable

from pydicom.dataset import Dataset

from covidxray.errors import CovidxrayError
from covidxray.pacs.connection import PacsSettings
from covidxray.pacs.retry import RetryPolicy, call_with_retries
from covidxray.pacs.selection import MODALITIES, InstanceRow, StudyRow, instance_row, json_value, study_row

__all__ = ["DicomWebPacs", "InstanceGone", "StoreRefused"]


#: Answers asked for per QIDO-RS request.
PAGE = 500
#: WADO-RS Accept header: the instance in whatever transfer syntax it is stored (PS3.18 8.7.3.5.2).
ACCEPT_ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart/related message (RFC 2387), each exactly as sent."""
    import re

    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/") or not match:
        raise ValueError("not a multipart answer")
    delimiter = b"--" + match.group(1).strip().encode("ascii")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the close delimiter
            break
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            continue
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        parts.append(content[:int(length.group(1))] if length else content.removesuffix(b"\r\n"))
    return parts


class InstanceGone(CovidxrayError):
    """An instance listed by QIDO-RS could not be retrieved (deleted meanwhile, or refused by the server)."""


class StoreRefused(CovidxrayError):
    """The server answered a STOW-RS request but did not store every instance."""


class DicomWebPacs:
    """QIDO-RS, WADO-RS and STOW-RS against one DICOMweb service root."""

    def __init__(self, settings: PacsSettings, retry: RetryPolicy, say: Callable[[str], None]) -> None:
        """A client of settings.url (nothing is sent yet).

        Args:
            settings: URL, credentials, TLS verification and time-out.
            retry: attempts and waits for each request.
            say: prints one line (each retry is announced).
        """
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.settings, self.retry, self.say = settings, retry, say
        session = requests.Session()
        session.verify = settings.verify  # on by default; a CA bundle for a site's own authority
        credentials = settings.credentials
        if credentials.token:
            session.headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.user:
            session.auth = (credentials.user, credentials.password)
        self.client = DICOMwebClient(settings.url, session=session, timeout=settings.timeout)
        self.client.set_http_retry_params(retry=False)  # one retry policy, ours, with its messages

    def _call(self, action, what: str):
        return call_with_retries(action, f"PACS {self.settings.url}: {what}", self.retry, self.say)

    def _paged(self, search, what: str, key: str) -> list[dict]:
        """Every answer of a QIDO-RS search, PAGE at a time (limit and offset). A server that ignores the
        offset (repeats a page) ends the listing instead of looping: answers are kept once, by key tag."""
        answers: dict[str, dict] = {}
        offset = 0
        while True:
            page = self._call(lambda start=offset: search({"limit": PAGE, "offset": start}), what)
            fresh = [item for item in page if json_value(item, key) not in answers]
            answers.update((json_value(item, key), item) for item in fresh)
            if len(page) < PAGE or not fresh:
                return list(answers.values())
            offset += len(page)

    def find_studies(self, study_uids: Iterable[str] = (), date_from: str | None = None,
                     date_to: str | None = None) -> list[StudyRow]:
        """Studies holding CR or DX images (QIDO-RS), each with its current number of instances.

        Args:
            study_uids: only these studies (each looked up, whatever its modalities); empty: search.
            date_from: earliest StudyDate, YYYYMMDD (inclusive), or None.
            date_to: latest StudyDate, YYYYMMDD (inclusive), or None.

        Returns:
            One StudyRow per study, in the server's order, each once.
        """
        filters: dict[str, str] = {}
        if date_from or date_to:
            filters["StudyDate"] = f"{date_from or ''}-{date_to or ''}"
        queries = ([{"StudyInstanceUID": uid} for uid in study_uids] if study_uids
                   else [{**filters, "ModalitiesInStudy": modality} for modality in MODALITIES])
        found: dict[str, StudyRow] = {}
        for query in queries:
            answers = self._paged(lambda page, query=query: self.client.search_for_studies(search_filters=query, **page),
                                  "searching studies", "0020000D")
            for item in answers:
                row = study_row(item)
                if row.study_uid:
                    found.setdefault(row.study_uid, row)
        return list(found.values())

    def instances(self, study_uid: str) -> list[InstanceRow]:
        """Every instance of a study (QIDO-RS), results of covidxray included."""
        answers = self._paged(lambda page: self.client.search_for_instances(study_instance_uid=study_uid, **page),
                              f"listing study {study_uid}", "00080018")
        return [instance_row(item, study_uid) for item in answers]

    def retrieve(self, row: InstanceRow) -> bytes:
        """The instance's file as the server holds it (WADO-RS, any transfer syntax: never transcoded);
        InstanceGone when the server cannot give it."""
        import requests

        url = f"{self.settings.url}/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_uid}"

        def get() -> bytes:
            response = self.client._session.get(url, headers={"Accept": ACCEPT_ANY_DICOM}, timeout=self.settings.timeout)
            response.raise_for_status()
            parts = multipart_parts(response.headers.get("Content-Type", ""), response.content)
            if len(parts) != 1:
                raise InstanceGone(f"instance {row.sop_uid}: the PACS answered with {len(parts)} parts, not one")
            return parts[0]

        try:
            return self._call(get, f"retrieving {row.sop_uid}")
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise InstanceGone(f"instance {row.sop_uid}: the PACS did not give it (HTTP {status})") from None

    def store(self, datasets: list[Dataset]) -> None:
        """Store datasets in one STOW-RS request; StoreRefused names the instances the server failed."""
        if not datasets:
            return
        answer = self._call(lambda: self.client.store_instances(datasets), f"storing {len(datasets)} result(s)")
        failed = [str(item.get("ReferencedSOPInstanceUID", "?")) for item in answer.get("FailedSOPSequence", [])]
        if failed:
            raise StoreRefused(f"PACS {self.settings.url}: did not store {', '.join(failed)}")

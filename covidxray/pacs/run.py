"""One pass of `covidxray pacs screen` over a DICOMweb server: find the studies, skip what has its result,
retrieve the rest in threads while the model works, store each result, remember the finished studies.

Exactly once: a result's UIDs are derived from the source image and the model, so the PACS itself says
which images are done (their SR is listed in the study); heat maps are stored before reports; and a
result stored twice is one instance. The local state only saves queries on studies that did not change.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from covidxray.pacs.dicomweb import DicomWebPacs, InstanceGone
from covidxray.pacs.retry import PacsUnavailable
from covidxray.pacs.screening import Outcome, Screener, SourceImage
from covidxray.pacs.selection import InstanceRow, StudyRow, is_candidate
from covidxray.pacs.sinks import ResultSink
from covidxray.pacs.state import RunState

__all__ = ["RunSummary", "Selection", "screen_pass"]

#: Instances retrieved at once (WADO-RS requests in flight) while the model screens the batch before.
RETRIEVE_THREADS = 4


@dataclass(frozen=True)
class Selection:
    """Which studies a pass looks at: named ones, a StudyDate range, or (neither) every CR/DX study."""

    study_uids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    @property
    def named(self) -> bool:
        return bool(self.study_uids)


@dataclass
class RunSummary:
    """What a pass came to, counted."""

    studies: int = 0
    unchanged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    already: int = 0
    not_candidates: int = 0
    skipped: int = 0
    written: int = 0

    @property
    def screened(self) -> int:
        return sum(self.statuses.values())

    def add(self, other: "RunSummary") -> None:
        for name in ("studies", "unchanged", "already", "not_candidates", "skipped", "written"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    def line(self) -> str:
        """The pass in one line (counts only)."""
        statuses = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items())) or "none"
        return (f"{self.studies} studies ({self.unchanged} unchanged since the last run); images screened: {statuses}; "
                f"{self.already} already had a result; {self.not_candidates} other instances not screened "
                f"(not CR/DX radiographs, or results); {self.skipped} skipped (could not be retrieved or parsed); "
                f"{self.written} result objects stored")


def screen_pass(pacs: DicomWebPacs, screener: Screener, sink: ResultSink, state: RunState, selection: Selection,
                say: Callable[[str], None], batch_size: int = 16) -> RunSummary:
    """Screen every candidate of the selected studies that has no result yet, storing each result.

    Args:
        pacs: the DICOMweb server read from.
        screener: the model, and how its results become DICOM objects.
        sink: where results are stored (the same PACS, or a folder for a dry run).
        state: studies finished before (skipped while unchanged, unless named), updated after each study.
        selection: which studies.
        say: prints one line (UIDs and counts only).
        batch_size: images screened together.

    Returns:
        The pass's counts.
    """
    summary = RunSummary()
    studies = pacs.find_studies(selection.study_uids, selection.date_from, selection.date_to)
    if selection.named:
        missing = set(selection.study_uids) - {study.study_uid for study in studies}
        for uid in sorted(missing):
            say(f"study {uid}: not found in the PACS")
    with ThreadPoolExecutor(RETRIEVE_THREADS, thread_name_prefix="wado") as pool:
        for study in studies:
            summary.studies += 1
            if not selection.named and state.unchanged(study.study_uid, study.instances):
                summary.unchanged += 1
                continue
            summary.add(_screen_study(pacs, screener, sink, state, study, pool, say, batch_size))
    state.finish_run()
    return summary


def _screen_study(pacs: DicomWebPacs, screener: Screener, sink: ResultSink, state: RunState, study: StudyRow,
                  pool: ThreadPoolExecutor, say: Callable[[str], None], batch_size: int) -> RunSummary:
    summary = RunSummary()
    rows = pacs.instances(study.study_uid)
    stored = sink.stored(study.study_uid, {row.sop_uid for row in rows})
    candidates = [row for row in rows if is_candidate(row)]
    summary.not_candidates = len(rows) - len(candidates)
    todo = [row for row in candidates if screener.uids(row.study_uid, row.sop_uid).report not in stored]
    summary.already = len(candidates) - len(todo)
    # Three stages overlap: retrieving (threads), scoring (the model), building and storing the results
    # (one thread, batches in order, so every report still follows its own picture).
    with ThreadPoolExecutor(1, thread_name_prefix="results") as writer:
        storing: Future | None = None
        for sources in _retrieved_batches(pacs, todo, pool, batch_size, say, summary):
            scored = screener.score(sources)
            if storing is not None:
                _count(storing.result(), summary, say)
            storing = writer.submit(_store, screener, sink, scored)
        if storing is not None:
            _count(storing.result(), summary, say)
    if not summary.skipped:  # a skipped instance is tried again by the next pass
        # The count the study has now: as listed, plus what this pass stored into it (a dry run stores elsewhere).
        state.finished(study.study_uid, len(rows) + (summary.written if sink.into_pacs else 0))
    return summary


def _store(screener: Screener, sink: ResultSink, scored: list) -> tuple[list[Outcome], int]:
    """Build the result objects of a scored batch and store them: (outcomes, objects stored)."""
    outcomes = screener.results(scored)
    return outcomes, sink.store(outcomes)


def _count(stored: tuple[list[Outcome], int], summary: RunSummary, say: Callable[[str], None]) -> None:
    outcomes, written = stored
    summary.written += written
    for outcome in outcomes:
        summary.statuses[outcome.status] = summary.statuses.get(outcome.status, 0) + 1
        say(_line(outcome))


def _retrieved_batches(pacs: DicomWebPacs, rows: list[InstanceRow], pool: ThreadPoolExecutor, batch_size: int,
                       say: Callable[[str], None], summary: RunSummary) -> Iterator[list[SourceImage]]:
    """Batches of retrieved sources; the next batch is retrieved while the caller screens this one.
    An instance that cannot be retrieved or parsed is one line and skipped; the run goes on."""
    batches = [rows[start:start + batch_size] for start in range(0, len(rows), batch_size)]
    pending: list[Future] = [pool.submit(_retrieve, pacs, row) for row in batches[0]] if batches else []
    for number in range(len(batches)):
        current = pending
        pending = [pool.submit(_retrieve, pacs, row) for row in batches[number + 1]] if number + 1 < len(batches) else []
        sources = []
        for future in current:
            source, problem = future.result()
            if source is None:
                summary.skipped += 1
                say(problem)
            else:
                sources.append(source)
        if sources:
            yield sources


def _retrieve(pacs: DicomWebPacs, row: InstanceRow) -> tuple[SourceImage | None, str]:
    """(the source, "") or (None, the one-line reason it is skipped); a PACS that stays down raises."""
    try:
        data = pacs.retrieve(row)
    except InstanceGone as exc:
        return None, f"{exc}; skipped"
    except PacsUnavailable:
        raise
    try:
        source = SourceImage.from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - a malformed instance is skipped, the run goes on
        return None, f"instance {row.sop_uid}: malformed, cannot be parsed ({type(exc).__name__}); skipped"
    if str(source.dataset.get("SOPInstanceUID", "")) != row.sop_uid or "StudyInstanceUID" not in source.dataset:
        return None, f"instance {row.sop_uid}: malformed (its UIDs do not match the listing); skipped"
    return source, ""


def _line(outcome: Outcome) -> str:
    return f"{outcome.status:8} {outcome.source_uid}  {outcome.message}"

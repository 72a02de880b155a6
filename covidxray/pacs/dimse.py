"""`covidxray pacs listen`: a DICOM storage SCP (pynetdicom) that a modality or router sends images to;
each CR/DX radiograph received is screened and its results are sent on, for sites without DICOMweb.

Exactly once: an image is written to the spool folder (fsynced) before the sender is told it is stored,
and deleted from it only after its results are stored; a listener stopped at any moment screens its
spool when started again, skipping the images whose report the destination already holds.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from covidxray.pacs.screening import Screener, SourceImage
from covidxray.pacs.selection import InstanceRow, is_candidate
from covidxray.pacs.sinks import ResultSink

__all__ = ["StorageListener"]

#: Seconds to wait before trying the spool again after the destination stayed down.
DOWN_PAUSE = 10.0
#: C-STORE status: out of resources (the image could not be spooled; the sender may send it again).
OUT_OF_RESOURCES = 0xA700


class StorageListener:
    """A storage SCP with a spool folder and one worker that screens what arrives, in batches."""

    def __init__(self, screener: Screener, sink: ResultSink, spool: Path, ae_title: str,
                 say: Callable[[str], None], batch_size: int = 8) -> None:
        """A listener, not yet listening (start() does).

        Args:
            screener: the model and how its results become DICOM objects.
            sink: where results go (C-STORE to the PACS, or a folder).
            spool: folder of received images waiting for their results (created when missing).
            ae_title: this SCP's AE title.
            say: prints one line (UIDs and counts only).
            batch_size: most images screened together.
        """
        self.screener, self.sink, self.spool, self.ae_title = screener, sink, Path(spool), ae_title
        self.say, self.batch_size = say, batch_size
        self.spool.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Path] = queue.Queue()
        self._stop = threading.Event()
        self._server = None
        self._worker: threading.Thread | None = None
        self.counts: dict[str, int] = {}

    # --- receiving --------------------------------------------------------------------------

    def start(self, host: str, port: int) -> None:
        """Listen on host:port and start screening; images left in the spool by an earlier run go first."""
        from pynetdicom import ALL_TRANSFER_SYNTAXES, AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        for path in sorted(self.spool.glob("*.dcm")):
            self._queue.put(path)
        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self._worker = threading.Thread(target=self._work, name="screening", daemon=True)
        self._worker.start()
        self._server = ae.start_server((host, port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._received)])

    def _received(self, event) -> int:
        """C-STORE handler: spool a candidate durably, then answer success; other instances are acknowledged
        and dropped (covidxray is not an archive)."""
        from pydicom import dcmread

        try:
            data = event.encoded_dataset(include_meta=True)
            header = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
            row = InstanceRow(str(header.get("StudyInstanceUID", "")), str(header.get("SeriesInstanceUID", "")),
                              str(header.get("SOPInstanceUID", "")), str(event.request.AffectedSOPClassUID),
                              str(header.get("Modality", "")))
        except Exception as exc:  # noqa: BLE001 - malformed: logged, acknowledged, not screened
            self.say(f"received an instance that cannot be parsed ({type(exc).__name__}); skipped")
            return 0x0000
        if not is_candidate(row) or not row.sop_uid or not row.study_uid:
            return 0x0000
        path = self.spool / f"{row.sop_uid}.dcm"
        try:
            partial = path.with_name(f".{path.name}.partial")
            with open(partial, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            self.say(f"instance {row.sop_uid}: cannot spool it ({exc.strerror or exc}); the sender is told to retry")
            return OUT_OF_RESOURCES
        self._queue.put(path)
        return 0x0000

    # --- screening --------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch:
                self._screen(batch)

    def _next_batch(self) -> list[Path]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return sorted(set(batch))

    def _screen(self, paths: list[Path]) -> None:
        from covidxray.errors import CovidxrayError

        sources, spooled = [], {}
        for path in paths:
            try:
                source = SourceImage.from_bytes(path.read_bytes())
            except FileNotFoundError:
                continue  # the same image sent twice, already done
            except Exception as exc:  # noqa: BLE001 - malformed: logged and skipped
                self.say(f"instance {path.stem}: malformed, cannot be parsed ({type(exc).__name__}); skipped")
                path.unlink(missing_ok=True)
                continue
            spooled[source.sop_uid] = path
            sources.append(source)
        try:
            sources = self._not_done(sources, spooled)
            outcomes = self.screener.screen(sources) if sources else []
            self.sink.store(outcomes)
        except CovidxrayError as exc:  # the destination is down (after the retries) or refused: keep the spool
            self.say(f"{exc}; the images stay in the spool and are tried again in {DOWN_PAUSE:g} s")
            self._stop.wait(DOWN_PAUSE)
            for path in spooled.values():
                self._queue.put(path)
            return
        for outcome in outcomes:
            self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
            self.say(f"{outcome.status:8} {outcome.source_uid}  {outcome.message}")
        for path in spooled.values():
            path.unlink(missing_ok=True)

    def _not_done(self, sources: list[SourceImage], spooled: dict[str, Path]) -> list[SourceImage]:
        """sources without a report at the destination; the done ones leave the spool."""
        stored: dict[str, set[str]] = {}
        todo = []
        for source in sources:
            if source.study_uid not in stored:
                stored[source.study_uid] = self.sink.stored(source.study_uid, set())
            if self.screener.uids(source.study_uid, source.sop_uid).report in stored[source.study_uid]:
                self.say(f"{'done':8} {source.sop_uid}  already has its result; not screened again")
                spooled.pop(source.sop_uid).unlink(missing_ok=True)
            else:
                todo.append(source)
        return todo

    # --- stopping ---------------------------------------------------------------------------

    def idle(self) -> bool:
        """True when nothing waits in the queue (the worker may still be finishing a batch)."""
        return self._queue.empty()

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop listening; give the worker up to drain_seconds to finish what is queued (the rest stays spooled)."""
        if self._server is not None:
            self._server.shutdown()
        deadline = time.monotonic() + drain_seconds
        while drain_seconds and not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=60)

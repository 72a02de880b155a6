"""What `covidxray pacs screen` remembers between runs: for each study it finished, how many instances
the study held then, so that the next run ("everything new since the last run") lists only studies
that changed. A cache, not the truth: which image has a result is read from the PACS itself, so a lost,
stale or deleted state file costs queries, never a missed image or a duplicate result.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

from covidxray.errors import CovidxrayError

__all__ = ["RunState", "default_state_path"]

FORMAT = 1


def default_state_path(url: str, model_sha256: str) -> Path:
    """$XDG_STATE_HOME/covidxray/pacs/<server and model>.json (~/.local/state when unset): one file per
    PACS and model, so a new model re-examines every study and two servers never share a file."""
    root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    key = hashlib.sha256(f"{url}|{model_sha256}".encode()).hexdigest()[:16]
    return root / "covidxray" / "pacs" / f"{key}.json"


class RunState:
    """Studies already screened through (study UID -> its instance count then); saved after each study.

    path None keeps the state in memory only (a dry run must not make a later real run skip studies).
    """

    def __init__(self, path: Path | None, url: str, model_sha256: str) -> None:
        """The state at path (empty when it is missing, unreadable, or of another server or model).

        Args:
            path: the state file; None keeps it in memory.
            url: the DICOMweb server it belongs to.
            model_sha256: the checkpoint it belongs to.
        """
        self.path, self.url, self.model_sha256 = path, url, model_sha256
        self.studies: dict[str, int] = {}
        self.last_run = ""
        self.note = ""  # why the saved state was not used, for one line on the console
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("model_sha256") != self.model_sha256 or data.get("url") != self.url:
                self.note = f"{path}: state of another server, model or format; every study is examined again"
                return
            self.studies = {str(uid): int(count) for uid, count in data.get("studies", {}).items()}
            self.last_run = str(data.get("last_run", ""))
        except (OSError, ValueError, TypeError, AttributeError):
            self.note = f"{path}: unreadable state file; every study is examined again (the PACS says what is done)"

    def unchanged(self, study_uid: str, instances: int | None) -> bool:
        """True when the study was screened through and holds as many instances as it did then."""
        return instances is not None and self.studies.get(study_uid) == instances

    def finished(self, study_uid: str, instances: int) -> None:
        """Record that every candidate of the study has its result; the study then held instances."""
        self.studies[study_uid] = instances
        self.save()

    def finish_run(self) -> None:
        """Record the end of a complete pass over the studies asked for."""
        self.last_run = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.save()

    def save(self) -> None:
        """Write the state atomically (a kill -9 leaves the old file or the new one, never half of one)."""
        if self.path is None:
            return
        data = {"format": FORMAT, "url": self.url, "model_sha256": self.model_sha256, "last_run": self.last_run,
                "studies": self.studies}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, self.path)
        except OSError as exc:
            raise CovidxrayError(f"{self.path}: cannot write the state file ({exc.strerror or exc})") from None

"""The settings of one `covidxray serve`: one dataclass, read from the command line or, in each worker
process of `--workers N`, from the environment the command set. Light (no FastAPI), so the CLI can
check them before anything heavy is imported.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from covidxray.errors import CovidxrayError

__all__ = ["DEFAULT_MAX_CONCURRENT", "DEFAULT_MAX_UPLOAD_MB", "ServeSettings", "TOKEN_VARIABLE", "is_loopback",
           "read_token_file"]

#: Largest accepted upload in MiB (the page says it; larger uploads get 413).
DEFAULT_MAX_UPLOAD_MB = 25.0
#: Screenings running at once in one process; one more gets 429 (each holds a decoded image, up to ~200 MB).
DEFAULT_MAX_CONCURRENT = 4
#: The API token, when the service asks for one: the environment variable people set.
TOKEN_VARIABLE = "COVIDXRAY_API_TOKEN"
#: ServeSettings field -> the environment variable a worker process reads it from.
ENVIRONMENT = {"model": "COVIDXRAY_SERVE_MODEL", "max_upload_mb": "COVIDXRAY_SERVE_MAX_UPLOAD_MB",
               "use_gate": "COVIDXRAY_SERVE_GATE", "max_concurrent": "COVIDXRAY_SERVE_MAX_CONCURRENT",
               "token": TOKEN_VARIABLE}


@dataclass(frozen=True)
class ServeSettings:
    """What one served app needs: the model, the limits, and who may use it.

    token: when set, every page and API call but /api/v1/health needs it (Bearer header, or the
    cookie the page's sign-in sets); None serves without one (loopback, or --no-auth on purpose).
    """

    model: str | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    use_gate: bool = True
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    token: str | None = None

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise CovidxrayError(f"max_upload_mb must be positive, got {self.max_upload_mb}")
        if self.max_concurrent < 1:
            raise CovidxrayError(f"max_concurrent must be at least 1, got {self.max_concurrent}")
        if self.token is not None and len(self.token) < 16:
            raise CovidxrayError(f"the API token is {len(self.token)} characters long; use at least 16 "
                                 "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")

    def as_environment(self) -> dict[str, str]:
        """These settings as the environment variables from_environment reads (for worker processes)."""
        values = {"model": self.model or "", "max_upload_mb": repr(float(self.max_upload_mb)),
                  "use_gate": "1" if self.use_gate else "0", "max_concurrent": str(self.max_concurrent),
                  "token": self.token or ""}
        return {ENVIRONMENT[name]: value for name, value in values.items()}

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> "ServeSettings":
        """The settings `covidxray serve` put in the environment; defaults where a variable is absent."""
        env = os.environ if environ is None else environ
        return cls(model=env.get(ENVIRONMENT["model"]) or None,
                   max_upload_mb=float(env.get(ENVIRONMENT["max_upload_mb"]) or DEFAULT_MAX_UPLOAD_MB),
                   use_gate=env.get(ENVIRONMENT["use_gate"], "1") != "0",
                   max_concurrent=int(env.get(ENVIRONMENT["max_concurrent"]) or DEFAULT_MAX_CONCURRENT),
                   token=env.get(TOKEN_VARIABLE) or None)


def read_token_file(path: Path) -> str:
    """The token in path (its first line, spaces cut); one line naming the file when it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CovidxrayError(f"{path}: cannot read the token file ({type(exc).__name__})") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise CovidxrayError(f"{path}: the token file is empty")
    return token


def is_loopback(host: str) -> bool:
    """True when host only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address

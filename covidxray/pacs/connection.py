"""How covidxray reaches a DICOMweb server: its URL, credentials and TLS settings, checked once.

Credentials come from the environment or from a file, never from the command line (where `ps` and
shell history would show them) and never into a message; TLS certificates are always verified.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from covidxray.errors import CovidxrayError

__all__ = ["ENV_CREDENTIALS", "ENV_PASSWORD", "ENV_TOKEN", "ENV_URL", "ENV_USER", "Credentials", "PacsSettings",
           "load_credentials", "pacs_settings"]

ENV_URL = "COVIDXRAY_PACS_URL"
ENV_USER = "COVIDXRAY_PACS_USER"
ENV_PASSWORD = "COVIDXRAY_PACS_PASSWORD"
ENV_TOKEN = "COVIDXRAY_PACS_TOKEN"
ENV_CREDENTIALS = "COVIDXRAY_PACS_CREDENTIALS"


@dataclass(frozen=True)
class Credentials:
    """HTTP basic user and password, or a bearer token; repr never shows a secret."""

    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    @property
    def kind(self) -> str:
        return "token" if self.token else "user and password" if self.user else "none"

    def __repr__(self) -> str:
        return f"Credentials({self.kind})"


@dataclass(frozen=True)
class PacsSettings:
    """A DICOMweb service root (e.g. http://127.0.0.1:8042/dicom-web) and how to talk to it."""

    url: str
    credentials: Credentials = Credentials()
    #: True (the system's certificates), or a CA bundle file for a site's own certificate authority.
    verify: bool | str = True
    #: Seconds to wait for a connection and for each answer.
    timeout: float = 30.0


def pacs_settings(url: str | None, credentials_file: Path | None = None, ca_bundle: Path | None = None,
                  timeout: float = 30.0) -> PacsSettings:
    """Settings from the command line's URL (or COVIDXRAY_PACS_URL) and the environment's credentials.

    Args:
        url: the DICOMweb service root; None takes COVIDXRAY_PACS_URL.
        credentials_file: a JSON file {"user": ..., "password": ...} or {"token": ...}; None takes
            COVIDXRAY_PACS_CREDENTIALS, else COVIDXRAY_PACS_USER/_PASSWORD or COVIDXRAY_PACS_TOKEN.
        ca_bundle: a PEM file of the certificate authorities to trust instead of the system's.
        timeout: seconds to wait for a connection and for each answer.

    Returns:
        The checked settings.
    """
    url = (url or os.environ.get(ENV_URL, "")).strip()
    if not url:
        raise CovidxrayError(f"no PACS: give --url http://host:port/dicom-web or set {ENV_URL}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CovidxrayError("--url: expected http(s)://host[:port]/path of the DICOMweb service")
    if parts.username or parts.password:
        raise CovidxrayError(f"--url: credentials do not belong in the URL; set {ENV_USER} and {ENV_PASSWORD}, "
                             f"or {ENV_CREDENTIALS}=FILE")
    if parts.query or parts.fragment:
        raise CovidxrayError("--url: the DICOMweb service root takes no query or fragment")
    verify: bool | str = True
    if ca_bundle is not None:
        if not Path(ca_bundle).is_file():
            raise CovidxrayError(f"{ca_bundle}: CA bundle not found")
        verify = str(ca_bundle)
    if timeout <= 0:
        raise CovidxrayError(f"--timeout {timeout}: must be more than 0 seconds")
    return PacsSettings(url.rstrip("/"), load_credentials(credentials_file), verify, float(timeout))


def load_credentials(path: Path | None = None) -> Credentials:
    """Credentials from a file (path, else COVIDXRAY_PACS_CREDENTIALS), else from the environment."""
    path = path or (Path(os.environ[ENV_CREDENTIALS]) if os.environ.get(ENV_CREDENTIALS) else None)
    if path is not None:
        return _from_file(Path(path))
    user, password, token = (os.environ.get(name, "") for name in (ENV_USER, ENV_PASSWORD, ENV_TOKEN))
    if user and token:
        raise CovidxrayError(f"set either {ENV_USER}/{ENV_PASSWORD} or {ENV_TOKEN}, not both")
    if bool(user) != bool(password):
        raise CovidxrayError(f"{ENV_USER} and {ENV_PASSWORD} go together: set both or neither")
    return Credentials(user, password, token)


def _from_file(path: Path) -> Credentials:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise CovidxrayError(f"{path}: cannot read the credentials file ({exc.strerror or exc})") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        from covidxray.console import console

        console.print(f"warning: {path} can be read by other users; chmod 600 it")
    try:
        data = json.loads(text)
    except ValueError:
        raise CovidxrayError(f"{path}: expected JSON: {{\"user\": ..., \"password\": ...}} or {{\"token\": ...}}") from None
    if not isinstance(data, dict) or not ({"user", "password"} <= set(data) or "token" in data):
        raise CovidxrayError(f"{path}: expected the keys user and password, or token")
    return Credentials(str(data.get("user", "")), str(data.get("password", "")), str(data.get("token", "")))

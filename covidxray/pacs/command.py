"""`covidxray pacs screen` (DICOMweb) and `covidxray pacs listen` (DIMSE storage SCP): screen the chest
radiographs of a PACS with the predict model and store an SR and a heat-map capture beside each.

Only light modules are imported here: the CLI mounts this module on every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from covidxray.errors import CovidxrayError

app = typer.Typer(name="pacs", no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Screen chest radiographs in a PACS (DICOMweb or DIMSE) and store the results beside them "
                       "as DICOM SR and heat-map secondary captures (docs/pacs.md).")

_MODEL = typer.Option(None, "--model", "-m", help="Checkpoint; default: the model bundled with covidxray.")
_BACKEND = typer.Option("auto", "--backend", help="auto (ONNX Runtime when an exported model exists), torch or onnx.")
_BATCH = typer.Option(16, "--batch-size", min=1, help="Images screened together.")
_HEATMAPS = typer.Option(True, "--heatmaps/--no-heatmaps", help="Store the captioned Grad-CAM picture of each scored image as a secondary capture.")
_RETRIES = typer.Option(6, "--retries", min=1, help="Attempts per request when the PACS is down or answers with errors (waits 1, 2, 4 ... 30 s).")


@app.command("screen")
def screen_command(
    url: Optional[str] = typer.Option(None, "--url", help="DICOMweb service root, e.g. Orthanc's /dicom-web (default: the environment's COVIDXRAY_PACS_URL)."),
    study: Optional[list[str]] = typer.Option(None, "--study", help="Study Instance UID to screen (repeatable); default: every CR/DX study new or changed since the last run."),
    date_from: Optional[str] = typer.Option(None, "--from", help="Only studies on or after this StudyDate (YYYY-MM-DD, or today)."),
    date_to: Optional[str] = typer.Option(None, "--to", help="Only studies on or before this StudyDate (YYYY-MM-DD, or today)."),
    watch: bool = typer.Option(False, "--watch", help="Keep polling for new images until stopped (Ctrl-C)."),
    every: float = typer.Option(60.0, "--every", min=1.0, help="Seconds between polls with --watch."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="Write the SR and secondary captures to this folder instead of storing them in the PACS."),
    state: Optional[Path] = typer.Option(None, "--state", help="State file of the studies already screened through (default: in covidxray/pacs under the XDG state folder)."),
    credentials: Optional[Path] = typer.Option(None, "--credentials", help="JSON file with user and password, or token (default: from the environment, see docs/pacs.md)."),
    ca_bundle: Optional[Path] = typer.Option(None, "--ca-bundle", help="PEM file of the certificate authorities to trust for https (TLS is always verified)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the PACS to connect and to answer each request."),
    retries: int = _RETRIES,
    model: Optional[Path] = _MODEL,
    backend: str = _BACKEND,
    batch_size: int = _BATCH,
    heatmaps: bool = _HEATMAPS,
) -> None:
    """Screen the CR/DX chest radiographs of a DICOMweb PACS; store an SR (and a heat map) beside each, once."""
    _check_extra()
    from covidxray.pacs.connection import pacs_settings
    from covidxray.pacs.privacy import quiet_libraries
    from covidxray.pacs.run import Selection

    settings = pacs_settings(url, credentials, ca_bundle, timeout)
    selection = Selection(tuple(dict.fromkeys(study or ())), _study_date(date_from, "--from"), _study_date(date_to, "--to"))
    if dry_run is not None:
        _check_dry_run(dry_run)
    from covidxray.pacs.session import screen_session

    with quiet_libraries():
        status = screen_session(settings, selection, watch=watch, every=every, dry_run=dry_run, state_path=state,
                                retries=retries, model=model, backend=backend, batch_size=batch_size, heatmaps=heatmaps)
    if status:
        raise typer.Exit(status)


@app.command("listen")
def listen_command(
    port: int = typer.Option(11112, "--port", help="TCP port of the storage SCP."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 for modalities and routers on the network."),
    ae_title: str = typer.Option("COVIDXRAY", "--ae-title", help="This SCP's AE title (also the calling AE title towards --send-to)."),
    send_to: Optional[str] = typer.Option(None, "--send-to", help="Where results are C-STOREd: AETITLE@HOST:PORT of the PACS."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="Write the results to this folder instead of sending them."),
    spool: Optional[Path] = typer.Option(None, "--spool", help="Folder holding received images until their results are stored (default: in covidxray/pacs under the XDG state folder)."),
    retries: int = _RETRIES,
    model: Optional[Path] = _MODEL,
    backend: str = _BACKEND,
    batch_size: int = _BATCH,
    heatmaps: bool = _HEATMAPS,
) -> None:
    """Receive images by DICOM C-STORE, screen each CR/DX radiograph, C-STORE its SR and heat map to the PACS."""
    _check_extra()
    from covidxray.pacs.privacy import quiet_libraries

    if (send_to is None) == (dry_run is None):
        raise CovidxrayError("give one of --send-to AETITLE@HOST:PORT (the PACS for the results) or --dry-run FOLDER")
    if not 0 < port < 65536:
        raise CovidxrayError(f"--port {port}: must be in 1..65535")
    if not 0 < len(ae_title.strip()) <= 16:
        raise CovidxrayError(f"--ae-title '{ae_title}': 1 to 16 characters")
    if dry_run is not None:
        _check_dry_run(dry_run)
    from covidxray.pacs.session import listen_session

    with quiet_libraries():
        listen_session(host=host, port=port, ae_title=ae_title.strip(), send_to=send_to, dry_run=dry_run, spool=spool,
                       retries=retries, model=model, backend=backend, batch_size=batch_size, heatmaps=heatmaps)


def _check_extra() -> None:
    """One line naming the extra when a PACS library is missing."""
    import importlib.util

    missing = [name for name in ("highdicom", "dicomweb_client", "pynetdicom") if importlib.util.find_spec(name) is None]
    if missing:
        raise CovidxrayError(f"the pacs commands need their extra ({', '.join(missing)} not installed): "
                             "pip install 'covidxray[pacs]'")


def _study_date(text: Optional[str], option: str) -> Optional[str]:
    """'2024-03-01', '20240301' or 'today' -> '20240301' (the DICOM DA form)."""
    if text is None:
        return None
    import datetime

    if text.strip().lower() == "today":
        return datetime.date.today().strftime("%Y%m%d")
    for form in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.datetime.strptime(text.strip(), form).strftime("%Y%m%d")
        except ValueError:
            continue
    raise CovidxrayError(f"{option} '{text}': expected a date as YYYY-MM-DD (or today)")


def _check_dry_run(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise CovidxrayError(f"--dry-run {folder}: exists and is not a folder")

"""`covidxray serve`: the web page and JSON API on uvicorn, with the model loaded once.

Only this command imports FastAPI and uvicorn, so the rest of the CLI works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError
from covidxray.serve.settings import (DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_UPLOAD_MB, TOKEN_VARIABLE, ServeSettings,
                                      is_loopback, read_token_file)


#: The commands of this module, mounted at the top level of the CLI (covidxray.cli).
app = typer.Typer(pretty_exceptions_enable=False)


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 exposes the service to the network (then a token is required)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; default: the model bundled with covidxray."),
    max_upload_mb: float = typer.Option(DEFAULT_MAX_UPLOAD_MB, "--max-upload-mb", help="Largest accepted upload in MiB; larger ones get HTTP 413."),
    max_concurrent: int = typer.Option(DEFAULT_MAX_CONCURRENT, "--max-concurrent", help="Screenings running at once per worker; one more gets HTTP 429."),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Flag inputs that are not frontal chest radiographs instead of scoring them."),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the model (about 0.3 GB each); requests are shared among them."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help=f"File holding the API token (else ${TOKEN_VARIABLE}); the page and API then ask for it."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Listen beyond loopback without a token, on purpose (e.g. behind a proxy that authenticates)."),
) -> None:
    """Serve the page (/) and the API (/api/v1/predict, /api/v1/model, /api/v1/health; docs at /docs)."""
    import os

    token = read_token_file(token_file) if token_file else os.environ.get(TOKEN_VARIABLE) or None
    if no_auth and token:
        raise typer.BadParameter("--no-auth with a token: choose one")
    if not is_loopback(host) and not token and not no_auth:
        raise CovidxrayError(f"--host {host} lets anyone who can reach this machine upload patients' films: set "
                             f"{TOKEN_VARIABLE} (or --token-file FILE), or add --no-auth if something else guards it")
    try:
        import uvicorn

        from covidxray.serve.app import build_app
    except ImportError as exc:
        raise CovidxrayError(f"serve needs its extra ({exc.name or exc} is not installed): "
                             "pip install 'covidxray[serve]'") from None
    if not 0 < port < 65536:
        raise typer.BadParameter(f"port must be in 1..65535, got {port}")
    if workers < 1:
        raise typer.BadParameter(f"--workers must be at least 1, got {workers}")
    settings = ServeSettings(str(model.resolve()) if model else None, max_upload_mb, gate, max_concurrent, token)
    web_app = build_app(settings)  # a bad model or gate stops here, in one line
    access = "the API token is required" if token else "no token (anyone who can reach it may upload)"
    typer.echo(f"covidxray serving on http://{host}:{port}/ with {workers} worker(s) (API docs: /docs); {access}. {RESEARCH_NOTICE}")
    if no_auth and not is_loopback(host):
        typer.echo(f"warning: --no-auth: {host}:{port} answers anyone who can reach it", err=True)
    if workers == 1:
        uvicorn.run(web_app, host=host, port=port, log_level="info")
        return
    del web_app
    os.environ.update(settings.as_environment())
    uvicorn.run("covidxray.serve.app:app_from_environment", factory=True, host=host, port=port,
                log_level="info", workers=workers)

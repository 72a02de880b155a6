"""`covidxray serve`: the web page and JSON API on uvicorn, with the model loaded once.

Only this command imports FastAPI and uvicorn, so the rest of the CLI works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError


def register(app: typer.Typer) -> None:
    """Add serve to the CLI app."""

    @app.command("serve")
    def serve_command(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 exposes the service to the network."),
        port: int = typer.Option(8000, "--port", help="TCP port."),
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; default: the model bundled with covidxray."),
        max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", help="Largest accepted upload in MiB; larger ones get HTTP 413."),
        gate: bool = typer.Option(True, "--gate/--no-gate", help="Flag inputs that are not frontal chest radiographs instead of scoring them."),
        workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the model (about 0.3 GB each); requests are shared among them."),
    ) -> None:
        """Serve the page (/) and the API (/api/v1/predict, /api/v1/model, /api/v1/health; docs at /docs)."""
        try:
            import uvicorn

            from covidxray.serve.app import create_app, settings_environment
        except ImportError as exc:
            raise CovidxrayError(f"serve needs its extra ({exc.name or exc} is not installed): "
                                 "pip install 'covidxray[serve]'") from None
        if not 0 < port < 65536:
            raise typer.BadParameter(f"port must be in 1..65535, got {port}")
        if workers < 1:
            raise typer.BadParameter(f"--workers must be at least 1, got {workers}")
        web_app = create_app(model, max_upload_mb=max_upload_mb, use_gate=gate)  # a bad model or gate stops here, in one line
        typer.echo(f"covidxray serving on http://{host}:{port}/ with {workers} worker(s) (API docs: /docs). {RESEARCH_NOTICE}")
        if workers == 1:
            uvicorn.run(web_app, host=host, port=port, log_level="info")
            return
        del web_app
        import os

        os.environ.update(settings_environment(model.resolve() if model else None, max_upload_mb, gate))
        uvicorn.run("covidxray.serve.app:app_from_environment", factory=True, host=host, port=port,
                    log_level="info", workers=workers)

"""The web service behind `covidxray serve`: a JSON API and an offline page over one loaded model.

create_app (in app.py) builds the FastAPI app; command.py adds `serve` to the CLI. FastAPI is
imported only when the app is built, so the rest of the CLI starts without it.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "create_app":
        from covidxray.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'covidxray.serve' has no attribute {name!r}")


__all__ = ["create_app"]

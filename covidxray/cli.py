"""The one entry point: `covidxray data ...`, `covidxray train`, and the commands still to come.

Every command turns a CovidxrayError into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from covidxray import RESEARCH_NOTICE, __version__
from covidxray.errors import CovidxrayError

app = typer.Typer(
    help=f"Screen chest X-rays for COVID-19 and other pneumonia. {RESEARCH_NOTICE}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"covidxray {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """covidxray: from public X-ray datasets to an honestly evaluated screening model."""


def _register_commands() -> None:
    from covidxray.data.commands import data_app
    from covidxray.evaluation.command import register as register_evaluation
    from covidxray.lungs_command import register as register_lungs
    from covidxray.predict_command import register as register_prediction
    from covidxray.serve.command import register as register_serve
    from covidxray.training.command import register as register_training
    from covidxray.training.command import register_calibrate

    app.add_typer(data_app, name="data", help="Build, check, chart, deduplicate and split datasets.")
    register_training(app)
    register_calibrate(app)
    register_evaluation(app)
    register_prediction(app)
    register_serve(app)
    register_lungs(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; CovidxrayError becomes a plain 'error: ...' line and exit status 2."""
    try:
        status = app(args=argv, standalone_mode=False)
        if isinstance(status, int):
            return status  # a command's typer.Exit(code) arrives here as its return value
    except CovidxrayError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one plain line, never wrapped
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors (typer vendors its own click) carry their own message
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

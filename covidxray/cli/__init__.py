"""The one entry point: mounts each package's command module (data, train, evaluate, predict, serve, lungs, gate,
validate, pacs), each a module-level Typer app added the same way.

Every command turns a CovidxrayError into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from covidxray import RESEARCH_NOTICE, __version__
from covidxray.cli.help import TidyGroup
from covidxray.errors import CovidxrayError

app = typer.Typer(
    cls=TidyGroup,  # --onnx, not --onnx <bool>; CHECKPOINT, not {checkpoint}
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


#: Each package's command module. Every one holds a module-level `app` (a typer.Typer), the one way a
#: command joins the CLI: a named app is a group (`covidxray data ...`), a nameless one adds its
#: commands (and groups) at the top level.
COMMAND_MODULES = (
    "covidxray.data.command",
    "covidxray.training.command",
    "covidxray.evaluation.command",
    "covidxray.inference.command",
    "covidxray.serve.command",
    "covidxray.lungs.command",
    "covidxray.gate.command",
    "covidxray.site.command",
    "covidxray.pacs.command",
)


def _register_commands() -> None:
    from importlib import import_module

    for name in COMMAND_MODULES:
        app.add_typer(import_module(name).app)


#: One example per command, shown at the end of its --help (kept here so every command gets one).
EXAMPLES: dict[str, str] = {
    "data manifest": "covidxray data manifest ../shared/data --out manifest.csv",
    "data charts": "covidxray data charts prepared/manifest.csv --out charts",
    "data verify": "covidxray data verify manifest.csv --out verified.csv --report verify-report.csv",
    "data clean": "covidxray data clean verified.csv --out clean.csv",
    "data select": "covidxray data select manifest.csv --finding COVID-19 --view PA --out covid-pa",
    "data dedupe": "covidxray data dedupe clean.csv --out deduped.csv",
    "data split": "covidxray data split deduped.csv --out split.csv --holdout siim-covid19-detection",
    "data prepare": "covidxray data prepare ../shared/data --out prepared --holdout siim-covid19-detection",
    "data pack": "covidxray data pack prepared/split.csv --out packs/train.npz",
    "train": "covidxray train --recipe default --split prepared/split.csv --out runs/default",
    "calibrate": "covidxray calibrate runs/xray-cnn/best.pt --split prepared/split.csv --out runs/xray-cnn/calibrated.pt",
    "evaluate": "covidxray evaluate runs/xray-cnn/best.pt --split prepared/split.csv --part test --out reports/xray-cnn",
    "model-card": "covidxray model-card --internal reports/xray-cnn --external reports/xray-cnn-loso --out MODEL_CARD.md",
    "compare": "covidxray compare reports/seed-cnn reports/xray-cnn --out comparison.md",
    "predict": "covidxray predict covidxray/samples --output results.csv --heatmaps heatmaps",
    "export": "covidxray export --onnx --model runs/xray-cnn/best.pt",
    "serve": "covidxray serve --port 8000",
    "lungs train": "covidxray lungs train --data ../shared/data/covid-chestxray-dataset --out lungs-unet.pt",
    "severity fit": "covidxray severity fit --data ../shared/data/covid-chestxray-dataset --out severity.npz",
    "gate fit": "covidxray gate fit --data ../shared/data --out gate.npz",
    "validate": "covidxray validate mine.csv --out site-check",
    "adapt": "covidxray adapt mine.csv --sensitivity 0.90 --out site-model",
    "pacs screen": "covidxray pacs screen --url http://127.0.0.1:8042/dicom-web",
    "pacs listen": "covidxray pacs listen --port 11112 --send-to ORTHANC@127.0.0.1:4242",
}


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _group_name(info) -> str | None:
    """The name a group was added under, else its Typer's own name; None for a nameless (merged) app."""
    for name in (info.name, info.typer_instance.info.name):
        if isinstance(name, str) and name:
            return name
    return None


def _add_examples(typer_app: typer.Typer, prefix: str = "") -> None:
    """Give each registered command the epilog 'Example: ...' from EXAMPLES, unless it has its own."""
    for info in typer_app.registered_commands:
        example = EXAMPLES.get(f"{prefix}{_command_name(info)}")
        if example and not info.epilog:
            info.epilog = f"Example: [bold]{example}[/bold]"
    for group in typer_app.registered_groups:
        name = _group_name(group)
        _add_examples(group.typer_instance, f"{prefix}{name} " if name else prefix)


_register_commands()
_add_examples(app)


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

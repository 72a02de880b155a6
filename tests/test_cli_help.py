"""Every command's --help as a user reads it: plain value names, a description per option, an example;
and the lung/severity commands never overwrite the models the package ships."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from covidxray.cli import app, main
from covidxray.cli.help import value_word


def _commands(command, path=()):
    """(path, click command) for every leaf command of the CLI."""
    children = getattr(command, "commands", None)
    if not children:
        yield path, command
        return
    for name, child in children.items():
        yield from _commands(child, (*path, name))


COMMANDS = sorted(path for path, _ in _commands(typer.main.get_command(app)))


def test_value_words() -> None:
    assert value_word("<list[Path]>") == "PATH" and value_word("<int>") == "INTEGER"
    assert value_word("<str>") == "TEXT" and value_word("<auto|torch|onnx>") == "[auto|torch|onnx]"
    assert value_word("<float>...") == "FLOAT"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_names_values_plainly_and_shows_an_example(path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a plain terminal: no option name may be cut ('--max-images-per-…')
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and max(map(len, text.splitlines())) <= 80, path
    for leak in ("<bool>", "<str>", "<int>", "<path>", "list[", "{", "machine is shared"):
        assert leak not in text, (path, leak)
    assert f"Example: covidxray {' '.join(path)}" in " ".join(text.split()), path
    command = dict(_commands(typer.main.get_command(app)))[path]
    for param in command.params:
        assert (param.help or "").strip(), f"{' '.join(path)} {param.name}: no description"


def test_flags_show_no_placeholder_and_arguments_read_in_capitals(capsys) -> None:
    assert main(["export", "--help"]) == 0
    text = capsys.readouterr().out
    onnx = next(line for line in text.splitlines() if line.lstrip("│ ").startswith("--onnx"))
    assert onnx.split("--onnx")[1].split()[0] == "Write"  # the description follows the flag directly
    assert main(["calibrate", "--help"]) == 0
    assert "calibrate [OPTIONS] CHECKPOINT" in capsys.readouterr().out
    assert main(["compare", "--help"]) == 0
    assert "REPORTS..." in capsys.readouterr().out


def test_lungs_group_says_what_it_has(capsys) -> None:
    assert main(["lungs", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "train and score" not in text and "train the U-Net" in text


@pytest.mark.parametrize(("command", "name"), [(["lungs", "train"], "lungs-unet.pt"), (["severity", "fit"], "severity.npz")])
def test_a_default_never_overwrites_the_bundled_models(command, name, data_dir, tmp_path, capsys, monkeypatch) -> None:
    import covidxray

    weights = Path(covidxray.__file__).resolve().parent / "weights"
    before = (weights / name).read_bytes()
    cohen = str(data_dir / "covid-chestxray-dataset")
    assert main([*command, "--data", cohen, "--out", str(weights / name)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "refusing to write" in error[0] and "--release" in error[0], error
    assert (weights / name).read_bytes() == before
    # data is required, and a wrong folder is named in one line
    assert main([*command]) == 2
    assert "Missing option '--data'" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--data", "nowhere"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: nowhere: no such folder; --data wants the covid-chestxray-dataset folder "
                     f"(relative paths are taken from the current folder, {tmp_path})"]
    assert not (tmp_path / name).exists()


def test_the_default_out_is_in_the_current_folder() -> None:
    command = dict(_commands(typer.main.get_command(app)))
    for path, name in ((("lungs", "train"), "lungs-unet.pt"), (("severity", "fit"), "severity.npz")):
        out = next(p for p in command[path].params if p.name == "out")
        assert Path(out.default) == Path(name)


def test_tidy_names_are_ours_alone_and_typer_is_not_patched(capsys) -> None:
    from typer.core import TyperOption

    from covidxray.cli.help import TidyOption

    assert TyperOption.display_type_rich is not TidyOption.display_type_rich
    other = typer.Typer()

    @other.command()
    def hello(loud: bool = typer.Option(False, "--loud", help="Shout.")) -> None:
        """Say hello."""

    with pytest.raises(SystemExit):
        other(["--help"])
    assert "--loud" in capsys.readouterr().out  # another typer app in the same process builds as typer intends

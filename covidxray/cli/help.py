"""How `--help` names values: PATH, INTEGER, CHECKPOINT, as click and most CLIs do, and an example per command.

Typer 0.2x labels every option with its Python type (`--onnx <bool>`, `<list[Path]>`) and writes a
required argument as `{checkpoint}` on the usage line. The CLI's root group is a `TidyGroup`: when it
is built, it gives each of *its own* options and arguments a subclass that names values plainly.
Typer's classes are left as they are (nothing is patched), so other typer apps in the same process
are untouched.
"""

from __future__ import annotations

import re

from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["TidyGroup", "value_word"]

#: Python type (as typer labels it) -> the word a user reads.
TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "Path": "PATH",
              "file": "FILE", "dir": "FOLDER", "datetime": "DATETIME", "bool": "BOOLEAN"}


def value_word(typer_label: str) -> str:
    """'<list[Path]>' -> 'PATH', '<int>' -> 'INTEGER', '<auto|torch|onnx>' -> '[auto|torch|onnx]'."""
    label = typer_label.strip().removesuffix("...").removeprefix("<").removesuffix(">")
    while label.startswith("list[") and label.endswith("]"):
        label = label[len("list["):-1]
    if "|" in label:
        return f"[{label}]"
    label = re.sub(r"\s+range$", "", label)
    return TYPE_WORDS.get(label, label.upper())


class TidyOption(TyperOption):
    """An option whose value is named PATH, INTEGER, ...; a flag shows no placeholder."""

    def display_type_rich(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None  # a flag takes no value: nothing to name
        return value_word(self.display_type(ctx))


class TidyArgument(TyperArgument):
    """An argument named in capitals on the usage line (CHECKPOINT, PATHS...), with no type label."""

    def display_type_rich(self, ctx):
        return None  # the argument's own name says what it is

    @property
    def display_name_raw(self) -> str:  # the Arguments panel and error messages
        return (self.metavar or self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _tidy_help_option(command) -> None:
    """Make the --help option that command builds when help is shown tidy too (on this command only)."""
    build = command.get_help_option

    def get_help_option(ctx):
        option = build(ctx)
        if type(option) is TyperOption:
            option.__class__ = TidyOption
        return option

    command.get_help_option = get_help_option


def _tidy(command) -> None:
    """Give the options and arguments of command, and of every command under it, their tidy classes."""
    for param in getattr(command, "params", ()):
        if type(param) is TyperOption:
            param.__class__ = TidyOption
        elif type(param) is TyperArgument:
            param.__class__ = TidyArgument
    _tidy_help_option(command)
    for child in (getattr(command, "commands", None) or {}).values():
        _tidy(child)


class TidyGroup(TyperGroup):
    """The root group of the CLI: built last, it tidies the help of every command below it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)

"""How `--help` names values: PATH, INTEGER, CHECKPOINT, as click and most CLIs do, and an example per command.

Typer 0.2x labels every option with its Python type (`--onnx <bool>`, `<list[Path]>`) and writes a
required argument as `{checkpoint}` on the usage line. `tidy_help()` rewrites those labels once, at
the three methods that produce them, so every command of the CLI is shown alike, whoever wrote it.
On typer versions without these methods (older ones already print click-style names) it does nothing.
"""

from __future__ import annotations

import re

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


def tidy_help() -> None:
    """Patch typer's option and argument labels to click-style names; idempotent."""
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - typer without these classes prints click's own labels
        return
    if getattr(TyperOption, "_covidxray_tidy", False) or not hasattr(TyperOption, "display_type"):
        return

    def option_label(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None  # a flag takes no value: nothing to name
        return value_word(self.display_type(ctx))

    def argument_label(self, ctx):
        return None  # the argument's own name says what it is

    def argument_name(self) -> str:
        return (self.metavar or self.name or "").upper()

    def argument_usage(self) -> str:
        name = argument_name(self) if self.required else f"[{argument_name(self)}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = option_label
    TyperArgument.display_type_rich = argument_label
    TyperArgument.display_name_raw = property(argument_name)  # the Arguments panel and error messages
    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = argument_usage
    TyperOption._covidxray_tidy = True

"""Shared rich console and progress bars, so every command looks and reports alike."""

from __future__ import annotations

import sys


from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)
#: Tables go to stdout; when it is a pipe or a file, rich would squeeze them to 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 160)


def progress() -> Progress:
    """A progress bar with counts and times; prints to stderr so tables on stdout stay clean."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


def print_frame(frame: "pd.DataFrame", title: str, index: bool = True) -> None:
    """Print a DataFrame as a rich table on stdout."""
    table = Table(title=title)
    if index:
        names = [str(n) for n in (frame.index.names or [""])]
        for name in names:
            table.add_column(name if name != "None" else "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for key, values in frame.iterrows():
        keys = list(key) if isinstance(key, tuple) else [key]
        cells = [str(k) for k in keys] if index else []
        table.add_row(*cells, *[str(v) for v in values])
    stdout.print(table)


def print_rows(columns: list[str], rows: list[list[str]], title: str) -> None:
    """Print rows of strings as a rich table on stdout, columns right-aligned (print_frame without pandas)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    stdout.print(table)

"""What a benchmark prints, kept so that --report can write the same lines to a Markdown file."""

from __future__ import annotations

import sys
from pathlib import Path


class PrintedFigures:
    """say() prints a line and keeps it; write() saves every kept line under a title and the command."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: Path | None, title: str) -> None:
        if path is None:
            return
        command = " ".join(["python", *sys.argv])
        path.write_text(f"# {title}\n\nMade by `{command}`; nothing here is typed by hand.\n\n```\n"
                        + "\n".join(self.lines) + "\n```\n", encoding="utf-8")

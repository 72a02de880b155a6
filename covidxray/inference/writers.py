"""Result rows written as screening goes: CSV, JSON Lines, Parquet, or one JSON document.

JSON keeps a row's lists and dicts (input_flags, input_scores) as they are; CSV writes flags as
'a;b' and scores as a JSON object's text; Parquet keeps the flags a list and the scores as that text.

Memory stays flat in the number of inputs: rows are written a batch at a time and never kept.
CSV and JSON Lines go straight to the output file, flushed after every batch, so an interrupted
run leaves every finished row there and `--resume` continues the same file. Parquet (row groups)
and the JSON document are written beside the output and renamed over it when complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from covidxray.errors import CovidxrayError
from covidxray.inference.results import flat_row

#: --output suffix -> format name.
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def output_format(path: Path) -> str:
    """The format an --output path names by its suffix; CovidxrayError for any other suffix
    (a typo could name an input image, which must never be written over)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise CovidxrayError(f"{path}: --output must end in .csv, .json (one document), .jsonl (JSON Lines) or .parquet")
    return kind


class RowWriter:
    """Writes rows (dicts with the same keys) to path in its format; close() completes the file.

    header (notice, model) opens a .json document; resume=True keeps the rows an earlier run wrote (see written_paths) and adds after them.
    """

    def __init__(self, path: Path, header: dict, resume: bool = False) -> None:
        self.path, self.kind = Path(path), output_format(Path(path))
        self.count = 0
        self._stream = None
        self._parquet = None
        self._columns: list[str] | None = None
        self._temporary: Path | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind in ("csv", "jsonl"):
            if resume and self.path.exists():
                _drop_cut_line(self.path)
                self._has_header = self.kind == "csv" and self.path.stat().st_size > 0
                if self._has_header:
                    with open(self.path, encoding="utf-8", newline="") as stream:
                        self._columns = next(csv.reader(stream))
            else:
                self.path.write_bytes(b"")
                self._has_header = False
            self._stream = open(self.path, "a", encoding="utf-8", newline="")
        elif self.kind == "json" and resume:
            raise CovidxrayError(f"{self.path}: --resume continues .csv, .jsonl or .parquet outputs; "
                                 "a .json document is written whole")
        else:
            handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name[:40]}.", suffix=".tmp")
            os.close(handle)
            self._temporary = Path(name)
            if self.kind == "json":
                self._stream = open(self._temporary, "w", encoding="utf-8", newline="")
                self._stream.write(json.dumps(header, indent=2)[:-2] + ',\n  "results": [')
            else:
                from covidxray.inference.parquet_rows import ParquetRows

                self._parquet = ParquetRows(self._temporary)
                if resume and self.path.exists():
                    self._parquet.copy_from(self.path)
                    self._columns = self._parquet.columns

    def write(self, rows: list[dict]) -> None:
        """Append rows; for CSV and JSON Lines they are on disk when this returns."""
        if not rows:
            return
        if self._columns is None:
            self._columns = list(rows[0])
        elif list(rows[0]) != self._columns:
            raise CovidxrayError(f"{self.path}: the rows already there have other columns ({', '.join(self._columns)}); "
                                 "--resume continues an output of the same model, so choose another --output")
        if self.kind == "csv":
            writer = csv.DictWriter(self._stream, fieldnames=self._columns, lineterminator="\n")
            if not self._has_header:
                writer.writeheader()
                self._has_header = True
            writer.writerows(flat_row(row) for row in rows)
        elif self.kind == "jsonl":
            self._stream.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        elif self.kind == "json":
            for row in rows:
                self._stream.write(("\n" if self.count == 0 else ",\n") + _indented(row))
                self.count += 1
            return
        else:
            self._parquet.write([{**flat_row(row), "input_flags": row.get("input_flags")} if "input_flags" in row
                                 else flat_row(row) for row in rows])
        self.count += len(rows)
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        """Complete the file: the JSON document's end, Parquet's last row group and footer."""
        if self.kind == "json":
            self._stream.write(("\n  " if self.count else "") + "]\n}\n")
        if self._parquet is not None:
            self._parquet.close()
        if self._stream is not None:
            self._stream.close()
        if self._temporary is not None:
            os.replace(self._temporary, self.path)
            self._temporary = None

    def abandon(self) -> None:
        """After a failure: close what is open; a half-made Parquet or JSON file never replaces the output."""
        for handle in (self._stream, self._parquet and self._parquet.writer):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - closing after a failure; the first error is the one reported
                pass
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)


def _indented(row: dict) -> str:
    return "\n".join("    " + line for line in json.dumps(row, indent=2, ensure_ascii=False).splitlines())


def _drop_cut_line(path: Path) -> None:
    """Cut a line left half-written by a killed run, so that appended rows start on their own line."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as stream:
        stream.seek(max(0, size - 1))
        if stream.read(1) == b"\n":
            return
        stream.seek(0)
        data = stream.read()
        stream.seek(0)
        stream.truncate(data.rfind(b"\n") + 1)


def written_paths(path: Path) -> Iterator[str]:
    """The path column of the rows an earlier run wrote to path (read as a stream); nothing when
    the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return
    kind = output_format(path)
    if kind == "csv":
        with open(path, encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(_complete_lines(stream)):
                if row.get("path"):
                    yield row["path"]
    elif kind == "jsonl":
        with open(path, encoding="utf-8") as stream:
            for line in _complete_lines(stream):
                try:
                    yield json.loads(line)["path"]
                except (ValueError, KeyError, TypeError):
                    raise CovidxrayError(f"{path}: not a covidxray JSON Lines file (a line without a path)") from None
    elif kind == "parquet":
        from covidxray.inference.parquet_rows import parquet_paths

        yield from parquet_paths(path)
    else:
        raise CovidxrayError(f"{path}: --resume continues .csv, .jsonl or .parquet outputs; a .json document is written whole")


def _complete_lines(stream: io.TextIOBase) -> Iterator[str]:
    """Lines that end in a newline: a last line cut off by a killed run is not a row yet."""
    for line in stream:
        if line.endswith("\n"):
            yield line

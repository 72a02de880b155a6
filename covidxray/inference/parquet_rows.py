"""Parquet output for `covidxray predict`: rows in row groups, a footer at the end (the parquet extra).

Only this module imports pyarrow, so CSV and JSON output need nothing beyond the core install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from covidxray.errors import CovidxrayError

#: Rows per row group (a group is held in memory until written).
GROUP_ROWS = 2048


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401 - the submodule the writer and reader use
    except ImportError:
        raise CovidxrayError("Parquet output needs the parquet extra: pip install 'covidxray[parquet]'") from None
    return pyarrow


class ParquetRows:
    """Rows written to path in row groups of GROUP_ROWS; close() writes the footer."""

    def __init__(self, path: Path) -> None:
        self.pyarrow = _pyarrow()
        self.path, self.writer, self.buffer = Path(path), None, []
        self.columns: list[str] | None = None

    def copy_from(self, earlier: Path) -> None:
        """Resume: an earlier file's rows, row group by row group, first."""
        source = self.pyarrow.parquet.ParquetFile(str(earlier))
        self.writer = self.pyarrow.parquet.ParquetWriter(str(self.path), source.schema_arrow)
        for group in range(source.num_row_groups):
            self.writer.write_table(source.read_row_group(group))
        self.columns = source.schema_arrow.names

    def write(self, rows: list[dict]) -> None:
        self.buffer.extend(rows)
        self.columns = self.columns or list(rows[0])
        if len(self.buffer) >= GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = self.pyarrow.Table.from_pylist(self.buffer, schema=self.writer.schema if self.writer else None)
        if self.writer is None:
            self.writer = self.pyarrow.parquet.ParquetWriter(str(self.path), self._schema(table.schema))
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)
        self.buffer = []

    def close(self) -> None:
        self.flush()
        if self.writer is None:  # no rows at all: still a readable file with the columns
            fields = [self.pyarrow.field(name, self.pyarrow.string()) for name in (self.columns or ["path"])]
            self.writer = self.pyarrow.parquet.ParquetWriter(str(self.path), self.pyarrow.schema(fields))
        self.writer.close()

    def _schema(self, schema):
        """Columns all empty in the first group become floats or strings, not 'null' (later
        groups with values must fit), and integers become floats (a later group may hold NaN)."""
        types, fields = self.pyarrow.types, []
        for column in schema:
            kind = column.type
            if types.is_null(kind):
                kind = self.pyarrow.float64() if column.name.startswith(("p_", "severity_", "threshold")) else self.pyarrow.string()
            elif types.is_integer(kind):
                kind = self.pyarrow.float64()
            fields.append(self.pyarrow.field(column.name, kind))
        return self.pyarrow.schema(fields)


def parquet_paths(path: Path) -> Iterator[str]:
    """The path column of a Parquet output, read in batches."""
    pyarrow = _pyarrow()
    try:
        source = pyarrow.parquet.ParquetFile(str(path))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise CovidxrayError(f"{path}: not a readable Parquet file ({exc})") from None
    if "path" not in source.schema_arrow.names:
        raise CovidxrayError(f"{path}: has no path column, so it is not covidxray's output")
    for batch in source.iter_batches(columns=["path"]):
        yield from batch.column(0).to_pylist()

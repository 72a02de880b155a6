"""Reader for a user's CSV: columns `path,label` and optionally `patient_id`, `source`, `view`.

The CSV is the user's: an image (or `lung_mask`) path may be absolute, anywhere, or relative to the
CSV's own folder (never to the working directory). Labels may be written as class names
(covid, COVID-19, normal, pneumonia, ...); unknown ones are kept with an exclusion reason.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from covidxray.data.labels import label_class_folder
from covidxray.data.schema import MANIFEST_COLUMNS, empty_row
from covidxray.data.sources.text import first_line, read_text
from covidxray.errors import DatasetError

LAYOUT = "csv"


def detect(root: Path) -> bool:
    if not (root.is_file() and root.suffix.lower() == ".csv"):
        return False
    header = next(csv.reader([first_line(root)]), [])
    return "path" in header and "label" in header


def read(root: Path) -> list[dict]:
    root = root.resolve()
    try:
        table = csv.DictReader(io.StringIO(read_text(root), newline=""))
        missing = [c for c in ("path", "label") if c not in (table.fieldnames or [])]
        if missing:
            raise DatasetError(f"{root}: missing required column(s) {', '.join(missing)}")
        records = list(table)
    except csv.Error as exc:
        raise DatasetError(f"{root}: not a readable CSV file ({exc})") from None
    rows = []
    for number, record in enumerate(records, start=2):
        if not (record.get("path") or "").strip():
            raise DatasetError(f"{root}: line {number} has an empty path")
        row = empty_row()
        for column in MANIFEST_COLUMNS:
            if record.get(column):
                row[column] = record[column].strip()
        row["path"] = _from_table(row["path"], root)
        if row["lung_mask"]:
            row["lung_mask"] = _from_table(row["lung_mask"], root)
        row["source"] = row["source"] or root.stem
        if row["patient_id"]:
            row["patient_id"] = f"{row['source']}:{row['patient_id']}"
        row["finding"] = record["label"].strip()
        row["label"], row["exclusion"] = label_class_folder(row["finding"])
        row["modality"] = row["modality"] or "X-ray"
        rows.append(row)
    return rows


def _from_table(path: str, table: Path) -> str:
    """path as written when absolute, else taken from the table's folder."""
    written = Path(path).expanduser()
    return str(written if written.is_absolute() else table.parent / written)

"""Reader for the COVID-19 image data collection (Cohen et al.; github ieee8023/covid-chestxray-dataset).

Layout: metadata.csv (one row per image), images/ (and volumes/ for CT), annotations/ with
covid-severity-scores.csv and v7labs-lung-masks/. Findings may be flat (`COVID-19`) or
path-style (`Pneumonia/Viral/COVID-19`); covidxray.data.labels understands both.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from covidxray.data.labels import label_finding
from covidxray.data.schema import empty_row
from covidxray.data.sources.text import read_text
from covidxray.errors import DatasetError

LAYOUT = "covid-chestxray-dataset"
SOURCE = "covid-chestxray-dataset"
REQUIRED_COLUMNS = ("patientid", "finding", "filename")
SEVERITY_FILE = Path("annotations") / "covid-severity-scores.csv"
MASK_FOLDER = Path("annotations") / "v7labs-lung-masks"


def detect(root: Path) -> bool:
    return root.is_dir() and (root / "metadata.csv").is_file()


def read(root: Path) -> list[dict]:
    root = root.resolve()
    records = _read_metadata(root / "metadata.csv")
    severity = read_severity(root / SEVERITY_FILE)
    masks = {p.stem: p for p in (root / MASK_FOLDER).glob("*.png")} if (root / MASK_FOLDER).is_dir() else {}
    rows = []
    for record in records:
        row = empty_row()
        filename = record["filename"].strip()
        folder = (record.get("folder") or "images").strip() or "images"
        row["path"] = str(root / folder / filename)
        row["source"] = SOURCE
        row["patient_id"] = f"cohen:{record['patientid'].strip()}" if record["patientid"].strip() else ""
        row["finding"] = record["finding"].strip()
        row["label"], row["exclusion"] = label_finding(row["finding"])
        for column in ("view", "modality", "sex", "age", "survival", "location", "date", "license"):
            row[column] = (record.get(column) or "").strip()
        extent, opacity = severity.get(filename, ("", ""))
        row["severity_extent"], row["severity_opacity"] = extent, opacity
        mask = masks.get(Path(filename).stem)
        row["lung_mask"] = str(mask) if mask else ""
        rows.append(row)
    return rows


def _read_metadata(path: Path) -> list[dict]:
    try:
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DatasetError(
                f"{path}: missing required column(s) {', '.join(missing)} "
                f"(found: {', '.join(columns[:12]) or 'none'})"
            )
        return [dict(r) for r in reader if (r.get("filename") or "").strip()]
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from None


def read_severity(path: Path) -> dict[str, tuple[str, str]]:
    """filename -> (geographic extent 0-8, opacity 0-6), means of three radiologists."""
    if not path.is_file():
        return {}
    lines = [line for line in io.StringIO(read_text(path), newline="") if not line.startswith("#")]
    scores = {}
    try:
        for record in csv.DictReader(lines):
            name = (record.get("filename") or "").strip()
            if name:
                scores[name] = ((record.get("geographic_mean") or "").strip(), (record.get("opacity_mean") or "").strip())
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from None
    return scores

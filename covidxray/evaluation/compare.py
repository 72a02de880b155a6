"""Reports side by side: the within-hospital AUROCs first, then the mixed-source figures, then the
shortcut audits (where the report ran them), per part.

What `covidxray compare` prints and writes; every cell is read from a report's metrics.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from covidxray.errors import CovidxrayError

__all__ = ["compare_reports"]

#: The mixed-source metrics shown after the yardstick, each with its 95% CI.
MIXED_SOURCE = ("roc_auc", "macro/roc_auc", "sensitivity", "specificity", "accuracy")


def compare_reports(reports: Sequence[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """One row per report and part: within-hospital AUROCs, mixed-source metrics with CIs, ECE, shortcut audits.

    Reports are folders written by `covidxray evaluate` (or covidxray.evaluation.evaluate with out);
    given out, the table is also written there as Markdown (never over a report's files).
    """
    from covidxray.evaluation.report import markdown_table
    from covidxray.paths.outputs import check_output

    reports = [Path(folder) for folder in reports]
    if out is not None:
        check_output(out, (), [folder / name for folder in reports for name in ("metrics.json", "report.html", "summary.md")],
                     "comparison")
    rows = []
    for folder in reports:
        path = folder / "metrics.json"
        if not path.is_file():
            raise CovidxrayError(f"{path}: not found; run `covidxray evaluate` first")
        document = json.loads(path.read_text())
        for name, part in document["parts"].items():
            metrics = part["metrics"]
            row = {"report": folder.name, "model": document["model"]["architecture"], "part": name, "n": part["n_images"]}
            for key, entry in (part.get("within_hospital") or {}).items():  # the yardstick leads
                if entry.get("applicable"):
                    m = entry["auroc"]
                    row[f"within: {key}"] = f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] (n={m['n']})"
            for key in MIXED_SOURCE:
                if key in metrics and metrics[key]["value"] is not None:
                    m = metrics[key]
                    row[key] = f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
            row["ECE"] = f"{part['calibration']['ece']:.3f}"
            row.update(_shortcut_cells(part.get("audits") or {}))
            rows.append(row)
    frame = pd.DataFrame(rows).fillna("")
    if out is not None:
        Path(out).write_text("# Comparison\n\n" + markdown_table(frame) + "\n")
    return frame


def _shortcut_cells(audits: dict) -> dict[str, str]:
    """The shortcut figures a report measured, each with its CI where it has one and its target; the
    Grad-CAM share also as a multiple of the lungs' share of the input (what an even map scores)."""
    cells = {}
    for name, figure in (audits.get("targets") or {}).items():
        if figure.get("value") is None:
            continue
        interval = f" [{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]" if figure.get("ci_low") is not None else ""
        cells[f"{name} ({figure['target']})"] = f"{figure['value']:.3f}{interval} (n={figure['n']})"
    cam = audits.get("cam_in_lungs") or {}
    share, lungs = (cam.get("share") or {}).get("value"), cam.get("lung_area_share")
    if share is not None and lungs:
        cells["Grad-CAM mass / lungs' share"] = f"{share / lungs:.2f}x"
    return cells

"""Benchmark: the site check and the site adaptation on real films, each figure against `covidxray evaluate`.

Usage: python benchmarks/site_check.py --split prepared/split.csv [--out out/site-check] [--doc docs/your-site.md]
       [--screenshots docs/images]

Two sites are built from the split's test part of SIIM-FISABIO-RSNA (films the bundled model never saw
in training, both classes from the same hospitals): every such film as a CSV (`path,label,patient_id`),
and a folder tree of 20 of them (10 covid, 10 normal). For each, `covidxray validate` runs, then
`covidxray evaluate` on the films it scored (its scored.csv), and the largest difference between the
two over every figure (value and interval ends of AUROC, sensitivity, specificity, ...) is printed:
the baseline is evaluate itself. Then `covidxray adapt` on both sites: ECE as shipped and adapted, with
CIs, on films the fit never saw. --doc rewrites the marked block of docs/your-site.md with the table;
--screenshots renders the SIIM site's check and adaptation pages with headless Chromium
(site-check.png, site-adapt.png).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SIIM = "siim-covid19-detection"
BEGIN = "<!-- site-check: written by `python benchmarks/site_check.py --doc docs/your-site.md`; do not edit -->"
END = "<!-- end of site-check -->"
COMPARED = ("roc_auc", "sensitivity", "specificity", "accuracy", "precision", "npv", "f1", "pr_auc")


def build_sites(split: Path, out: Path) -> tuple[Path, Path]:
    """(the SIIM test-part CSV, the 20-film folder tree), written under out/sites."""
    table = pd.read_csv(split, dtype=str, keep_default_na=False)
    films = table[(table["split"] == "test") & (table["source"] == SIIM) & (table["label"] != "")]
    sites = out / "sites"
    if sites.exists():
        shutil.rmtree(sites)
    sites.mkdir(parents=True)
    csv_path = sites / "siim-test.csv"
    pd.DataFrame({"path": films["path"], "label": films["label"],
                  "patient_id": films["patient_id"].str.replace("siim:", "", regex=False)}).to_csv(csv_path, index=False)
    tree = sites / "folder-of-20"
    for label in ("covid", "normal"):
        (tree / label).mkdir(parents=True)
        for path in films.loc[films["label"] == label, "path"].head(10):
            shutil.copy(path, tree / label)
    return csv_path, tree


def cli(*arguments: str) -> None:
    from covidxray.cli import main

    status = main(list(arguments))
    if status:
        sys.exit(f"covidxray {' '.join(arguments)} failed with status {status}")


def largest_difference(check: dict, evaluated: dict) -> float:
    """The largest absolute difference over every compared figure's value and interval ends, ECE and Brier."""
    gaps = [abs((check["metrics"][key][end] or 0) - (evaluated["metrics"][key][end] or 0))
            for key in COMPARED for end in ("value", "ci_low", "ci_high")]
    gaps += [abs(check["calibration"][name]["value"] - evaluated["calibration"][name]) for name in ("ece", "brier")]
    return max(gaps)


def cell(estimate: dict) -> str:
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}] (n={estimate['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "prepared" / "split.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "site-check")
    parser.add_argument("--doc", type=Path, help="rewrite the marked block of this Markdown file with the table")
    parser.add_argument("--screenshots", type=Path, help="folder for site-check.png and site-adapt.png (headless Chromium)")
    arguments = parser.parse_args()
    from covidxray.inference.predictor import DEFAULT_MODEL

    csv_path, tree = build_sites(arguments.split, arguments.out)
    check_rows, adapt_rows = [], []
    for name, site in (("SIIM test part (CSV)", csv_path), ("folder of 20 SIIM test films", tree)):
        folder = arguments.out / site.stem
        started = time.perf_counter()
        cli("validate", str(site), "--out", str(folder / "check"))
        validate_seconds = time.perf_counter() - started
        cli("evaluate", str(DEFAULT_MODEL), "--split", str(folder / "check" / "scored.csv"), "--part", "all",
            "--no-audits", "--out", str(folder / "evaluate"))
        check = json.loads((folder / "check" / "site-check.json").read_text())
        evaluated = json.loads((folder / "evaluate" / "metrics.json").read_text())["parts"]["all"]
        counts = check["gate"]["counts"]
        check_rows.append({
            "site": name, "films (scored / refused / unreadable)": f"{check['n_scored']} / {counts['refused']} / {counts['error']}",
            "validate: AUROC": cell(check["metrics"]["roc_auc"]),
            "evaluate: AUROC": cell(evaluated["metrics"]["roc_auc"]),
            "validate: sensitivity, specificity": f"{cell(check['metrics']['sensitivity'])}, {cell(check['metrics']['specificity'])}",
            "validate: ECE": cell(check["calibration"]["ece"]), "evaluate: ECE": f"{evaluated['calibration']['ece']:.3f}",
            "largest difference, any figure": f"{largest_difference(check, evaluated):.1e}",
            "validate (s)": f"{validate_seconds:.0f}"})
        cli("adapt", str(site), "--out", str(folder / "adapt"))
        adapted = json.loads((folder / "adapt" / "adapt.json").read_text())
        held = adapted["held_out"]
        adapt_rows.append({
            "site": name, "scheme": adapted["scheme_text"], "judged films (patients)": f"{held['n_films']} ({held['n_patients']})",
            "ECE as shipped": cell(held["bundled"]["ece"]), "ECE adapted": cell(held["adapted"]["ece"]),
            "ECE adapted minus shipped": cell(held["ece_difference"]),
            "sensitivity, specificity adapted (target 0.90)": f"{cell(held['adapted']['sensitivity'])}, {cell(held['adapted']['specificity'])}",
            "as shipped": f"{cell(held['bundled']['sensitivity'])}, {cell(held['bundled']['specificity'])}"})
    from covidxray.evaluation.report import markdown_table

    text = "\n".join([BEGIN, "", "The site check against `covidxray evaluate` on the films it scored (the baseline):", "",
                      markdown_table(pd.DataFrame(check_rows)), "",
                      "The site adaptation (threshold for sensitivity 0.90, calibration) on films the fit never saw:", "",
                      markdown_table(pd.DataFrame(adapt_rows)), "", END])
    print(text)
    if arguments.doc:
        document = arguments.doc.read_text(encoding="utf-8")
        if BEGIN not in document or END not in document:
            sys.exit(f"{arguments.doc}: no block marked {BEGIN!r} ... {END!r}")
        head, rest = document.split(BEGIN, 1)
        arguments.doc.write_text(head + text + rest.split(END, 1)[1], encoding="utf-8")
        print(f"wrote the block into {arguments.doc}")
    if arguments.screenshots:
        arguments.screenshots.mkdir(parents=True, exist_ok=True)
        for page, picture in (("check", "site-check.png"), ("adapt", "site-adapt.png")):
            shown = (arguments.out / csv_path.stem / page / "report.html").resolve().as_uri()
            target = arguments.screenshots / picture
            subprocess.run(["chromium", "--headless", "--no-sandbox", "--hide-scrollbars", f"--screenshot={target}",
                            "--window-size=1200,1600", shown], check=True, capture_output=True)
            print(f"wrote {target}")


if __name__ == "__main__":
    main()

"""Five heat maps on one picture, for docs/: what `covidxray predict --heatmaps` draws, made reproducibly.

Usage: python scripts/heatmap_gallery.py --split prepared/split.csv [--model CKPT] [--seed 0]
       [--out docs/images/heatmaps-five.png]

Why: a picture in the docs should be one anyone can redraw from the split, with the model named
by its sha256, rather than a hand-picked screenshot. Five films of the split's test part, drawn
with a seeded shuffle: two COVID-19 and two normal from siim-covid19-detection (both grades come
from the same hospitals and pipeline, so the picture is not a contrast of hospitals), and one
pneumonia from darkcovidnet or the COVID-19 image data collection. Films the input gate refuses
(or that cannot be read) are skipped for the next one. Each film is screened and drawn as predict
does (Predictor.screen_paths, then covidxray.explain.picture.heatmap_picture with the file name as
title); the five captioned pictures are laid out 3 + 2 under a title naming the model and the
research-use notice, each under its true label. Prints the five files and writes the same as JSON
beside the PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIIM = "siim-covid19-detection"
PNEUMONIA_SOURCES = ("darkcovidnet", "covid-chestxray-dataset")
#: (true label, how many, the sources drawn from), in the order the panels are laid out.
WANTED = (("covid", 2, (SIIM,)), ("normal", 2, (SIIM,)), ("pneumonia", 1, PNEUMONIA_SOURCES))
#: Width of each panel in pixels: the captioned picture's own minimum width, so captions are not shrunk.
PANEL_WIDTH = 480
COLUMNS = 3
BACKGROUND = (20, 22, 28)  # the caption strip's colour (covidxray.explain.overlay)
INK = (235, 237, 242)
NOTICE_INK = (255, 178, 168)
GAP = 12


@dataclass
class Chosen:
    """One film of the picture: its split row, its screening result and the image as read."""

    row: dict
    result: object
    image: object


def build_parser() -> argparse.ArgumentParser:
    """The command line, every option with its help."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Run `make prepare` first: it writes prepared/split.csv.")
    parser.add_argument("--split", type=Path, default=ROOT / "prepared" / "split.csv",
                        help="Split whose test part gives the films (default: prepared/split.csv, from `make prepare`).")
    parser.add_argument("--model", type=Path, default=None,
                        help="Checkpoint that screens and draws (default: the bundled model).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the shuffle that picks the films (default: 0).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "heatmaps-five.png",
                        help="PNG written; the JSON goes beside it with the same stem (default: docs/images/heatmaps-five.png).")
    return parser


def test_rows(split_path: Path):
    """The split's test rows that may be shown (status ok where the split has a status), every cell a string."""
    from covidxray.data.schema import read_table
    from covidxray.errors import DatasetError

    if not split_path.is_file():
        raise DatasetError(f"{split_path}: split not found; run `make prepare` first (it writes prepared/split.csv), "
                           "or name one with --split")
    table = read_table(split_path)
    if "split" not in table:
        raise DatasetError(f"{split_path}: not a split, it has no 'split' column")
    test = table[table["split"] == "test"]
    if "status" in test:
        test = test[test["status"].isin(("ok", ""))]
    return test


def candidates(test, label: str, sources: tuple[str, ...], seed: int) -> list[dict]:
    """The test rows of label from sources, in a seeded order that depends only on the rows, not their order."""
    from covidxray.errors import DatasetError

    rows = test[(test["label"] == label) & test["source"].isin(sources)].sort_values("path")
    if rows.empty:
        raise DatasetError(f"the split's test part has no {label} rows from {' or '.join(sources)}")
    return rows.sample(frac=1.0, random_state=seed).to_dict("records")


def screened(predictor, rows: list[dict], count: int, skipped: list[dict]) -> list[Chosen]:
    """The first count rows that the gate lets through (screened or warned), one patient each; the
    others met on the way are added to skipped with their status and reason."""
    chosen, patients = [], set()
    batch = count + 2
    for start in range(0, len(rows), batch):
        part = [row for row in rows[start:start + batch] if not row.get("patient_id") or row["patient_id"] not in patients]
        for row, (result, item) in zip(part, predictor.screen_paths([row["path"] for row in part], batch_size=batch)):
            if len(chosen) == count or (row.get("patient_id") and row["patient_id"] in patients):
                continue
            if not result.status.scored:
                skipped.append({"path": data_relative(row), "status": result.status.value,
                                "reason": result.error or result.input_note})
                continue
            chosen.append(Chosen(row, result, item.image))
            if row.get("patient_id"):
                patients.add(row["patient_id"])
        if len(chosen) == count:
            return chosen
    return chosen


def pick(predictor, test, seed: int) -> tuple[list[Chosen], list[dict]]:
    """The five films, in panel order, and the films skipped because the gate refused them."""
    from covidxray.errors import DatasetError

    pools = [(label, count, sources, candidates(test, label, sources, seed)) for label, count, sources in WANTED]
    films, skipped = [], []
    for label, count, sources, rows in pools:
        found = screened(predictor, rows, count, skipped)
        if len(found) < count:
            raise DatasetError(f"only {len(found)} of the {len(rows)} test {label} films from {' or '.join(sources)} "
                               f"were screened (the input gate refused the others); {count} are needed")
        films += found
    return films, skipped


def data_folders(test) -> set[Path]:
    """The folders that hold the split's collections (the data folders): never written into, though
    covidxray.paths.outputs guards only the collections themselves."""
    folders = set()
    for path, source in set(zip(test["path"].map(lambda p: str(Path(p).parent)), test["source"])):
        parts = Path(path).parts
        if source in parts:
            folders.add(Path(*parts[:len(parts) - 1 - parts[::-1].index(source)]))
    return folders


def data_relative(row: dict) -> str:
    """The film's path from the data folder (the folder that holds its collection), else as the split gives it."""
    parts = Path(row["path"]).parts
    if row["source"] in parts:
        start = len(parts) - 1 - parts[::-1].index(row["source"])
        return "/".join(parts[start:])
    return row["path"]


def panel(predictor, film: Chosen):
    """The captioned heat-map picture of one film, as `covidxray predict --heatmaps` draws it: the same
    map and lung outline, found on the image as read, drawn on a copy whose longer side is PANEL_WIDTH
    (as the PACS pictures are drawn on a display copy) so that all five panels are one size."""
    from covidxray.explain.picture import heatmap_picture
    from covidxray.inference.screening_run import printable

    image, result = film.image, film.result
    heat = predictor.heatmap(image, predictor.heatmap_class(result), result)
    predictor.lung_mask(image, result)  # the outline found on the image as read, kept in result
    return heatmap_picture(predictor, display_copy(image, PANEL_WIDTH), result,
                           title=printable(Path(film.row["path"]).name), heat=heat)


def display_copy(image, side: int):
    """image (2-D floats in [0, 1]) scaled so that its longer side is side pixels, for display only."""
    import numpy as np
    from PIL import Image

    scale = side / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    copy = Image.fromarray(np.asarray(image, np.float32)).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(copy, np.float32), 0.0, 1.0)


#: Short names of the collections, for the panels' headings.
SHORT_SOURCE = {SIIM: "SIIM", "covid-chestxray-dataset": "COVID-19 image data collection"}


def label_line(row: dict) -> str:
    """The panel's heading: its true label from the split, and the collection (and finding or SIIM grade)."""
    source = SHORT_SOURCE.get(row["source"], row["source"])
    finding = f", {row['finding']}" if row.get("finding") else ""
    return f"true label: {row['label'].upper()}  ({source}{finding})"


def gallery(panels: list, rows: list[dict], heading: list[str]):
    """The panels laid out COLUMNS to a row (a short last row centred), each under its true label,
    below the heading lines."""
    from PIL import Image, ImageDraw

    from covidxray.explain.overlay import caption_font, wrap_text

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    columns = min(COLUMNS, len(panels))
    width = columns * PANEL_WIDTH + (columns + 1) * GAP
    big, small = caption_font(22), caption_font(17)
    lines = [(text, big, INK) for text in wrap_text(scratch, heading[0], big, width - 2 * GAP)]
    for extra in heading[1:]:
        lines += [(text, small, NOTICE_INK) for text in wrap_text(scratch, extra, small, width - 2 * GAP)]
    step = round(small.size * 1.35)
    labels = [wrap_text(scratch, label_line(row), small, PANEL_WIDTH) for row in rows]
    top = GAP + sum(round(face.size * 1.35) for _, face, _ in lines) + GAP
    grid = [list(range(i, min(i + columns, len(panels)))) for i in range(0, len(panels), columns)]
    heights = [max(len(labels[i]) for i in row) * step + GAP // 2 + max(panels[i].height for i in row) for row in grid]
    canvas = Image.new("RGB", (width, top + sum(heights) + GAP * len(grid)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = GAP
    for text, face, colour in lines:
        draw.text((GAP, y), text, font=face, fill=colour)
        y += round(face.size * 1.35)
    y = top
    for row, height in zip(grid, heights):
        x = GAP + (columns - len(row)) * (PANEL_WIDTH + GAP) // 2
        label_rows = max(len(labels[i]) for i in row)
        for index in row:
            for number, text in enumerate(labels[index]):
                draw.text((x, y + number * step), text, font=small, fill=INK)
            canvas.paste(panels[index], (x, y + label_rows * step + GAP // 2))
            x += PANEL_WIDTH + GAP
        y += height + GAP
    return canvas


def summary(films: list[Chosen], model: Path, digest: str, seed: int, split: Path, skipped: list[dict]) -> dict:
    """What the JSON holds: the model, the seed, the five films with their figures, the films skipped."""
    from covidxray import RESEARCH_NOTICE

    def number(value):
        return None if value is None else round(float(value), 4)

    return {"notice": RESEARCH_NOTICE, "model": model.name, "model_sha256": digest, "seed": seed, "split": str(split),
            "films": [{"path": data_relative(f.row), "source": f.row["source"], "finding": f.row.get("finding", ""),
                       "label": f.row["label"], "p_covid": number(f.result.p_covid),
                       "p_pneumonia": number(f.result.p_pneumonia), "p_normal": number(f.result.p_normal),
                       "prediction": f.result.prediction, "status": f.result.status.value,
                       "input_note": f.result.input_note} for f in films],
            "skipped_by_gate": skipped}


def print_table(report: dict) -> None:
    """The five films as a small plain table on stdout."""
    width = max(len(film["path"]) for film in report["films"])
    print(f"{'file (from the data folder)':<{width}}  {'true':<9}  p(COVID-19)  {'decision':<9}  status")
    for film in report["films"]:
        print(f"{film['path']:<{width}}  {film['label']:<9}  {film['p_covid']:>11.3f}  {film['prediction'] or '':<9}  "
              f"{film['status']}")
    for film in report["skipped_by_gate"]:
        print(f"skipped {film['path']}: {film['status']} ({film['reason']})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from covidxray import RESEARCH_NOTICE
    from covidxray.errors import CovidxrayError
    from covidxray.hashing import sha256_file
    from covidxray.inference.predictor import DEFAULT_MODEL, Predictor
    from covidxray.paths.outputs import check_output, manifest_guard

    model = args.model or DEFAULT_MODEL
    if not model.is_file():
        raise CovidxrayError(f"{model}: checkpoint not found")
    if args.out.suffix.lower() != ".png":
        raise CovidxrayError(f"{args.out}: the picture is written as PNG; give a path ending in .png")
    test = test_rows(args.split)
    roots, inputs = manifest_guard(test, args.split)
    roots = [*roots, *data_folders(test)]
    report_path = args.out.with_suffix(".json")
    for path, what in ((args.out, "picture"), (report_path, "film list")):
        check_output(path, roots, [*inputs, model], what)
    for label, _, sources in WANTED:
        candidates(test, label, sources, args.seed)  # a missing kind is said before the model loads
    predictor = Predictor(model)  # as predict: gate on, gate warnings on, backend auto
    films, skipped = pick(predictor, test, args.seed)
    digest = sha256_file(model)
    panels = [panel(predictor, film) for film in films]
    heading = [f"Heat maps of five test films, model {model.name} (sha256 {digest[:12]}), seed {args.seed}: "
               "two COVID-19 and two normal films of the same hospitals (SIIM), one other pneumonia",
               RESEARCH_NOTICE]
    picture = gallery(panels, [film.row for film in films], heading)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out, optimize=True)
    report = summary(films, model, digest, args.seed, args.split, skipped)
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"wrote {args.out} ({picture.width} x {picture.height} px, {args.out.stat().st_size / 1e6:.2f} MB) and {report_path}")
    print(RESEARCH_NOTICE)
    return 0


if __name__ == "__main__":
    from covidxray.errors import CovidxrayError

    try:
        sys.exit(main())
    except CovidxrayError as exc:  # a bad path, table or model: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

"""One `covidxray predict` run: list the inputs, screen them, stream the rows, show a screenful.

Memory stays flat in the number of inputs: only the list of paths is held; each batch's rows go
to the writer and the counters, and the table shows the first rows only (the file has them all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError

#: Rows shown in the console table; the rest are counted (and written with --output).
SCREENFUL = 20


def collect_inputs(paths: list[str], files_from: Path | None, shard: str | None) -> tuple[list[str], list[str]]:
    """(the items as given: PATHS then --files-from's lines; those expanded (folders, globs) in
    order, then cut to this shard's share)."""
    from covidxray.inference.inputs import expand_inputs, files_from as listed, parse_shard, shard as share

    from_list = listed(files_from) if files_from is not None else []
    items = list(paths) + from_list
    if not items:
        if files_from is not None:
            raise CovidxrayError(f"{files_from}: the list is empty (no line names an input)")
        raise CovidxrayError("no inputs: give image files or folders, or --files-from LIST")
    files = expand_inputs(items)
    if not files:
        raise CovidxrayError("no input files found")
    if shard is not None:
        files = share(files, *parse_shard(shard))
    return items, files


def run_screening(paths: list[str], *, model: Path | None, output: Path | None, files_from: Path | None,
                  shard: str | None, resume: bool, heatmaps: Path | None, gate: bool, gate_warnings: bool,
                  backend: str, batch_size: int, dask: str | None) -> None:
    """Screen and report; raises typer.Exit(1) when some input could not be read."""
    import typer

    from covidxray.console import console, progress

    items, files = collect_inputs(paths, files_from, shard)
    check_prediction_outputs(items, files, output, heatmaps, [files_from] if files_from else [])
    if resume and output is None:
        raise CovidxrayError("--resume needs --output: the file whose rows are kept")
    if dask and heatmaps:
        raise CovidxrayError("--heatmaps is not available with --dask: heat maps are drawn where the file is read")
    skipped = 0
    if resume:
        from covidxray.inference.writers import written_paths

        done = set(written_paths(output))
        before = len(files)
        files = [path for path in files if printable(path) not in done]
        skipped = before - len(files)
        del done
        if not files:
            console.print(f"nothing left to screen: all {skipped} inputs are already in {output}, which is left as it was")
            return
    from covidxray.inference.predictor import Predictor

    predictor = Predictor(model, use_gate=gate, backend=backend, gate_warnings=gate_warnings)
    writer = _open_writer(output, predictor, resume)
    shown, counts, failed = [], {}, 0
    if heatmaps:
        heatmaps.mkdir(parents=True, exist_ok=True)
    try:
        with progress() as bar:
            task = bar.add_task("screening", total=len(files))
            pending: list[dict] = []
            for number, (result, item) in enumerate(_results(predictor, files, batch_size, dask, model, backend)):
                if heatmaps and item is not None and item.image is not None and result.status.scored:
                    try:
                        _write_heatmap(predictor, item, result, heatmaps / heatmap_name(number + skipped, item.name))
                    except Exception as exc:  # noqa: BLE001 - the row says the map failed; the batch goes on
                        from covidxray.inference.inputs import unexpected

                        result.error = f"{item.name}: heat map not written ({unexpected(exc)})"
                row = printable_row(result.as_row(predictor.labels))
                pending.append(row)
                if len(shown) < SCREENFUL:
                    shown.append(row)
                key = result.prediction if result.status.scored else result.status.value
                counts[key] = counts.get(key, 0) + 1
                failed += bool(result.error)
                if len(pending) >= batch_size:
                    _flush(writer, pending)
                bar.advance(task)
            _flush(writer, pending)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    _report(predictor, shown, counts, len(files), skipped, output)
    if failed:
        console.print(f"{failed} of {len(files)} inputs could not be read")
        raise typer.Exit(1)


def _results(predictor, files: list[str], batch_size: int, dask: str | None, model: Path | None,
             backend: str) -> Iterator[tuple]:
    """(result, read input or None) per file, in order: here, or on a Dask cluster (whose workers
    load the bundled model of their own installation unless --model names a checkpoint)."""
    if not dask:
        yield from predictor.screen_paths(files, batch_size)
        return
    from covidxray.inference.distributed import connect, screen_on_cluster

    with connect(dask) as client:
        for result in screen_on_cluster(files, client, model.resolve() if model else None, backend=backend,
                                        gate=predictor.use_gate, gate_warnings=predictor.gate_warnings,
                                        batch_size=batch_size):
            yield result, None


def _open_writer(output: Path | None, predictor, resume: bool):
    if output is None:
        return None
    from covidxray.inference.writers import RowWriter

    return RowWriter(output, {"notice": RESEARCH_NOTICE, "model": predictor.name}, resume=resume)


def _flush(writer, pending: list[dict]) -> None:
    if writer is not None:
        writer.write(pending)
    pending.clear()


def _report(predictor, shown: list[dict], counts: dict, total: int, skipped: int, output: Path | None) -> None:
    """The first screenful of rows as a table, then what the rest came to."""
    from covidxray.console import console, print_rows

    if shown:
        columns = [c for c in SHOWN_COLUMNS if c in shown[0] and (not c.startswith("severity_") or any(r[c] is not None for r in shown))]
        print_rows(columns, [[_cell(column, row.get(column)) for column in columns] for row in shown],
                   f"{predictor.name} ({predictor.backend}); threshold {predictor.info.threshold:.3f}")
    if total > len(shown):
        where = f"all rows are in {output}" if output else "give --output results.csv to keep every row"
        console.print(f"showing {len(shown)} of {total} rows; {where}")
    if total > SCREENFUL or skipped:
        summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        console.print(f"screened {total} inputs: {summary}" + (f"; {skipped} skipped, already in {output}" if skipped else ""))
    console.print(RESEARCH_NOTICE, style="italic")
    if output:
        console.print(f"wrote {output}")


#: Columns of the table printed by predict, in order; each shown when any row has a value.
SHOWN_COLUMNS = ("path", "status", "p_covid", "p_pneumonia", "p_normal", "prediction", "severity_extent",
                 "severity_opacity", "input_flags", "error")


def _cell(column: str, value) -> str:
    if value is None or value != value:
        return ""
    if column == "path":
        return Path(value).name
    if column.startswith("p_"):
        return f"{value:.3f}"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


#: Longest stem, in UTF-8 bytes, kept in a heat map's file name (file systems allow 255 bytes a name).
HEATMAP_STEM_BYTES = 120


def check_prediction_outputs(arguments: list[str], files: list[str], output: Path | None, heatmaps: Path | None,
                             listings: list[Path] = ()) -> None:
    """Before anything is written: --output is .csv or .json, no input and not inside a folder given
    as input; --heatmaps is not inside a folder given as input (the maps would be read as inputs
    next time) nor the folder of an input file (a map could land over an image named like one)."""
    from covidxray.inference.writers import output_format
    from covidxray.paths.outputs import OutputRefused, check_output, resolved

    folders = [item for item in arguments if Path(item).is_dir()]
    if output is not None:
        output_format(output)
        check_output(output, folders, [*files, *listings], "results", "input folder")
    if heatmaps is not None:
        check_output(heatmaps, folders, files, "heat maps", "input folder")
        target = resolved(heatmaps)
        for file in files:
            if resolved(Path(file).parent) == target:
                raise OutputRefused(f"{heatmaps}: refusing to write the heat maps inside the input folder of {file}; "
                                    "covidxray never writes into source data, choose a path outside it")


def printable(text: str) -> str:
    """text with any undecodable bytes of a file name (surrogate escapes) written as \\xNN, so it prints and saves as UTF-8."""
    if not isinstance(text, str):
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable_row(row: dict) -> dict:
    return {key: printable(value) for key, value in row.items()}


def heatmap_name(number: int, name: str) -> str:
    """NNNN-<stem>.png: the stem made printable, without control characters, and short enough for any file system."""
    import re

    stem = re.sub(r"[\x00-\x1f\x7f/\\]", "_", printable(Path(name).stem)) or "image"
    stem = stem.encode("utf-8")[:HEATMAP_STEM_BYTES].decode("utf-8", "ignore")
    return f"{number:04d}-{stem}.png"


def _write_heatmap(predictor, item, result, path: Path) -> None:
    """The captioned heat-map picture (covidxray.explain.picture) of one screened input, as a PNG."""
    from covidxray.explain.picture import heatmap_picture

    heatmap_picture(predictor, item.image, result, title=printable(Path(item.name).name)).save(path)

"""`covidxray gate fit`: fit the input gate on the collections and save it (weights/gate.npz)."""

from __future__ import annotations

from pathlib import Path

import typer

#: The `covidxray gate` group, mounted by covidxray.cli.
app = typer.Typer(name="gate", help="The input gate: fit it on the collections.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.command("fit")
def gate_fit_command(
    data: Path = typer.Option(..., "--data", help="Folder holding the four collections (../shared/data)."),
    out: Path = typer.Option(..., "--out", help="Where to write the gate (.npz)."),
    per_collection: int = typer.Option(1500, "--per-collection", help="Images sampled per collection."),
    release: bool = typer.Option(False, "--release", help="Allow --out inside covidxray/weights, replacing the gate the package ships."),
) -> None:
    """Fit the gate (out-of-distribution score, lateral, inverted and fragment checks) and save it."""
    from covidxray.console import console
    from covidxray.gate.fit import fit_gate, load_radiographs
    from covidxray.paths.outputs import check_output, check_release

    check_release(out, release, "input gate")
    check_output(out, [data])
    radiographs = load_radiographs(data, per_collection)
    counts: dict[tuple[str, str], int] = {}
    for item in radiographs:
        counts[(item.collection, item.view)] = counts.get((item.collection, item.view), 0) + 1
    console.print("images: " + ", ".join(f"{c} {v} {n}" for (c, v), n in sorted(counts.items())))
    model = fit_gate(radiographs)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    console.print(f"saved {out} ({out.stat().st_size / 1024:.0f} KB): OOD warn {model.ood_warn:.3f}, "
                  f"refuse {model.ood_refuse:.3f}; lateral warn {model.lateral_warn}, refuse {model.lateral_refuse}; "
                  f"inverted warn {model.inverted_warn}; fragment warn {model.fragment_warn}")
    console.print(f"measure it: python benchmarks/gate_generalisation.py --data {data}")

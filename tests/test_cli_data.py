"""The `covidxray data` commands as a user runs them: outputs, printed counts, and errors without tracebacks."""

import subprocess
import sys

import pandas as pd

from covidxray.cli import main


def run_cli(*args):
    """Run the installed CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "covidxray", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_manifest_verify_dedupe_split_chain(mini_cohen, mini_dark, mini_radiography, tmp_path):
    result = run_cli("data", "manifest", mini_cohen, mini_dark, mini_radiography, "--out", tmp_path / "m.csv")
    assert result.returncode == 0, result.stderr
    assert "darkcovidnet" in result.stdout and "covid19-radiography-database" in result.stdout
    manifest = pd.read_csv(tmp_path / "m.csv", dtype=str, keep_default_na=False)
    assert len(manifest) == 11 + 9 + 6
    assert run_cli("data", "verify", tmp_path / "m.csv", "--out", tmp_path / "v.csv", "--report", tmp_path / "r.csv").returncode == 0
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert list(report.columns) == ["path", "status", "reason"] and (report["status"] == "missing").sum() == 1
    result = run_cli("data", "clean", tmp_path / "v.csv", "--out", tmp_path / "c.csv")
    assert result.returncode == 0 and "no usable label" in result.stdout
    assert run_cli("data", "dedupe", tmp_path / "c.csv", "--out", tmp_path / "d.csv", "--clusters", tmp_path / "cl.csv", "--pairs", tmp_path / "p.csv").returncode == 0
    result = run_cli("data", "split", tmp_path / "d.csv", "--out", tmp_path / "s.csv", "--seed", "1")
    assert result.returncode == 0, result.stderr
    split = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert set(split["split"]) <= {"train", "val", "test"} and "group" in split and "dup_cluster" in split
    result = run_cli("data", "split", tmp_path / "d.csv", "--out", tmp_path / "l.csv", "--holdout", "darkcovidnet")
    loso = pd.read_csv(tmp_path / "l.csv", dtype=str, keep_default_na=False)
    assert set(loso.loc[loso["source"] == "darkcovidnet", "split"]) == {"external"}


def test_charts_and_select_commands(mini_cohen, tmp_path):
    assert main(["data", "manifest", str(mini_cohen), "--out", str(tmp_path / "m.csv")]) == 0
    assert main(["data", "charts", str(tmp_path / "m.csv"), "--out", str(tmp_path / "charts")]) == 0
    assert (tmp_path / "charts" / "charts.html").is_file() and (tmp_path / "charts" / "age.png").is_file()
    assert main(["data", "select", str(tmp_path / "m.csv"), "--finding", "covid", "--out", str(tmp_path / "sel")]) == 0
    assert len(pd.read_csv(tmp_path / "sel" / "selected.csv")) >= 3


def test_bad_inputs_give_one_line_errors_not_tracebacks(tmp_path):
    (tmp_path / "empty" / "COVID").mkdir(parents=True)
    (tmp_path / "empty" / "Normal").mkdir()
    (tmp_path / "cohen").mkdir()
    (tmp_path / "cohen" / "metadata.csv").write_text("patientid,filename\n1,a.png\n")
    (tmp_path / "notes.csv").write_text("hello\n")
    cases = [
        (["data", "manifest", tmp_path / "empty"], "no images found"),
        (["data", "manifest", tmp_path / "cohen"], "missing required column(s) finding"),
        (["data", "manifest", tmp_path / "nowhere"], "no such file or folder"),
        (["data", "verify", tmp_path / "notes.csv"], "not a covidxray manifest"),
        (["data", "split", tmp_path / "missing.csv"], "table not found"),
        (["data", "split"], "Missing argument"),
        (["export", "--bogus"], "No such option"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


# ---- hostile and odd inputs (issue #17): source data is never modified, paths stay inside datasets ----

import hashlib  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def tree_digest(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file below folder (symlinks by their target text)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "link:" + str(path.readlink())
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture()
def datasets(mini_cohen, mini_radiography, tmp_path) -> dict[str, Path]:
    """Fresh copies: the Cohen layout, a folder-per-class tree, and a CSV-layout source, under one folder."""
    base = tmp_path / "datasets"
    cohen = base / "covid-chestxray-dataset"
    shutil.copytree(mini_cohen, cohen)
    images = sorted((mini_radiography / "COVID-19_Radiography_Dataset").rglob("*.png"))
    tree = base / "tree"
    for label, chosen in (("covid", images[:3]), ("normal", images[3:6])):
        (tree / label).mkdir(parents=True)
        for image in chosen:
            shutil.copy(image, tree / label)
    table = base / "table"
    (table / "img").mkdir(parents=True)
    lines = ["path,label"]
    for number, image in enumerate(images[:4]):
        shutil.copy(image, table / "img" / image.name)
        lines.append(f"img/{image.name},{'covid' if number % 2 else 'normal'}")
    (table / "labels.csv").write_text("\n".join(lines) + "\n")
    return {"base": base, "cohen": cohen, "tree": tree, "table": table, "csv": table / "labels.csv"}


def hostile_commands(d: dict[str, Path], work: Path) -> list[list]:
    """Every data command with an output inside a dataset, over an input, or through a symlink into one."""
    cohen, tree, table, csv_source = d["cohen"], d["tree"], d["table"], d["csv"]
    image = sorted((cohen / "images").iterdir())[0]
    manifest, verified = work / "m.csv", work / "v.csv"
    link = work / "link"
    link.symlink_to(cohen / "images")
    return [
        ["data", "manifest", cohen, "--out", cohen / "metadata.csv"],
        ["data", "manifest", cohen, "--out", cohen / "images" / "m.csv"],
        ["data", "manifest", cohen, "--out", cohen / "manifest.csv"],
        ["data", "manifest", csv_source, "--out", csv_source],
        ["data", "manifest", tree, "--out", tree / "covid" / "m.csv"],
        ["data", "manifest", cohen, "--out", link / "m.csv"],
        ["data", "verify", manifest, "--report", image, "--out", work / "v2.csv"],
        ["data", "verify", manifest, "--report", work / "r.csv", "--out", manifest],
        ["data", "verify", manifest, "--report", work / "r.csv", "--out", tree / "normal" / "v.csv"],
        ["data", "charts", manifest, "--out", tree / "covid" / "charts"],
        ["data", "clean", verified, "--out", cohen / "clean.csv"],
        ["data", "clean", verified, "--out", table / "img" / "clean.csv"],
        ["data", "select", manifest, "--finding", "covid", "--out", cohen / "images" / "selected"],
        ["data", "select", manifest, "--finding", "covid", "--out", cohen],
        ["data", "select", manifest, "--finding", "covid", "--out", tree / "covid"],
        ["data", "select", manifest, "--finding", "covid", "--out", link / "sub"],
        ["data", "dedupe", manifest, "--out", cohen / "d.csv"],
        ["data", "dedupe", manifest, "--out", work / "d.csv", "--clusters", tree / "normal" / "c.csv", "--pairs", work / "p.csv"],
        ["data", "dedupe", manifest, "--out", work / "d.csv", "--clusters", work / "c.csv", "--pairs", image],
        ["data", "split", manifest, "--out", table / "img" / "s.csv", "--no-dedupe"],
        ["data", "prepare", tree, "--out", tree / "covid" / "prepared"],
        ["data", "prepare", cohen, "--out", cohen / "prepared"],
        ["data", "prepare", d["base"], "--out", d["base"] / "prepared"],
    ]


def test_no_data_command_writes_into_a_dataset_or_over_an_input(datasets, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    roots = [datasets["cohen"], datasets["tree"], datasets["csv"]]
    assert main(["data", "manifest", *map(str, roots), "--out", str(work / "m.csv")]) == 0
    assert main(["data", "verify", str(work / "m.csv"), "--out", str(work / "v.csv"), "--report", str(work / "r.csv")]) == 0
    before = tree_digest(datasets["base"])
    refused = 0
    for args in hostile_commands(datasets, work):
        capsys.readouterr()
        status = main([str(a) for a in args])
        error = capsys.readouterr().err
        assert status == 2, (args, error)
        assert "refusing to write" in error and len(error.strip().splitlines()) == 1, (args, error)
        refused += 1
    after = tree_digest(datasets["base"])
    changed = [name for name in before if before[name] != after.get(name)]
    added = [name for name in after if name not in before]
    assert (changed, added) == ([], []), (changed, added)
    assert refused == 23


def test_legitimate_outputs_beside_the_datasets_still_work(datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "manifest", str(datasets["tree"]), "--out", "m.csv"]) == 0
    assert main(["data", "dedupe", "m.csv", "--out", "out/d.csv", "--workers", "1"]) == 0
    assert (tmp_path / "out" / "duplicate-clusters.csv").is_file() and (tmp_path / "out" / "duplicate-pairs.csv").is_file()
    assert not (tmp_path / "duplicate-clusters.csv").exists() and not (tmp_path / "duplicate-pairs.csv").exists()
    assert main(["data", "select", "m.csv", "--finding", "covid", "--out", "selected"]) == 0
    assert len(list((tmp_path / "selected").glob("*.png"))) == 3


def test_paths_in_metadata_that_leave_the_dataset_are_excluded_and_never_copied(datasets, tmp_path):
    """A downloaded collection's metadata.csv may not reach outside its folder; the user's own CSV may (issue #25)."""
    cohen = datasets["cohen"]
    metadata = cohen / "metadata.csv"
    rows = pd.read_csv(metadata, dtype=str, keep_default_na=False)
    hostile = rows.iloc[[0, 0, 0]].copy()
    hostile["filename"] = ["../../../../../../../../etc/passwd", "/etc/hostname", ".bashrc"]
    hostile["folder"] = ["images", "images", "../../../../../../../../root"]
    hostile["finding"] = "COVID-19"
    pd.concat([rows, hostile]).to_csv(metadata, index=False)
    out = tmp_path / "m.csv"
    assert main(["data", "manifest", str(cohen), "--out", str(out)]) == 0
    manifest = pd.read_csv(out, dtype=str, keep_default_na=False)
    outside = manifest[manifest["exclusion"] == "path outside the dataset folder"]
    assert len(outside) == 3 and (outside["label"] == "").all()
    assert main(["data", "select", str(out), "--finding", "COVID-19", "--out", str(tmp_path / "sel")]) == 0
    assert main(["data", "select", str(out), "--finding", "covid", "--out", str(tmp_path / "sel2")]) == 0
    copied = {p.name for p in (tmp_path / "sel").iterdir()} | {p.name for p in (tmp_path / "sel2").iterdir()}
    assert not copied & {"passwd", "hostname", ".bashrc"}, copied
    verified = tmp_path / "v.csv"
    assert main(["data", "verify", str(out), "--out", str(verified), "--report", str(tmp_path / "r.csv")]) == 0
    reasons = pd.read_csv(verified, dtype=str, keep_default_na=False).set_index("path")["reason"]
    assert (reasons[outside["path"]] == "path outside the dataset folder").all()
    # the user's own CSV, named on the command line: its paths are read as written, no option needed
    table = datasets["table"]
    elsewhere = datasets["base"] / "films"
    elsewhere.mkdir()
    first, second = sorted((table / "img").iterdir())[:2]
    shutil.copy(first, elsewhere / "a.png")
    shutil.copy(second, elsewhere / "b.png")
    (table / "labels.csv").write_text((table / "labels.csv").read_text() + f"{elsewhere / 'a.png'},covid\n../films/b.png,normal\n")
    mine = tmp_path / "mine.csv"
    for extra in ([], ["--allow-absolute-paths"]):  # the old option is accepted and changes nothing
        assert main(["data", "manifest", str(table / "labels.csv"), *extra, "--out", str(mine)]) == 0
        listed = pd.read_csv(mine, dtype=str, keep_default_na=False)
        assert (listed["exclusion"] != "path outside the dataset folder").all() and (listed["label"] != "").all()
        assert {Path(p).resolve() for p in listed["path"]} >= {elsewhere / "a.png", elsewhere / "b.png"}
        mine.unlink()


def test_odd_tables_and_trees_give_one_line_errors_or_are_read(datasets, tmp_path):
    cohen, table = datasets["cohen"], datasets["table"]
    severity = cohen / "annotations" / "covid-severity-scores.csv"
    latin = tmp_path / "latin" / "covid-chestxray-dataset"
    shutil.copytree(cohen, latin)
    (latin / "annotations" / "covid-severity-scores.csv").write_bytes(severity.read_bytes() + "caf\u00e9.jpg,1,1\n".encode("latin-1"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (table / "labels.csv").read_bytes().replace(b"img/", str(table / "img").encode() + b"/"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(bom.read_bytes()[3:].decode().encode("utf-16"))
    minimal = tmp_path / "minimal.csv"
    image = sorted((table / "img").iterdir())[0]
    minimal.write_text(f"path,source,label\n{image},mine,covid\n")
    loop_tree = tmp_path / "loop"
    shutil.copytree(datasets["tree"], loop_tree)
    (loop_tree / "covid" / "loop.png").symlink_to("loop.png")
    (loop_tree / "covid" / "again").symlink_to(".")
    loop_manifest = tmp_path / "loop.csv"
    assert main(["data", "manifest", str(loop_tree), "--out", str(loop_manifest)]) == 0
    frame = pd.read_csv(loop_manifest, dtype=str, keep_default_na=False)
    pd.concat([frame, frame.iloc[[0]].assign(path=str(loop_tree / "covid" / "loop.png"))]).to_csv(loop_manifest, index=False)
    cases = [
        (["data", "manifest", latin, "--out", tmp_path / "l.csv"], 2, "not UTF-8 text (byte 0xe9"),
        (["severity", "fit", "--data", latin, "--out", tmp_path / "s.npz"], 2, "not UTF-8 text (byte 0xe9"),
        (["data", "manifest", bom, "--out", tmp_path / "b.csv"], 0, "wrote manifest"),
        (["data", "manifest", utf16, "--out", tmp_path / "u.csv"], 0, "wrote manifest"),
        (["data", "clean", minimal, "--out", tmp_path / "c.csv"], 0, "clean manifest"),
        (["data", "select", minimal, "--finding", "covid", "--out", tmp_path / "sel"], 0, "copied 1 images"),
        (["data", "select", loop_manifest, "--finding", "covid", "--out", tmp_path / "loopsel"], 0, "copied 3 images"),
    ]
    for args, status, message in cases:
        result = run_cli(*args)
        assert result.returncode == status, (args, result.stderr[-2000:])
        assert message in result.stderr + result.stdout, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (args, result.stderr[-2000:])
    for name in ("b.csv", "u.csv"):
        assert len(pd.read_csv(tmp_path / name)) == 4


# ---- the pipeline from Python (issue #22): covidxray.data.prepare is what `data prepare` runs ----


def test_prepare_from_python_writes_what_the_cli_writes(mini_cohen, mini_radiography, tmp_path, capsys):
    from covidxray.data import PreparedData, prepare

    roots = [mini_cohen, mini_radiography]
    result = prepare(roots, tmp_path / "python", holdout=["covid19-radiography-database"], workers=1)
    assert isinstance(result, PreparedData) and "wrote" not in capsys.readouterr().out  # a function: it prints no tables
    assert main(["data", "prepare", *map(str, roots), "--out", str(tmp_path / "cli"),
                 "--holdout", "covid19-radiography-database"]) == 0
    printed = capsys.readouterr()
    names = ["manifest.csv", "verify-report.csv", "clean.csv", "duplicate-clusters.csv", "duplicate-pairs.csv",
             "split.csv", "split-loso.csv"]
    assert [table.path.name for table in result.written] == names
    for name in names:  # same tables, byte for byte
        assert (tmp_path / "python" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    said = "".join(printed.err.split())  # the console wraps long lines, paths included
    for table in result.written:
        assert "".join(f"wrote {table.what}: {tmp_path / 'cli' / table.path.name} ({table.rows} rows)".split()) in said
    manifest = pd.read_csv(result.manifest, dtype=str, keep_default_na=False)
    clean = pd.read_csv(result.clean, dtype=str, keep_default_na=False)
    loso = pd.read_csv(result.split_loso, dtype=str, keep_default_na=False)
    assert result.images == len(manifest) == 11 + 6 and result.kept == len(clean)
    assert result.split == tmp_path / "python" / "split.csv" and result.charts.is_file()
    assert set(loso.loc[loso["source"] == "covid19-radiography-database", "split"]) == {"external"}
    assert result.grade_conflicts is None and result.conflicts == 0
    titles = [title for title, _ in result.tables]
    assert titles[0].startswith("images per source and label") and titles[-1].startswith("leave-one-source-out split")
    shown = " ".join(printed.out.split())  # a long title wraps at spaces
    for title in titles:
        assert " ".join(title.split()) in shown, title


def test_prepare_from_python_refuses_an_output_inside_a_dataset_before_writing(mini_cohen):
    from covidxray.data import prepare
    from covidxray.paths.outputs import OutputRefused

    before = tree_digest(mini_cohen)
    with pytest.raises(OutputRefused, match="inside the dataset folder"):
        prepare([mini_cohen], mini_cohen / "prepared")
    assert tree_digest(mini_cohen) == before

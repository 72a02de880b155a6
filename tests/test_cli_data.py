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
    cohen = datasets["cohen"]
    metadata = cohen / "metadata.csv"
    rows = pd.read_csv(metadata, dtype=str, keep_default_na=False)
    hostile = rows.iloc[[0, 0, 0]].copy()
    hostile["filename"] = ["../../../../../../../../etc/passwd", "/etc/hostname", ".bashrc"]
    hostile["folder"] = ["images", "images", "../../../../../../../../root"]
    hostile["finding"] = "COVID-19"
    pd.concat([rows, hostile]).to_csv(metadata, index=False)
    table = datasets["table"]
    (table / "labels.csv").write_text((table / "labels.csv").read_text() + "../../../../../../../../etc/passwd,covid\n/etc/hostname,covid\n")
    out = tmp_path / "m.csv"
    assert main(["data", "manifest", str(cohen), str(table / "labels.csv"), "--out", str(out)]) == 0
    manifest = pd.read_csv(out, dtype=str, keep_default_na=False)
    outside = manifest[manifest["exclusion"] == "path outside the dataset folder"]
    assert len(outside) == 4 and (outside["label"] == "").all()  # /etc/hostname listed by both: one row
    assert main(["data", "select", str(out), "--finding", "COVID-19", "--out", str(tmp_path / "sel")]) == 0
    assert main(["data", "select", str(out), "--finding", "covid", "--out", str(tmp_path / "sel2")]) == 0
    copied = {p.name for p in (tmp_path / "sel").iterdir()} | {p.name for p in (tmp_path / "sel2").iterdir()}
    assert not copied & {"passwd", "hostname", ".bashrc"}, copied
    verified = tmp_path / "v.csv"
    assert main(["data", "verify", str(out), "--out", str(verified), "--report", str(tmp_path / "r.csv")]) == 0
    reasons = pd.read_csv(verified, dtype=str, keep_default_na=False).set_index("path")["reason"]
    assert (reasons[outside["path"]] == "path outside the dataset folder").all()
    opted = tmp_path / "opted.csv"
    assert main(["data", "manifest", str(table / "labels.csv"), "--allow-absolute-paths", "--out", str(opted)]) == 0
    assert (pd.read_csv(opted, dtype=str, keep_default_na=False)["exclusion"] != "path outside the dataset folder").all()


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

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

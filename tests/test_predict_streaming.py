"""`covidxray predict` at scale: rows streamed to CSV / JSON Lines / Parquet, --files-from, --shard, --resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from covidxray.cli import main
from covidxray.inference.predictor import SAMPLES
from covidxray.inference.writers import RowWriter, written_paths

IMAGES = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg", ".dcm"))


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> pd.DataFrame:
    """One plain run over the bundled samples: what every other way of running must reproduce."""
    out = tmp_path_factory.mktemp("whole") / "all.csv"
    assert main(["predict", *IMAGES, "--output", str(out)]) == 0
    return pd.read_csv(out, keep_default_na=False)


def listing(tmp_path, paths) -> str:
    path = tmp_path / "inputs.txt"
    path.write_text("# one path per line\n\n" + "\n".join(paths) + "\n")
    return str(path)


def test_shards_of_a_listing_cover_every_input_once(whole, tmp_path):
    files = listing(tmp_path, IMAGES)
    parts = []
    for number in (1, 2, 3):
        out = tmp_path / f"shard{number}.csv"
        assert main(["predict", "--files-from", files, "--shard", f"{number}/3", "--output", str(out)]) == 0
        parts.append(pd.read_csv(out, keep_default_na=False))
    joined = pd.concat(parts).set_index("path").sort_index()
    assert sorted(joined.index) == sorted(IMAGES) and joined.index.is_unique
    pd.testing.assert_frame_equal(joined, whole.set_index("path").sort_index())


def test_resume_continues_a_cut_off_csv_without_screening_anything_twice(whole, tmp_path, capsys):
    out = tmp_path / "r.csv"
    text = whole.iloc[:2].to_csv(index=False)
    out.write_text(text + whole.iloc[2:3].to_csv(index=False, header=False)[:25])  # a killed run's half line
    capsys.readouterr()
    assert main(["predict", *IMAGES, "--output", str(out), "--resume"]) == 0
    assert f"{len(IMAGES) - 2} inputs" in capsys.readouterr().err  # only the rest was screened
    resumed = pd.read_csv(out, keep_default_na=False)
    assert sorted(resumed["path"]) == sorted(IMAGES) and resumed["path"].is_unique
    pd.testing.assert_frame_equal(resumed.set_index("path").sort_index(), whole.set_index("path").sort_index())


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_json_lines_and_parquet_hold_the_csv_rows_and_resume(whole, tmp_path, suffix):
    pytest.importorskip("pyarrow")
    out = tmp_path / f"r{suffix}"
    assert main(["predict", *IMAGES[:2], "--output", str(out)]) == 0
    assert main(["predict", *IMAGES, "--output", str(out), "--resume"]) == 0
    assert sorted(written_paths(out)) == sorted(IMAGES)
    table = pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_parquet(out)
    table = table.set_index("path").sort_index()
    expected = whole.set_index("path").sort_index()
    assert (table["p_covid"] - expected["p_covid"]).abs().max() < 1e-9
    assert list(table["prediction"]) == list(expected["prediction"])
    if suffix == ".jsonl":
        assert all(isinstance(flags, list) for flags in table["input_flags"])  # a list, as in the web API


def test_rows_are_on_disk_as_soon_as_each_batch_is_written(tmp_path):
    out = tmp_path / "live.csv"
    writer = RowWriter(out, {"notice": "n", "model": "m"})
    writer.write([{"path": "a.png", "p_covid": 0.5}])
    assert list(written_paths(out)) == ["a.png"]  # readable before the run ends
    writer.write([{"path": "b.png", "p_covid": 0.25}])
    writer.close()
    assert list(pd.read_csv(out)["path"]) == ["a.png", "b.png"]


def test_a_json_document_is_whole_even_when_streamed(tmp_path):
    out = tmp_path / "r.json"
    assert main(["predict", *IMAGES[:3], "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert "not a medical device" in document["notice"] and len(document["results"]) == 3


def test_a_long_run_prints_one_screenful_and_a_summary(tmp_path, capsys):
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(25):
        (folder / f"x{number:02d}.png").symlink_to(SAMPLES / "normal-nih-00001280_004.png")
    capsys.readouterr()
    assert main(["predict", str(folder), "--output", str(tmp_path / "r.csv")]) == 0
    captured = capsys.readouterr()
    assert "x19.png" in captured.out and "x20.png" not in captured.out  # 20 rows shown
    assert "showing 20 of 25 rows" in captured.err and "screened 25 inputs" in captured.err
    assert len(pd.read_csv(tmp_path / "r.csv")) == 25


@pytest.mark.parametrize("arguments, message", [
    (["--resume"], "--resume needs --output"),
    (["--shard", "3/2"], "--shard '3/2': K must be between 1 and N"),
    (["--shard", "x"], "expected K/N"),
    (["--files-from", "/no/such/list.txt"], "cannot read the list of files"),
])
def test_bad_batch_options_are_one_line(arguments, message, capsys):
    assert main(["predict", IMAGES[0], *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error


def test_resume_refuses_a_json_document(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    assert main(["predict", IMAGES[0], "--output", str(out), "--resume"]) == 2
    assert "a .json document is written whole" in capsys.readouterr().err


def test_outputs_never_land_in_a_listed_folder_or_over_the_listing(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").symlink_to(SAMPLES / "normal-nih-00001280_004.png")
    files = listing(tmp_path, [str(folder)])
    for output, message in ((folder / "r.csv", "inside the input folder"), (tmp_path / "inputs.txt", None)):
        capsys.readouterr()
        assert main(["predict", "--files-from", files, "--output", str(output)]) == 2
        error = capsys.readouterr().err
        assert (message or "must end in") in error and len(error.strip().splitlines()) == 1, error
    listed_csv = tmp_path / "inputs.csv"
    listed_csv.write_text(str(folder / "a.png") + "\n")
    assert main(["predict", "--files-from", str(listed_csv), "--output", str(listed_csv)]) == 2
    assert "over an input" in capsys.readouterr().err
    assert listed_csv.read_text() == str(folder / "a.png") + "\n"


def test_resume_refuses_rows_of_another_shape(tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("path,p_covid,p_pneumonia,p_normal,prediction\nold.png,0.1,0.2,0.7,normal\n")
    capsys.readouterr()
    assert main(["predict", IMAGES[0], "--output", str(out), "--resume"]) == 2
    assert "the rows already there have other columns" in capsys.readouterr().err
    assert out.read_text().count("\n") == 2  # the earlier rows are kept as they were


def test_resume_with_nothing_left_says_so_and_leaves_the_output_alone(whole, tmp_path, capsys):
    out = tmp_path / "done.csv"
    assert main(["predict", *IMAGES, "--output", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["predict", *IMAGES, "--output", str(out), "--resume"]) == 0
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert f"nothing left to screen: all {len(IMAGES)} inputs are already in" in said
    assert "wrote" not in said and "screened 0" not in said and out.read_bytes() == before


def test_an_empty_list_is_named_as_empty(tmp_path, capsys):
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing yet\n")
    for listing_path in (str(empty), "/dev/null"):
        assert main(["predict", "--files-from", listing_path]) == 2
        error = capsys.readouterr().err
        assert f"{listing_path}: the list is empty" in error and "give image files" not in error

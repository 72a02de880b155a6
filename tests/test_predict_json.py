"""Every output keeps a row's shape: JSON and JSON Lines keep input_flags a list and input_scores an
object, as the API does; the CSV writes 'a;b' and the scores' JSON text; every row has one status."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from covidxray.cli import main
from covidxray.inference.predictor import SAMPLES


def test_json_outputs_keep_lists_and_dicts_and_csv_flattens_them(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype("uint8")).save(photo)
    sample = SAMPLES / "normal-nih-00001280_004.png"
    for suffix in ("json", "jsonl", "csv"):
        main(["predict", str(photo), str(sample), "--output", str(tmp_path / f"r.{suffix}")])
    rows = {row["path"]: row for row in json.loads((tmp_path / "r.json").read_text())["results"]}
    lines = {row["path"]: row for row in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    table = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False).set_index("path")
    for document in (rows, lines):
        assert all(isinstance(row["input_flags"], list) and isinstance(row["input_scores"], dict) for row in document.values())
        assert document[str(sample)]["input_flags"] == [] and document[str(sample)]["status"] == "screened"
        assert document[str(photo)]["status"] == "refused" and document[str(photo)]["prediction"] is None
    flags = rows[str(photo)]["input_flags"]
    assert flags and all(isinstance(flag, str) and ";" not in flag for flag in flags)
    assert table.loc[str(photo), "input_flags"] == ";".join(flags)
    assert json.loads(table.loc[str(sample), "input_scores"]) == rows[str(sample)]["input_scores"]
    assert table.loc[str(photo), "status"] == "refused" and table.loc[str(photo), "prediction"] == ""

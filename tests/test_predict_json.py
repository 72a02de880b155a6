"""`covidxray predict --output x.json` lists input_flags as a list, as the API does; the CSV keeps 'a;b'."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from covidxray.cli import main
from covidxray.inference.predictor import SAMPLES


def test_json_output_lists_flags_and_csv_joins_them(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype("uint8")).save(photo)
    sample = SAMPLES / "normal-nih-00001280_004.png"
    main(["predict", str(photo), str(sample), "--output", str(tmp_path / "r.json")])
    main(["predict", str(photo), str(sample), "--output", str(tmp_path / "r.csv")])
    rows = {row["path"]: row for row in json.loads((tmp_path / "r.json").read_text())["results"]}
    table = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False).set_index("path")
    assert all(isinstance(row["input_flags"], list) for row in rows.values())
    assert rows[str(sample)]["input_flags"] == []
    flags = rows[str(photo)]["input_flags"]
    assert flags and all(isinstance(flag, str) and ";" not in flag for flag in flags)
    assert table.loc[str(photo), "input_flags"] == ";".join(flags)

"""The Python API: covidxray.load_model().screen(paths, bytes or arrays), typed results, a pandas frame."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import pandas as pd

import covidxray
from covidxray.cli import main
from covidxray.imaging.read import read_image
from covidxray.inference.predictor import SAMPLES

SAMPLE = SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg"


def test_import_is_light_and_names_load_on_first_use():
    code = ("import sys, covidxray; heavy = [m for m in ('numpy', 'torch', 'pandas', 'onnxruntime') if m in sys.modules]; "
            "print(heavy); print(callable(covidxray.load_model))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert output[0] == "[]" and output[1] == "True"


def test_paths_bytes_and_arrays_are_screened_alike_and_as_the_cli_writes_them(tmp_path):
    model = covidxray.load_model()
    results = model.screen([SAMPLE, SAMPLE.read_bytes(), read_image(SAMPLE)])
    assert isinstance(results[0], covidxray.ScreeningResult) and len(results) == 3
    assert [r.path for r in results] == [str(SAMPLE), "bytes[1]", "array[2]"]  # named by position
    assert max(abs(r.p_covid - results[0].p_covid) for r in results) < 1e-6
    assert {r.prediction for r in results} == {results[0].prediction} and all(r.status == "screened" for r in results)
    frame = results.to_frame()
    out = tmp_path / "cli.csv"
    assert main(["predict", str(SAMPLE), "--output", str(out)]) == 0
    cli = pd.read_csv(out)
    assert list(frame.columns) == list(cli.columns)
    assert abs(frame.loc[0, "p_covid"] - cli.loc[0, "p_covid"]) < 1e-6


def test_a_wrongly_scaled_array_gets_its_reason_and_the_others_their_answers():
    model = covidxray.load_model()
    image = read_image(SAMPLE)
    good, scaled, photo = model.screen([image, image * 255, np.zeros((8, 8, 3))])
    assert good.status.scored
    assert scaled.status == "error" and scaled.p_covid is None and "divide by 255" in scaled.error
    assert photo.status == "error" and "2-D greyscale" in photo.error


def test_heat_maps_on_request_are_image_sized_and_in_unit_range():
    model = covidxray.load_model(gate=False)
    plain, = model.screen(SAMPLE)
    assert plain.heatmap is None
    mapped, = model.screen(SAMPLE, heatmaps=True)
    image = read_image(SAMPLE)
    assert mapped.heatmap.shape == image.shape and 0 <= mapped.heatmap.min() <= mapped.heatmap.max() <= 1


def test_the_api_names_its_options_and_refuses_unknown_ones():
    import pytest

    with pytest.raises(covidxray.CovidxrayError, match="backend 'gpu' unknown"):
        covidxray.load_model(backend="gpu")
    with pytest.raises(covidxray.CovidxrayError, match="checkpoint not found"):
        covidxray.load_model("no-such-model.pt")
    result, = covidxray.load_model().screen([object()])
    assert "cannot screen a object" in result.error


def test_screen_iter_takes_inputs_only_as_it_needs_them():
    from itertools import islice, repeat

    image = read_image(SAMPLE)
    endless = repeat(image)  # never ends: screening must not try to list it first
    first = list(islice(covidxray.load_model().screen_iter(endless, batch_size=2), 3))
    assert [r.path for r in first] == ["array[0]", "array[1]", "array[2]"] and all(r.status.scored for r in first)


def test_each_result_has_one_status_and_errors_are_collected_or_raised(tmp_path):
    from PIL import Image

    photo = tmp_path / "holiday.png"
    Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype("uint8")).save(photo)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    model = covidxray.load_model()
    results = model.screen([SAMPLE, photo, empty])
    good, refused, broken = results
    assert good.status == covidxray.Status.SCREENED and good.prediction in model.labels and good.p_covid is not None
    assert refused.status == "refused" and refused.prediction is None and refused.p_covid is None and refused.input_note
    assert broken.status == "error" and broken.prediction is None and "empty" in broken.error
    assert results.errors == [broken] and results.tally() == {"screened": 1, "refused": 1, "error": 1}
    with pytest.raises(covidxray.ScreeningError, match="1 input.*empty.png") as raised:
        model.screen([SAMPLE, empty], raise_on_error=True)
    assert [r.status for r in raised.value.results] == ["screened", "error"]
    with pytest.raises(covidxray.ScreeningError):
        list(model.screen_iter([empty, SAMPLE], raise_on_error=True))


def test_frames_keep_flags_a_list_and_scores_a_dict(tmp_path):
    frame = covidxray.load_model().screen([SAMPLE]).to_frame()
    assert frame.loc[0, "status"] == "screened"
    assert isinstance(frame.loc[0, "input_flags"], list) and isinstance(frame.loc[0, "input_scores"], dict)
    assert all(isinstance(value, float) for value in frame.loc[0, "input_scores"].values())

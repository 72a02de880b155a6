"""The model shipped inside the package: present, small, documented, and screening the samples."""

from pathlib import Path

import numpy as np
from covidxray.cli import main
from covidxray.evaluation.model_card import README_END, README_START, yardstick_section
from covidxray.inference.predictor import DEFAULT_MODEL, SAMPLES, Predictor, expand_inputs
from covidxray.paths.weights import WEIGHTS_DIR as WEIGHTS


def test_bundled_model_is_small_and_has_a_generated_model_card():
    assert DEFAULT_MODEL.is_file(), "run scripts/release_model.sh to build the bundled model"
    assert DEFAULT_MODEL.stat().st_size < 8_000_000
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    for text in ("not a medical device", "Internal test part", "Held-out source", "95%", "Reproduce", "scripts/release_model.sh",
                 "Recipe: `default`"):
        assert text in card, text


def test_readme_leads_with_the_model_cards_own_yardstick():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    assert block == yardstick_section(card), "rerun `covidxray model-card ... --readme README.md` (scripts/release_model.sh)"
    assert "held out of training entirely" in block and "| shipped model, internal test part |" in block


def test_samples_are_screened_offline_by_the_bundled_model():
    paths = expand_inputs([str(SAMPLES)])
    assert len(paths) == 5  # four images and one DICOM made from one of them
    predictor = Predictor()
    results = [r for r, _ in predictor.screen_paths(paths)]
    assert all(r.status == "screened" and not r.error for r in results), [(r.path, r.error, r.input_note) for r in results]
    p = np.array([r.p_covid for r in results])
    assert ((0 <= p) & (p <= 1)).all()
    assert main(["predict", str(SAMPLES)]) == 0


def test_bundled_onnx_model_agrees_with_torch():
    assert DEFAULT_MODEL.with_suffix(".onnx").is_file(), "run `covidxray export --onnx --lungs` to build the ONNX files"
    paths = expand_inputs([str(SAMPLES)])
    p_torch = [r.p_covid for r, _ in Predictor(backend="torch").screen_paths(paths)]
    p_onnx = [r.p_covid for r, _ in Predictor(backend="onnx").screen_paths(paths)]
    assert np.abs(np.array(p_torch) - np.array(p_onnx)).max() < 1e-4

"""The site adaptation (`covidxray adapt`): calibration and threshold fitted on some patients, judged only on
others (one split, or cross-fitting when few), and a site model with the same weights, the new settings and
its own card; on films it never saw it is no worse calibrated than the shipped model where that is true."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidxray import RESEARCH_NOTICE
from covidxray.cli import main
from tests.test_site import _real_films, _scores, _screened


def test_the_composed_calibration_is_the_site_fit_on_the_shipped_logit():
    from covidxray.inference.calibration import probabilities
    from covidxray.site.adapt import SiteFit

    z = np.linspace(-8, 8, 41)
    shipped_temperature, shipped_bias = 1.3, 0.4
    u = z / shipped_temperature + shipped_bias
    fit = SiteFit(0.7, -0.25, 0.5, 10, 10)
    temperature, bias = fit.composed(shipped_temperature, shipped_bias)
    assert probabilities(z, "binary", temperature, bias)[:, 1] == pytest.approx(fit.p_covid(u), abs=1e-6)


def test_no_film_is_judged_by_a_fit_that_saw_its_patient():
    from covidxray.site.adapt import folds_of

    rng = np.random.default_rng(0)
    groups = np.array([f"p{n // 2}" for n in range(120)])  # two films a patient
    is_covid = np.repeat(rng.random(60) < 0.4, 2)
    for scheme, folds in (("crossfit", 5), ("split", 2)):
        found = folds_of(is_covid, groups, scheme, folds, seed=0)
        assert len(found) == (5 if scheme == "crossfit" else 1)
        for fitting, judged in found:
            assert not set(groups[fitting]) & set(groups[judged])
            assert is_covid[judged].any() and (~is_covid[judged]).any()
        if scheme == "crossfit":
            assert sorted(np.concatenate([judged for _, judged in found]).tolist()) == list(range(120))


def test_cross_fitting_repairs_a_miscalibrated_model_on_films_it_never_saw():
    from covidxray.site.adapt import adapt_screened

    p_covid, is_covid = _scores(300, seed=5, shift=1.5, slope=1.6)  # overconfident and shifted towards covid
    adaptation = adapt_screened(_screened(p_covid, is_covid), sensitivity=0.9, resamples=200)
    assert adaptation.scheme == "crossfit" and adaptation.folds == 5 and len(adaptation.fits) == 5
    held = adaptation.held_out
    assert held["n_films"] == 300 and held["adapted"]["ece"].value < held["bundled"]["ece"].value
    assert held["ece_difference"].ci_high < 0
    assert any(line.startswith("Calibration: better after adaptation") for line in adaptation.verdict)
    assert held["adapted"]["sensitivity"].value >= 0.8
    assert adaptation.final.films == 300  # the site model: the same procedure on every film
    assert adaptation.settings["temperature"] > 1.0  # an overconfident model is cooled


def test_many_patients_are_split_in_two_and_the_site_model_is_the_fit_judged():
    from covidxray.site.adapt import adapt_screened

    p_covid, is_covid = _scores(900, seed=6, shift=-1.0)
    adaptation = adapt_screened(_screened(p_covid, is_covid), sensitivity=0.95, resamples=100)
    assert adaptation.scheme == "split" and len(adaptation.fits) == 1
    fit = adaptation.fits[0]
    assert fit["fitted_films"] + fit["judged_films"] == 900 and abs(fit["fitted_films"] - 450) < 30
    assert adaptation.final.films == fit["fitted_films"] and adaptation.final.threshold == fit["threshold"]
    assert adaptation.held_out["n_films"] == fit["judged_films"]
    assert adaptation.held_out["ece_difference"].value < 0
    assert adaptation.verdict[0].startswith(f"Fitted on {fit['fitted_films']} films")


def test_a_calibrated_model_is_not_made_worse_on_films_it_never_saw():
    from covidxray.site.adapt import adapt_screened

    p_covid, is_covid = _scores(500, seed=7)  # already calibrated
    adaptation = adapt_screened(_screened(p_covid, is_covid), resamples=200)
    difference = adaptation.held_out["ece_difference"]
    assert difference.ci_low < 0 < difference.ci_high or difference.ci_high < 0
    assert not any("WORSE" in line for line in adaptation.verdict)


def test_too_few_films_to_fit_and_judge_is_one_line():
    from covidxray.errors import CovidxrayError
    from covidxray.site.adapt import adapt_screened

    p_covid, is_covid = _scores(8, seed=8)
    with pytest.raises(CovidxrayError, match="too few to fit on some and judge on others"):
        adapt_screened(_screened(p_covid, is_covid))
    with pytest.raises(CovidxrayError, match="scheme 'halves' unknown"):
        adapt_screened(_screened(*_scores(100, seed=9)), scheme="halves")


@pytest.fixture()
def site_tree(data_dir, tmp_path) -> Path:
    films = _real_films(tmp_path / "raw", per_class=7)
    for label in films:
        (tmp_path / "site" / label).mkdir(parents=True)
        for path in films[label]:
            shutil.copy(path, tmp_path / "site" / label)
    return tmp_path / "site"


def test_adapt_writes_a_site_model_that_answers_as_it_was_judged(site_tree, tmp_path, capsys):
    out = tmp_path / "site-model"
    assert main(["adapt", str(site_tree), "--out", str(out), "--sensitivity", "0.9", "--resamples", "100"]) == 0
    assert "site-model.pt" in capsys.readouterr().err
    document = json.loads((out / "adapt.json").read_text())
    assert document["notice"] == RESEARCH_NOTICE and document["scheme"] == "crossfit"
    judged = pd.read_csv(out / "judged-films.csv")
    assert len(judged) == document["held_out"]["n_films"] == document["record"]["judged_on"]["films"]

    from covidxray.hashing import sha256_file
    from covidxray.inference.checkpoint import read_checkpoint
    from covidxray.inference.predictor import DEFAULT_MODEL, Predictor
    from covidxray.site.adapt import SiteFit, shipped_logit

    content, shipped = read_checkpoint(out / "site-model.pt"), read_checkpoint(DEFAULT_MODEL)
    record = content["record"]["site_fit"]
    assert record["from_checkpoint_sha256"] == sha256_file(DEFAULT_MODEL) and record["fitted_on_films"] == len(judged)
    assert record["target_sensitivity"] == 0.9 and record["site"] == "site"
    assert content["threshold"] == pytest.approx(document["site_model_settings"]["threshold"])
    assert all(np.array_equal(content["state_dict"][k], shipped["state_dict"][k]) for k in shipped["state_dict"])

    site_model = Predictor(out / "site-model.pt", severity=False).screen(judged["path"].tolist())
    fit = SiteFit(record["site_fit_on_shipped_logit"]["temperature"], record["site_fit_on_shipped_logit"]["logit_bias"],
                  content["threshold"], 0, 0)
    expected = fit.p_covid(shipped_logit(judged["p_shipped"].to_numpy(float)))
    assert np.array([r.p_covid for r in site_model]) == pytest.approx(expected, abs=1e-4)
    assert [r.prediction == "covid" for r in site_model] == (expected >= content["threshold"]).tolist()

    card = (out / "MODEL_CARD.md").read_text()
    assert RESEARCH_NOTICE in card and "films it was not fitted on" in card
    ece = document["held_out"]["adapted"]["ece"]
    assert f"{ece['value']:.3f} [{ece['ci_low']:.3f}, {ece['ci_high']:.3f}] (n={ece['n']})" in card
    page = (out / "report.html").read_text()
    assert RESEARCH_NOTICE in page and "Shipped against adapted" in page and str(tmp_path) not in page


def test_adapt_never_writes_into_the_site_nor_the_bundled_weights(site_tree, capsys):
    from covidxray.inference.predictor import DEFAULT_MODEL

    for out in (site_tree / "covid" / "model", DEFAULT_MODEL.parent / "site"):
        assert main(["adapt", str(site_tree), "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith(f"error: {out}: refusing to write"), error
        assert not out.exists()

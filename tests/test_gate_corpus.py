"""The refusal corpus: each class of what is not a frontal chest radiograph is refused or flagged.

Cases come from tests/refusal_corpus.py (real photographs and an MR slice
shipped with installed packages, the COVID-19 collection's real lateral views, real frontal
radiographs inverted or cut; generated documents, screenshots, CT and MR slices). Each file is
read as an upload is (whole bytes), then gated by the bundled gate. The API test posts a DICOM
whose header says CT (pixels of a radiograph) to the running service with the bundled model.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from refusal_corpus import CORPUS_KINDS, refusal_corpus, screen_case

#: Share of each class that must be refused or flagged (issue #14).
REQUIRED = 0.95
#: Classes that must be refused outright (no probability at all).
MUST_REFUSE = {"colour photograph", "blank or near-constant", "CT/MR DICOM", "colour DICOM (OT, RGB)", "strip",
               "document", "screenshot", "landscape photograph (grey)", "CT DICOM in Hounsfield units, no Modality"}


@pytest.fixture(scope="module")
def corpus(data_dir):
    return refusal_corpus(data_dir, per_kind=10)


@pytest.mark.parametrize("kind", CORPUS_KINDS)
def test_each_class_is_refused_or_flagged(corpus, kind):
    results = [(case.name, screen_case(case)) for case in corpus if case.kind == kind]
    assert len(results) >= 10
    caught = [name for name, r in results if r.status != "ok"]
    assert len(caught) / len(results) >= REQUIRED, [(n, r.reason) for n, r in results if r.status == "ok"]
    if kind in MUST_REFUSE:
        assert all(r.status == "refused" for _, r in results), [(n, r.reason) for n, r in results if r.status != "refused"]
    assert all(r.reason and r.reason != "looks like a frontal chest radiograph" for _, r in results if r.status != "ok")


def test_ct_dicom_is_refused_by_the_api_fed_the_whole_file(real_png, tmp_path):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from covidxray.serve.app import create_app
    from dicom_factory import radiograph_dataset, save

    grey = np.asarray(Image.open(real_png).convert("L"))
    data = save(radiograph_dataset(grey, modality="CT"), tmp_path / "chest.dcm").read_bytes()
    with TestClient(create_app()) as client:
        answer = client.post("/api/v1/predict", files={"file": ("chest.dcm", data, "application/dicom")}).json()
        assert answer["status"] == "refused" and answer["p_covid"] is None, answer
        assert "not_xray_modality" in answer["input_flags"] and "CT scan" in answer["input_note"]
        as_dx = save(radiograph_dataset(grey, modality="DX"), tmp_path / "dx.dcm").read_bytes()
        screened = client.post("/api/v1/predict", files={"file": ("dx.dcm", as_dx, "application/dicom")}).json()
        assert screened["status"] in ("screened", "warned") and screened["p_covid"] is not None
        negative = 255 - grey  # an inverted export: screened, with a warning unless warnings are off
        Image.fromarray(negative).save(tmp_path / "negative.png")
        body = (tmp_path / "negative.png").read_bytes()
        warned = client.post("/api/v1/predict", files={"file": ("negative.png", body, "image/png")}).json()
        assert warned["status"] == "warned" and warned["p_covid"] is not None and warned["input_note"]
        assert "p_inverted" in warned["input_scores"]
        quiet = client.post("/api/v1/predict?gate_warnings=false", files={"file": ("negative.png", body, "image/png")}).json()
        assert quiet["status"] == "screened" and quiet["input_flags"] == []


def test_ct_dicom_is_refused_by_the_cli(real_png, tmp_path):
    from typer.testing import CliRunner

    from covidxray.cli import app
    from dicom_factory import radiograph_dataset, save

    grey = np.asarray(Image.open(real_png).convert("L"))
    save(radiograph_dataset(grey, modality="ct "), tmp_path / "chest.dcm")
    Image.fromarray(255 - grey).save(tmp_path / "negative.png")
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "chest.dcm"), str(tmp_path / "negative.png"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    import json

    rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(out.read_text())["results"]}
    assert rows["chest.dcm"]["status"] == "refused" and rows["chest.dcm"]["p_covid"] is None
    assert rows["negative.png"]["status"] == "warned" and rows["negative.png"]["p_covid"] is not None
    quiet = CliRunner().invoke(app, ["predict", str(tmp_path / "negative.png"), "--no-gate-warnings", "-o", str(out)])
    assert quiet.exit_code == 0 and json.loads(out.read_text())["results"][0]["status"] == "screened"


def _predict_rows(paths, out):
    import json

    from typer.testing import CliRunner

    from covidxray.cli import app

    result = CliRunner().invoke(app, ["predict", *map(str, paths), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(out.read_text())["results"]}


def test_a_grey_landscape_photograph_is_refused_by_predict(tmp_path):
    """Issue #25: it was screened with a warning (p_covid 0.86, "inverted; fragment")."""
    from refusal_corpus import landscape_photo

    landscape_photo(np.random.default_rng(25)).save(tmp_path / "holiday.jpg", quality=90)
    row = _predict_rows([tmp_path / "holiday.jpg"], tmp_path / "rows.json")["holiday.jpg"]
    assert row["status"] == "refused" and row["p_covid"] is None and row["input_flags"] == ["photograph"], row
    assert "photograph of a scene" in row["input_note"]


def test_a_ct_slice_in_hounsfield_units_is_refused_by_predict(tmp_path):
    """Issue #25: a DICOM of signed HU with no Modality and no window was screened ("unusual", p_covid 0.64)."""
    from dicom_factory import hounsfield_ct_dataset, save

    save(hounsfield_ct_dataset(), tmp_path / "slice.dcm")
    row = _predict_rows([tmp_path / "slice.dcm"], tmp_path / "rows.json")["slice.dcm"]
    assert row["status"] == "refused" and row["p_covid"] is None and row["input_flags"] == ["ct_values"], row
    assert "Hounsfield units of a CT slice" in row["input_note"]

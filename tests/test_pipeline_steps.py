"""verify, clean, select, dedupe and split on small real copies and generated files."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidxray.data.clean import clean_manifest
from covidxray.data.dedupe import cluster_summary, find_duplicates
from covidxray.data.manifest import build_manifest
from covidxray.data.schema import as_manifest
from covidxray.data.select import select_images
from covidxray.data.split import SplitSettings, assign_splits, check_split
from covidxray.data.verify import verify_manifest
from covidxray.errors import CovidxrayError, DatasetError


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def test_verify_reports_missing_and_unreadable_with_reasons(mini_cohen, tmp_path):
    manifest = build_manifest([mini_cohen])
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    manifest = pd.concat([manifest, as_manifest([{"path": str(broken), "source": "x", "label": "covid"}])], ignore_index=True)
    report, verified = verify_manifest(manifest, workers=1)
    statuses = dict(zip(report["path"], report["status"]))
    assert statuses[str(broken)] == "unreadable"
    assert list(report["status"]).count("missing") == 1
    assert "not a JPEG" in report.loc[report["path"] == str(broken), "reason"].iat[0]
    ok = verified[verified["status"] == "ok"]
    assert (ok["width"].astype(int) > 0).all()


def test_clean_counts_each_reason(mini_cohen):
    _, verified = verify_manifest(build_manifest([mini_cohen]), workers=1)
    verified.loc[0, "view"] = "L"
    verified.loc[1, "modality"] = "CT"
    kept, counts = clean_manifest(verified)
    assert counts["image missing or unreadable"] == 1
    assert counts["no usable label"] == 2  # todo + Lipoid
    assert counts["not an X-ray"] >= 1 and counts["not a frontal view"] >= 1
    assert len(kept) + counts.sum() == len(verified)
    assert (kept["label"] != "").all() and (kept["status"] == "ok").all()


def test_select_copies_matching_images_and_leaves_source_untouched(mini_cohen, tmp_path):
    before = tree_digest(mini_cohen)
    manifest = build_manifest([mini_cohen])
    wanted = manifest[(manifest["finding"] == "COVID-19") & manifest["path"].map(lambda p: Path(p).exists())]
    view = wanted["view"].iat[0]
    copied = select_images(manifest, "COVID-19", view, tmp_path / "out")
    expected = wanted[wanted["view"] == view]
    assert len(copied) == len(expected)
    assert sorted(p.name for p in (tmp_path / "out").glob("*") if p.suffix != ".csv") == sorted(Path(p).name for p in expected["path"])
    assert (tmp_path / "out" / "selected.csv").is_file()
    assert tree_digest(mini_cohen) == before
    with pytest.raises(CovidxrayError, match="already exists"):
        select_images(manifest, "COVID-19", view, tmp_path / "out")
    for inside in (mini_cohen / "images", mini_cohen / "images" / "sub", mini_cohen):
        with pytest.raises(CovidxrayError, match="refusing to write the selection inside the dataset folder"):
            select_images(manifest, "COVID-19", None, inside)
    assert tree_digest(mini_cohen) == before


def test_dedupe_links_resized_and_cropped_copies_not_other_patients(mini_dark, mini_cohen, tmp_path):
    manifest = build_manifest([mini_cohen, mini_dark])
    manifest = manifest[manifest["path"].map(lambda p: Path(p).exists())].reset_index(drop=True)
    original = Path(manifest["path"].iat[0])
    resized = tmp_path / "copy-of-first.png"
    with Image.open(original) as image:
        image.convert("L").resize((image.width // 2, image.height // 2)).save(resized)
    extra = as_manifest([{"path": str(resized), "source": "elsewhere", "label": "normal", "finding": "Normal"}])
    deduped, pairs = find_duplicates(pd.concat([manifest, extra], ignore_index=True), workers=1)
    cluster = deduped.loc[deduped["path"] == str(resized), "dup_cluster"].iat[0]
    assert cluster and deduped.loc[deduped["path"] == str(original), "dup_cluster"].iat[0] == cluster
    summary = cluster_summary(deduped)
    assert summary.loc[summary["cluster"] == cluster, "label_conflict"].iat[0]
    # the NIH images of different patients are not linked to each other
    nih = deduped[deduped["patient_id"].str.startswith("nih:")]
    assert (nih.groupby("dup_cluster").size().drop("", errors="ignore") < 2).all()


def test_dedupe_links_darkcovidnet_copies_to_their_originals(data_dir):
    from tests.conftest import COHEN, DARK

    names = sorted(p.name for p in (DARK / "Covid-19").iterdir() if (COHEN / "images" / p.name).exists())[:6]
    rows = [{"path": str(DARK / "Covid-19" / n), "source": "darkcovidnet", "label": "covid"} for n in names]
    rows += [{"path": str(COHEN / "images" / n), "source": "covid-chestxray-dataset", "label": "covid"} for n in names]
    deduped, _ = find_duplicates(as_manifest(rows), workers=1)
    clusters = deduped["dup_cluster"].tolist()
    assert all(clusters[i] and clusters[i] == clusters[i + len(names)] for i in range(len(names)))


def generated_manifest(count=400, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        source = ["a", "b", "c"][index % 3]
        patient = f"{source}:{rng.integers(0, 120)}" if rng.random() < 0.8 else ""
        rows.append({"path": f"/x/{index}.png", "source": source, "patient_id": patient,
                     "label": ["covid", "normal", "pneumonia"][rng.integers(0, 3)],
                     "dup_cluster": f"dup{rng.integers(0, 30)}" if rng.random() < 0.1 else ""})
    return as_manifest(rows)


def test_split_keeps_patients_and_clusters_together_and_is_deterministic():
    manifest = generated_manifest()
    first = assign_splits(manifest, SplitSettings(seed=3))
    again = assign_splits(manifest, SplitSettings(seed=3))
    other = assign_splits(manifest, SplitSettings(seed=4))
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    for column in ("patient_id", "dup_cluster"):
        keyed = first[first[column] != ""]
        assert (keyed.groupby(column)["split"].nunique() == 1).all()
    shares = first["split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.70) < 0.08 and abs(shares["test"] - 0.15) < 0.08
    # every source and label appears in every split
    assert (pd.crosstab(first["split"], first["source"]) > 0).all().all()
    assert list(first.columns[: len(manifest.columns)]) == list(manifest.columns)


def test_leave_one_source_out_holds_the_source_and_its_duplicates_out():
    manifest = generated_manifest()
    manifest.loc[0, "dup_cluster"] = "shared"
    manifest.loc[1, "dup_cluster"] = "shared"  # rows 0 (source a) and 1 (source b) are one radiograph
    split = assign_splits(manifest, SplitSettings(), holdout_sources=("a",))
    assert set(split.loc[split["source"] == "a", "split"]) == {"external"}
    assert split.loc[1, "split"] == "excluded"
    assert set(split.loc[split["source"] != "a", "split"]) <= {"train", "val", "test", "excluded"}
    with pytest.raises(DatasetError, match="held-out source"):
        assign_splits(manifest, SplitSettings(), holdout_sources=("nowhere",))


def test_check_split_catches_a_patient_in_two_splits():
    frame = as_manifest([{"path": "1", "patient_id": "p"}, {"path": "2", "patient_id": "p"}])
    frame["split"] = ["train", "test"]
    with pytest.raises(DatasetError, match="patient_id p"):
        check_split(frame)

"""Each native layout is read into manifest rows with the right labels, patients and extras."""

from pathlib import Path

import pytest

from covidxray.data.manifest import build_manifest, label_counts
from covidxray.data.sources import detect_layout, read_source
from covidxray.errors import DatasetError


def test_cohen_reader_labels_patients_severity_and_masks(mini_cohen):
    assert detect_layout(mini_cohen) == "covid-chestxray-dataset"
    rows = read_source(mini_cohen)
    assert len(rows) == 11  # 10 chosen rows + one whose file is absent
    by_finding = {}
    for row in rows:
        by_finding.setdefault(row["finding"], []).append(row)
        assert row["patient_id"].startswith("cohen:")
        assert row["source"] == "covid-chestxray-dataset"
    assert {r["label"] for r in by_finding["COVID-19"]} == {"covid"}
    assert {r["label"] for r in by_finding["Streptococcus"]} == {"pneumonia"}
    assert {r["label"] for r in by_finding["No Finding"]} == {"normal"}
    assert by_finding["todo"][0]["label"] == "" and "todo" in by_finding["todo"][0]["exclusion"]
    scored = [r for r in rows if r["severity_extent"]]
    assert scored and 0 <= float(scored[0]["severity_extent"]) <= 8 and 0 <= float(scored[0]["severity_opacity"]) <= 6
    masked = [r for r in rows if r["lung_mask"]]
    assert all(Path(r["lung_mask"]).is_file() for r in masked)
    assert sum(not Path(r["path"]).exists() for r in rows) == 1


def test_cohen_reader_understands_path_style_findings(mini_cohen, tmp_path):
    text = (mini_cohen / "metadata.csv").read_text(encoding="utf-8")
    text = text.replace(",Streptococcus,", ",Pneumonia/Bacterial/Streptococcus,").replace(",COVID-19,", ",Pneumonia/Viral/COVID-19,")
    copy = tmp_path / "later-release"
    copy.mkdir()
    (copy / "metadata.csv").write_text(text, encoding="utf-8")
    (copy / "images").symlink_to(mini_cohen / "images")
    rows = read_source(copy)
    labels = {r["finding"]: r["label"] for r in rows}
    assert labels["Pneumonia/Viral/COVID-19"] == "covid"
    assert labels["Pneumonia/Bacterial/Streptococcus"] == "pneumonia"


def test_cohen_reader_names_a_missing_required_column(tmp_path):
    (tmp_path / "metadata.csv").write_text("patientid,sex,filename\n1,M,a.png\n")
    with pytest.raises(DatasetError, match=r"metadata\.csv: missing required column\(s\) finding"):
        read_source(tmp_path)


def test_darkcovidnet_reader_takes_patient_ids_from_nih_names(mini_dark):
    assert detect_layout(mini_dark) == "darkcovidnet"
    rows = read_source(mini_dark)
    assert len(rows) == 9
    nih = [r for r in rows if r["finding"] != "Covid-19"]
    assert all(r["patient_id"] == f"nih:{Path(r['path']).name[:8]}" for r in nih)
    assert {r["label"] for r in rows if r["finding"] == "No_findings"} == {"normal"}
    assert {r["patient_id"] for r in rows if r["finding"] == "Covid-19"} == {""}


def test_radiography_reader_flat_and_images_masks_layouts(mini_radiography, tmp_path):
    assert detect_layout(mini_radiography) == "covid19-radiography-database"
    rows = read_source(mini_radiography)
    assert sorted(r["label"] for r in rows) == ["covid"] * 3 + ["normal"] * 3
    # later releases: COVID/images + COVID/masks
    later = tmp_path / "COVID-19_Radiography_Dataset" / "COVID"
    (later / "images").mkdir(parents=True)
    (later / "masks").mkdir()
    first = sorted((mini_radiography / "COVID-19_Radiography_Dataset" / "COVID").iterdir())[0]
    (later / "images" / first.name).write_bytes(first.read_bytes())
    (later / "masks" / first.name).write_bytes(first.read_bytes())
    rows = read_source(tmp_path / "COVID-19_Radiography_Dataset")
    assert len(rows) == 1 and rows[0]["lung_mask"].endswith(f"masks/{first.name}")


def test_user_folder_and_csv_layouts(mini_radiography, tmp_path):
    images = sorted((mini_radiography / "COVID-19_Radiography_Dataset" / "Normal").iterdir())
    own = tmp_path / "my-clinic"
    for folder, image in (("covid", images[0]), ("normal", images[1]), ("other", images[2])):
        (own / folder).mkdir(parents=True)
        (own / folder / image.name).write_bytes(image.read_bytes())
    assert detect_layout(own) == "folder"
    rows = read_source(own)
    assert {r["label"] for r in rows} == {"covid", "normal", ""}
    assert {r["source"] for r in rows} == {"my-clinic"}
    table = tmp_path / "mine.csv"
    table.write_text(f"path,label,patient_id\ncovid/{images[0].name},COVID-19,p1\nnormal/{images[1].name},normal,p2\n")
    (tmp_path / "covid").mkdir()
    (tmp_path / "normal").mkdir()
    (tmp_path / "covid" / images[0].name).write_bytes(images[0].read_bytes())
    (tmp_path / "normal" / images[1].name).write_bytes(images[1].read_bytes())
    rows = read_source(table)
    assert [r["label"] for r in rows] == ["covid", "normal"]
    assert rows[0]["patient_id"] == "mine:p1" and Path(rows[0]["path"]).is_file()


def test_folder_with_no_images_is_a_clear_error(tmp_path):
    (tmp_path / "COVID").mkdir()
    (tmp_path / "Normal").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        read_source(tmp_path)
    with pytest.raises(DatasetError, match="no known dataset layout"):
        detect_layout(tmp_path / "COVID")


def test_manifest_merges_sources_and_expands_a_parent_folder(mini_cohen, mini_dark, mini_radiography, tmp_path):
    parent = tmp_path / "all"
    parent.mkdir()
    for root in (mini_cohen, mini_dark, mini_radiography):
        (parent / root.name).symlink_to(root)
    manifest = build_manifest([parent])
    counts = label_counts(manifest)
    assert set(counts.index) == {"covid-chestxray-dataset", "darkcovidnet", "covid19-radiography-database"}
    assert counts.loc["darkcovidnet", "total"] == 9
    assert (manifest != manifest).sum().sum() == 0  # no NaN anywhere


def test_only_a_public_collection_metadata_is_kept_inside_its_folder(mini_radiography, tmp_path):
    """Issue #25: `../../x` in a collection's metadata.csv is excluded; the same path in a user's CSV is read."""
    image = sorted((mini_radiography / "COVID-19_Radiography_Dataset" / "COVID").iterdir())[0]
    (tmp_path / "x.png").write_bytes(image.read_bytes())
    collection = tmp_path / "a" / "covid-chestxray-dataset"
    (collection / "images").mkdir(parents=True)
    (collection / "metadata.csv").write_text("patientid,finding,view,modality,filename\n1,COVID-19,PA,X-ray,../../../x.png\n"
                                             f"2,COVID-19,PA,X-ray,{tmp_path / 'x.png'}\n")
    rows = read_source(collection)
    assert [(r["label"], r["exclusion"]) for r in rows] == [("", "path outside the dataset folder")] * 2
    table = tmp_path / "a" / "mine.csv"
    table.write_text(f"path,label,patient_id,lung_mask\n../x.png,covid,p1,../x.png\n{tmp_path / 'x.png'},covid,p2,\n")
    rows = read_source(table)
    assert [(r["label"], r["exclusion"]) for r in rows] == [("covid", "")] * 2
    assert [Path(r["path"]).resolve() for r in rows] == [tmp_path / "x.png"] * 2
    assert Path(rows[0]["lung_mask"]).resolve() == tmp_path / "x.png"  # the user's mask is kept too

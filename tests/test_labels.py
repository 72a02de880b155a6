"""The finding -> label mapping, in the flat format of our copy and the path style of later releases."""

import pytest

from covidxray.data.labels import label_class_folder, label_finding


@pytest.mark.parametrize("finding, label", [
    ("COVID-19", "covid"),
    ("COVID-19, ARDS", "covid"),
    ("Pneumonia/Viral/COVID-19", "covid"),
    ("Streptococcus", "pneumonia"),
    ("Pneumonia/Bacterial/Streptococcus", "pneumonia"),
    ("Pneumocystis", "pneumonia"),
    ("Pneumonia/Fungal/Pneumocystis", "pneumonia"),
    ("SARS", "pneumonia"),
    ("Pneumonia/Viral/SARS", "pneumonia"),
    ("Pneumonia", "pneumonia"),
    ("Mycoplasma Bacterial Pneumonia", "pneumonia"),
    ("E.Coli", "pneumonia"),
    ("Pneumonia/Aspiration", "pneumonia"),
    ("No Finding", "normal"),
])
def test_infectious_findings_map_to_labels(finding, label):
    assert label_finding(finding) == (label, "")


@pytest.mark.parametrize("finding, reason_word", [
    ("ARDS", "ARDS"),
    ("Lipoid", "lipoid"),
    ("Pneumonia/Lipoid", "lipoid"),
    ("todo", "todo"),
    ("Unknown", "unknown"),
    ("", "no finding"),
    ("Tuberculosis", "tuberculosis"),
    ("Sarcoidosis", "Sarcoidosis"),
])
def test_unusable_findings_are_excluded_with_a_reason(finding, reason_word):
    label, reason = label_finding(finding)
    assert label == ""
    assert reason_word.lower() in reason.lower()


@pytest.mark.parametrize("folder, label", [
    ("COVID", "covid"), ("Covid-19", "covid"), ("covid19", "covid"),
    ("Normal", "normal"), ("No_findings", "normal"),
    ("Pneumonia", "pneumonia"), ("Viral Pneumonia", "pneumonia"),
    ("Lung_Opacity", ""), ("Cardiomegaly", ""),
])
def test_class_folders_map_to_labels(folder, label):
    assert label_class_folder(folder)[0] == label

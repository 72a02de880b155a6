"""No folder of the machine that built a model reaches what people read: records, model cards."""

from __future__ import annotations

import json
import re

import pytest

from covidxray.paths.shown import portable, without_machine_paths

ABSOLUTE = re.compile(r"(^|[\s`'\"(=])(/(home|root|work|tmp|Users|mnt)/|[A-Za-z]:\\)")


@pytest.mark.parametrize("text, shown", [
    ("/work/main/runs/gpu/densenet121-internal/best.pt", "best.pt"),
    ("C:\\Users\\me\\runs\\best.pt", "best.pt"),
    ("split `/work/main/prepared/split.csv` of 3", "split `split.csv` of 3"),
    ("--out=/tmp/a/maps.png and /home/me/x.csv", "--out=maps.png and x.csv"),
])
def test_absolute_paths_become_file_names(text, shown):
    assert portable(text) == shown


@pytest.mark.parametrize("text", ["prepared/split.csv", "n/a", "0-4 of 8, 3/4", "https://example.org/a/b", "docs/gate.md",
                                  'cd "$(dirname "$0")/.."', "DATA=${DATA:-../shared/data}"])
def test_relative_paths_ratios_and_urls_are_left_alone(text):
    assert portable(text) == text


def test_a_record_keeps_its_shape_and_loses_only_the_folders():
    record = {"split_file": "/work/main/prepared/split.csv", "seed": 0, "pack": {"file": "/work/main/packs/train-176.npz", "max_side": 176},
              "notes": ["trained from /home/me/runs/a/best.pt"], "lr": 0.002, "val_part": "val"}
    assert portable(record) == {"split_file": "split.csv", "seed": 0, "pack": {"file": "train-176.npz", "max_side": 176},
                                "notes": ["trained from best.pt"], "lr": 0.002, "val_part": "val"}


def test_the_model_card_writer_writes_no_absolute_path(tmp_path):
    from covidxray.evaluation.model_card import write_model_card

    report = tmp_path / "report"
    report.mkdir()
    metric = {"value": 0.9, "ci_low": 0.8, "ci_high": 0.95, "n": 10}
    document = {
        "model": {"architecture": "xray-cnn", "task": "binary", "labels": ["not_covid", "covid"], "threshold": 0.5,
                  "temperature": 1.0, "training_record": {"split_file": "/home/me/covidxray/prepared/split.csv", "split_sha256": "ab" * 32,
                                                          "pack": {"file": "/home/me/covidxray/packs/p.npz", "max_side": 176,
                                                                   "quality": 90, "sha256": "cd" * 32}}},
        "table": "/home/me/covidxray/prepared/split.csv", "table_sha256": "ef" * 32,
        "parts": {"test": {"metrics": {"roc_auc": metric}, "per_source": {"nih": {"roc_auc": metric}},
                           "calibration": {"ece": 0.1, "brier": 0.2}, "n_images": 10, "n_patients": 9}},
    }
    (report / "metrics.json").write_text(json.dumps(document))
    card = write_model_card(tmp_path / "MODEL_CARD.md", report, None,
                            ["bash /home/me/covidxray/scripts/release_model.sh", "cd /home/me/covidxray && make demo"]).read_text()
    assert not ABSOLUTE.search(card), card
    assert "bash release_model.sh" in card and "`split.csv`" in card


def test_text_without_paths_is_unchanged():
    text = "## Model\n\n- architecture `xray-cnn`, labels not_covid, covid\n| a | b |\n|---|---|\n"
    assert without_machine_paths(text) == text

"""Training on generated radiographs: loss goes down, checkpoints round-trip, resume, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from covidxray.data.dataset import ImageCache, XrayDataset, split_part, targets_for
from covidxray.errors import CovidxrayError, DatasetError
from covidxray.imaging.preprocess import IntensityRangeError, Preprocessing
from covidxray.imaging.read import read_image
from covidxray.inference.checkpoint import build_screener, read_checkpoint, save_checkpoint
from covidxray.inference.classifier import load_checkpoint
from covidxray.training.command import register
from covidxray.training.loop import TrainingError, train
from synthetic_xrays import QUICK_SIZE, quick_train_config, write_split

SIZE = QUICK_SIZE


@pytest.fixture(scope="module")
def split_file(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("xrays"), {"train": 16, "val": 6, "test": 2})


def test_a_few_epochs_on_generated_images_lower_the_loss_and_separate_the_classes(split_file, tmp_path):
    result = train(quick_train_config(split_file, tmp_path / "run", epochs=4))
    history = result.history
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_auroc"].max() > 0.8
    written = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(written.columns) == ["epoch", "train_loss", "val_loss", "val_auroc", "val_within_auroc", "lr", "seconds"]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert written["lr"].iloc[-1] < written["lr"].iloc[0]  # cosine schedule


def test_best_checkpoint_is_self_contained_and_predicts_from_read_images(split_file, tmp_path):
    result = train(quick_train_config(split_file, tmp_path / "run", epochs=1))
    content = read_checkpoint(result.best_path)
    assert content["architecture"] == "xray-cnn" and content["labels"] == ["not_covid", "covid"]
    assert 0.0 <= content["threshold"] <= 1.0 and content["temperature"] > 0
    record = content["record"]
    assert len(record["split_sha256"]) == 64 and record["seed"] == 0 and record["covidxray_version"]
    assert record["counts"]["train"] == {"alpha|covid": 8, "alpha|normal": 8, "alpha|pneumonia": 8,
                                         "beta|covid": 8, "beta|normal": 8, "beta|pneumonia": 8}
    classifier = load_checkpoint(result.best_path)
    tests = pd.read_csv(split_file).query("split == 'test'")
    images = [read_image(path) for path in tests["path"]]
    proba = classifier.predict_proba(images)
    assert proba.shape == (len(images), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(classifier.predict(images)) <= {"covid", "not_covid"}
    with pytest.raises(IntensityRangeError, match="0-255"):
        classifier.predict_proba([images[0] * 255])


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    preprocessing = Preprocessing(size=SIZE, intensity="per-image")
    torch.manual_seed(3)
    screener = build_screener("xray-cnn", {}, 3, preprocessing).eval()
    path = save_checkpoint(tmp_path / "model.pt", screener, architecture="xray-cnn", architecture_kwargs={},
                           preprocessing=preprocessing, task="3class", labels=("covid", "pneumonia", "normal"),
                           threshold=0.4, temperature=1.5, record={"seed": 3})
    loaded = load_checkpoint(path)
    assert loaded.preprocessing == preprocessing and loaded.threshold == 0.4 and loaded.temperature == 1.5
    batch = torch.rand(4, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(screener(batch), loaded.screener(batch))
    images = [np.random.default_rng(k).random((50, 40)).astype(np.float32) for k in range(3)]
    np.testing.assert_array_equal(loaded.predict_proba(images), load_checkpoint(path).predict_proba(images))


def test_resume_continues_from_the_saved_epoch_and_matches_an_uninterrupted_run(split_file, tmp_path, monkeypatch):
    whole = train(quick_train_config(split_file, tmp_path / "whole", epochs=2))

    def interrupt(*_):  # runs right after last.pt is written at the end of epoch 1
        raise KeyboardInterrupt

    monkeypatch.setattr("covidxray.training.loop._write_curves", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(quick_train_config(split_file, tmp_path / "parts", epochs=2))
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "parts" / "last.pt")["training_state"]["epoch"] == 1
    resumed = train(quick_train_config(split_file, tmp_path / "parts", epochs=2, resume=True))
    assert list(resumed.history["epoch"]) == [1, 2]
    assert read_checkpoint(tmp_path / "parts" / "last.pt")["training_state"]["epoch"] == 2
    for name, value in whole.screener.state_dict().items():
        assert torch.equal(value, resumed.screener.state_dict()[name]), name


def test_same_seed_same_weights_other_seed_other_weights(split_file, tmp_path):
    first = train(quick_train_config(split_file, tmp_path / "a", epochs=1, max_images_per_part=12))
    again = train(quick_train_config(split_file, tmp_path / "b", epochs=1, max_images_per_part=12))
    other = train(quick_train_config(split_file, tmp_path / "c", epochs=1, max_images_per_part=12, seed=1))
    weight = "network.head.3.weight"
    assert torch.equal(first.screener.state_dict()[weight], again.screener.state_dict()[weight])
    assert not torch.equal(first.screener.state_dict()[weight], other.screener.state_dict()[weight])


def test_existing_run_needs_resume_and_resume_needs_a_run(split_file, tmp_path):
    train(quick_train_config(split_file, tmp_path / "run", epochs=1, max_images_per_part=6))
    with pytest.raises(TrainingError, match="--resume"):
        train(quick_train_config(split_file, tmp_path / "run", epochs=1, max_images_per_part=6))
    with pytest.raises(TrainingError, match="no last.pt"):
        train(quick_train_config(split_file, tmp_path / "empty", epochs=1, resume=True))


def test_three_class_task_with_seed_cnn_and_source_balanced_sampling(split_file, tmp_path):
    result = train(quick_train_config(split_file, tmp_path / "run", model="seed-cnn", task="3class", epochs=1,
                          sampler="source-balanced", batch_size=6, max_images_per_part=18))
    classifier = load_checkpoint(result.best_path)
    assert classifier.labels == ("covid", "pneumonia", "normal")
    assert classifier.preprocessing.channels == 3 and classifier.preprocessing.size == SIZE
    proba = classifier.predict_proba([np.full((40, 40), 0.5, np.float32)])
    assert proba.shape == (1, 3)


def test_split_without_split_column_or_training_rows_is_refused_clearly(split_file, tmp_path):
    frame = pd.read_csv(split_file, dtype=str, keep_default_na=False)
    no_column = tmp_path / "no_column.csv"
    frame.drop(columns="split").to_csv(no_column, index=False)
    with pytest.raises(DatasetError, match="no 'split' column"):
        train(quick_train_config(no_column, tmp_path / "run"))
    no_train = tmp_path / "no_train.csv"
    frame[frame["split"] != "train"].to_csv(no_train, index=False)
    with pytest.raises(DatasetError, match="no labelled rows with split == 'train'"):
        train(quick_train_config(no_train, tmp_path / "run"))


def test_rows_without_label_are_skipped_and_binary_targets_are_covid_vs_rest(split_file):
    frame = pd.read_csv(split_file, dtype=str, keep_default_na=False)
    frame.loc[0, "label"] = ""
    train_rows = split_part(frame, "train")
    assert len(train_rows) == (frame["split"] == "train").sum() - 1
    targets = targets_for(train_rows["label"], "binary")
    assert targets.sum() == (train_rows["label"] == "covid").sum()


def test_cache_decodes_each_image_once_per_preprocessing(split_file, tmp_path):
    paths = pd.read_csv(split_file).query("split == 'test'")["path"].tolist()
    cache = ImageCache(tmp_path / "cache", Preprocessing(size=SIZE))
    dataset = XrayDataset(paths, np.zeros(len(paths)), cache)
    first = dataset[0][0]
    cached = sorted(cache.folder.rglob("*.npy"))
    assert len(cached) == 1
    np.save(cached[0], np.zeros((SIZE, SIZE), np.uint16))  # a later read comes from the cache, not the PNG
    assert float(dataset[0][0].max()) == 0.0 and float(first.max()) > 0
    other = ImageCache(tmp_path / "cache", Preprocessing(size=SIZE * 2))
    assert other.folder != cache.folder and XrayDataset(paths, np.zeros(len(paths)), other)[0][0].shape == (1, 64, 64)


def test_cli_train_command_runs_and_reports_errors_as_covidxray_errors(split_file, tmp_path):
    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command keeps 'train' a named subcommand
        pass

    runner = CliRunner()
    arguments = ["train", "--model", "xray-cnn", "--split", str(split_file), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--size", str(SIZE), "--max-images-per-part", "6", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.pt").exists()
    bad = runner.invoke(app, ["train", "--model", "nope", "--split", str(split_file), "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, CovidxrayError) and "seed-cnn" in str(bad.exception)


def test_binary_calibration_removes_a_logit_shift_that_a_temperature_alone_cannot(tmp_path):
    from covidxray.training.calibration import fit_calibration, fit_temperature, negative_log_likelihood, probabilities

    rng = np.random.default_rng(0)
    true_logits = rng.normal(-1.0, 2.0, 4000)
    targets = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(np.int64)
    shifted = (true_logits + 3.0)[:, None]  # what up-weighting the rarer class does to every logit
    temperature_only = fit_temperature(shifted, targets, "binary")
    temperature, bias = fit_calibration(shifted, targets, "binary")
    assert temperature == pytest.approx(1.0, abs=0.15) and bias == pytest.approx(-3.0, abs=0.3)
    assert (negative_log_likelihood(shifted, targets, "binary", temperature, bias)
            < negative_log_likelihood(shifted, targets, "binary", temperature_only) - 0.05)
    p_covid = probabilities(shifted, "binary", temperature, bias)[:, 1]
    assert abs(p_covid.mean() - targets.mean()) < 0.02
    assert fit_calibration(rng.normal(size=(30, 3)), rng.integers(0, 3, 30), "3class")[1] == 0.0

    preprocessing = Preprocessing(size=SIZE)
    screener = build_screener("xray-cnn", {}, 1, preprocessing).eval()
    path = save_checkpoint(tmp_path / "model.pt", screener, architecture="xray-cnn", architecture_kwargs={},
                           preprocessing=preprocessing, task="binary", labels=("not_covid", "covid"),
                           threshold=0.5, temperature=2.0, record={}, bias=-1.25)
    loaded = load_checkpoint(path)
    images = [np.random.default_rng(k).random((50, 40)).astype(np.float32) for k in range(3)]
    expected = 1 / (1 + np.exp(-(loaded.logits(images).reshape(-1) / 2.0 - 1.25)))
    assert loaded.bias == -1.25
    np.testing.assert_allclose(loaded.p_covid(images), expected, atol=1e-6)


def test_calibrate_refits_on_validation_only_and_keeps_the_weights(split_file, tmp_path):
    from covidxray.training.recalibrate import recalibrate

    result = train(quick_train_config(split_file, tmp_path / "run", epochs=1))
    refit = recalibrate(result.best_path, split_file, tmp_path / "refit.pt")
    before, after = read_checkpoint(result.best_path), read_checkpoint(refit.path)
    assert refit.images == 18 and after["record"]["recalibrated_on"]["part"] == "val"
    assert after["temperature"] == refit.temperature and after["logit_bias"] == refit.bias
    assert all(torch.equal(before["state_dict"][k], after["state_dict"][k]) for k in before["state_dict"])
    with pytest.raises(CovidxrayError, match="refusing to calibrate on the 'test' part"):
        recalibrate(result.best_path, split_file, tmp_path / "bad.pt", part="test")


def test_width_option_builds_a_narrower_xray_cnn_that_round_trips_and_is_refused_for_other_networks(split_file, tmp_path):
    result = train(quick_train_config(split_file, tmp_path / "narrow", epochs=1, width=8))
    content = read_checkpoint(result.best_path)
    assert content["architecture_kwargs"] == {"width": 8}
    assert content["state_dict"]["network.features.0.0.weight"].shape[0] == 8
    classifier = load_checkpoint(result.best_path)
    assert classifier.p_covid([np.full((40, 40), 0.5, np.float32)]).shape == (1,)
    with pytest.raises(TrainingError, match="--width must be at least 1, not 0"):
        train(quick_train_config(split_file, tmp_path / "empty", width=0))
    with pytest.raises(CovidxrayError, match="does not take width"):
        train(quick_train_config(split_file, tmp_path / "dense", model="densenet121", width=8))

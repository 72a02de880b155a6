"""Training on generated radiographs: loss goes down, checkpoints round-trip, resume, errors; recipes by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from covidxray.data.dataset import ImageCache, XrayDataset, split_part, targets_for
from covidxray.errors import CovidxrayError, DatasetError
from covidxray.imaging.preprocess import IntensityRangeError, Preprocessing
from covidxray.imaging.read import read_image
from covidxray.inference.checkpoint import build_screener, read_checkpoint, save_checkpoint
from covidxray.inference.classifier import load_checkpoint
from covidxray.training.command import app as training_app
from covidxray.training.loop import TrainConfig, TrainingError, train
from covidxray.training.recipes import (DEFAULT_RECIPE, RECIPES, Recipe, RecipeError, list_recipes, recipe,
                                        recipe_of_checkpoint, recipe_toml, resolve_recipe)
from synthetic_xrays import QUICK_SIZE, quick_train_config, write_split

SIZE = QUICK_SIZE
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "covidxray" / "weights" / "covidxray-default.pt"


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


def test_cli_train_command_runs_a_named_recipe_and_reports_errors_as_covidxray_errors(split_file, tmp_path):
    runner = CliRunner()
    arguments = ["train", "--recipe", "xray-cnn", "--split", str(split_file), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--set", f"size={SIZE}", "--max-images-per-part", "6", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(training_app, arguments)
    assert result.exit_code == 0, result.output
    assert "recipe `xray-cnn`, changed: size=32, epochs=1" in result.output
    assert (tmp_path / "run" / "best.pt").exists()
    bad = runner.invoke(training_app, ["train", "--recipe", "nope", "--split", str(split_file), "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, CovidxrayError) and "seed-cnn" in str(bad.exception)
    old = runner.invoke(training_app, ["train", "--model", "xray-cnn", "--split", str(split_file), "--out", str(tmp_path / "y")])
    assert isinstance(old.exception, RecipeError) and "--recipe xray-cnn" in str(old.exception)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


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
    with pytest.raises(RecipeError, match="width must be at least 1, not 0"):
        train(quick_train_config(split_file, tmp_path / "empty", width=0))
    with pytest.raises(CovidxrayError, match="does not take width"):
        train(quick_train_config(split_file, tmp_path / "dense", model="densenet121", width=8))


# ---- recipes by name -------------------------------------------------------------------------------


def test_recipes_are_registered_by_name_and_an_unknown_name_lists_the_known_ones():
    assert list_recipes()[0] == DEFAULT_RECIPE == "default"
    assert {"default", "seed-cnn", "xray-cnn", "densenet121", "efficientnet-b0"} <= set(RECIPES)
    assert all(entry.why and entry.name == name for name, entry in RECIPES.items())
    with pytest.raises(RecipeError) as caught:
        recipe("defualt")
    assert all(name in str(caught.value) for name in RECIPES) and "\n" not in str(caught.value)


def test_every_network_has_a_plain_recipe_of_its_name_that_trains_its_registered_input():
    from covidxray.models.registry import list_models, model_spec

    for name in list_models():
        assert RECIPES[name].architecture == name
        assert RECIPES[name].preprocessing() == model_spec(name).preprocessing, name


def test_seed_cnn_recipe_is_the_seed_study_baseline():
    seed = recipe("seed-cnn")
    assert (seed.architecture, seed.size, seed.batch_size, seed.optimizer, seed.schedule, seed.augmentation) == (
        "seed-cnn", 150, 6, "rmsprop", "constant", "seed")
    assert not seed.class_weights and seed.weight_decay == 0.0 and seed.epochs == 4
    assert seed.preprocessing().channels == 3


def test_the_default_recipe_is_what_the_bundled_model_was_trained_with():
    """Fails when the registered `default` and the shipped checkpoint's training record drift apart."""
    from covidxray.imaging.augment import PRESETS

    content = read_checkpoint(SHIPPED)
    shipped = recipe_of_checkpoint(content)
    default = recipe(DEFAULT_RECIPE)
    mine = {key: value for key, value in default.to_dict().items() if key not in ("name", "why")}
    theirs = {key: value for key, value in shipped.to_dict().items() if key not in ("name", "why")}
    assert mine == theirs
    assert default.preprocessing().to_dict() == content["preprocessing"]
    record = content["record"]
    assert record["augmentation"] == dataclasses.asdict(PRESETS[default.augmentation])  # nor has the preset
    assert "distillation" not in record and content["architecture_kwargs"] == {"last_stride": default.last_stride}
    if "recipe" in record:  # checkpoints trained since recipes have names say it outright
        assert record["recipe"]["name"] == DEFAULT_RECIPE
        # what it changed from the `default` of its day is what `default` is now
        assert all(getattr(default, key) == value for key, value in record["recipe_changes"].items())


def test_release_script_trains_the_default_recipe_by_name():
    script = (ROOT / "scripts" / "release_model.sh").read_text()
    assert "RECIPE=${RECIPE:-default}" in script and "BASELINE=${BASELINE:-seed-cnn}" in script
    assert script.count('--recipe "$RECIPE"') == 5 and script.count('--recipe "$BASELINE"') == 2  # 4 trainings, the card
    card_command = script[script.index("$C model-card"):script.index("--readme README.md")]
    assert '--recipe "$RECIPE"' in card_command  # the card names the recipe of a record that predates names
    for removed in ("--augmentation", "--lung-crop", "--model xray-cnn", "--model seed-cnn", "--patience"):
        assert removed not in script, removed


def test_a_recipe_file_changes_the_recipe_and_set_and_options_change_it_further(tmp_path):
    config = tmp_path / "recipe.toml"
    config.write_text('base = "seed-cnn"\nepochs = 20\npatience = 8\nlr = 1\nlung-crop = true\n'
                      'why = "the baseline, longer"\n', encoding="utf-8")
    from_file = resolve_recipe(None, config)
    assert from_file.name == "seed-cnn" and from_file.architecture == "seed-cnn"  # the file's base
    assert (from_file.epochs, from_file.patience, from_file.lr, from_file.lung_crop) == (20, 8, 1.0, True)
    assert isinstance(from_file.lr, float) and from_file.why == "the baseline, longer"
    assert from_file.differences() == {"lung_crop": True, "epochs": 20, "lr": 1.0, "patience": 8}
    layered = resolve_recipe("default", config, ["patience=3", "width=16", "equalise=false"], epochs=2)
    assert layered.name == "default" and layered.architecture == "xray-cnn"  # --recipe wins over the file's base
    assert (layered.epochs, layered.patience, layered.width, layered.equalise) == (2, 3, 16, False)
    assert resolve_recipe("default", None, ["width=none"]).width is None
    assert resolve_recipe().differences() == {} and resolve_recipe() == recipe("default")


@pytest.mark.parametrize("content,message", [
    ("epoch = 20\n", "unknown recipe key 'epoch' (did you mean 'epochs'?); known keys: why, architecture, task"),
    ("epochs = \"twenty\"\n", "epochs must be a whole number, not 'twenty'"),
    ("lung_crop = 1\n", "lung_crop must be true or false, not 1"),
    ("name = \"mine\"\n", "'name' is the registered recipe's"),
    ("base = \"nope\"\n", "unknown recipe 'nope'; choose one of: default"),
    ("epochs = 0\n", "recipe 'default': epochs must be at least 1, not 0"),
    ("sampler = \"random\"\n", "sampler 'random' is unknown; choose one of: shuffle, class-balanced, source-balanced"),
    ("epochs = [\n", "not a valid TOML recipe file"),
])
def test_a_bad_recipe_file_is_one_line_naming_the_key(tmp_path, content, message):
    config = tmp_path / "recipe.toml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(RecipeError) as caught:
        resolve_recipe(None, config)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, CovidxrayError)


def test_bad_set_settings_are_refused_by_name():
    with pytest.raises(RecipeError, match="write KEY=VALUE"):
        resolve_recipe(None, None, ["patience"])
    with pytest.raises(RecipeError, match="--set: patience must be a whole number, not 'soon'"):
        resolve_recipe(None, None, ["patience=soon"])
    with pytest.raises(RecipeError, match="unknown recipe key 'lungcrop'"):
        resolve_recipe(None, None, ["lungcrop=true"])
    with pytest.raises(RecipeError, match="recipe file not found"):
        resolve_recipe(None, Path("no-such-recipe.toml"))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_printed_recipe_reads_back_as_the_same_recipe(tmp_path, name):
    changed = recipe(name).updated({"epochs": 3, "width": 8})
    config = tmp_path / "recipe.toml"
    config.write_text(recipe_toml(changed), encoding="utf-8")
    assert resolve_recipe(None, config) == changed
    config.write_text(recipe_toml(recipe(name)), encoding="utf-8")
    assert resolve_recipe(None, config) == recipe(name)


def test_train_help_lists_recipes_and_few_options(capsys):
    from covidxray.cli import main

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for option in ("--recipe", "--config", "--set", "--split", "--out", "--epochs", "--seed", "--resume", "--teacher"):
        assert option in text, option
    for gone in ("--model", "--lung-crop", "--augmentation", "--batch-size", "--patience ", "--distill-weight", "--size"):
        assert gone not in text, gone
    assert all(name in text for name in RECIPES)
    assert "within-hospital val AUROC" in text  # what early stopping and the best epoch are chosen on
    assert "Example: covidxray train --recipe default --split prepared/split.csv --out runs/default" in text
    from covidxray.training.command import train_command
    import inspect

    assert len([p for p in inspect.signature(train_command).parameters if p != "model"]) <= 14


def test_recipes_command_lists_the_recipes_and_prints_one_as_a_file(capsys, tmp_path):
    from covidxray.cli import main

    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(f"{name}: {entry.why}" in listing for name, entry in RECIPES.items())
    assert main(["recipes", "default", "--set", "epochs=20"]) == 0
    printed = capsys.readouterr().out
    config = tmp_path / "printed.toml"
    config.write_text(printed, encoding="utf-8")
    assert resolve_recipe(None, config) == recipe("default").updated({"epochs": 20})


def test_a_train_config_takes_a_recipe_by_name_or_the_old_keywords():
    config = TrainConfig("split.csv", "run", "seed-cnn", epochs=1, seed=3, workers=2)
    assert config.recipe == recipe("seed-cnn").updated({"epochs": 1}) and (config.seed, config.workers) == (3, 2)
    assert TrainConfig("split.csv", "run").recipe == recipe(DEFAULT_RECIPE)
    old = TrainConfig(model="densenet121", task="3class", split="s.csv", out="r", size=64, batch_size=None)
    assert old.recipe == recipe("densenet121").updated({"task": "3class", "size": 64})
    assert TrainConfig("s.csv", "r", "default", model="seed-cnn").recipe.architecture == "seed-cnn"
    with pytest.raises(RecipeError, match="unknown recipe key 'colour'"):
        TrainConfig("s.csv", "r", colour=True)


def test_the_default_recipe_trains_through_the_cli_and_its_checkpoint_names_it(split_file, tmp_path):
    """A tiny real run of `covidxray train --recipe default` (lung crop, source-erasing): the record names the recipe."""
    from covidxray.cli import main
    from covidxray.evaluation.model_card import _recipe_lines

    out = tmp_path / "run"
    assert main(["train", "--recipe", "default", "--split", str(split_file), "--out", str(out), "--epochs", "1",
                 "--set", f"size={SIZE}", "--max-images-per-part", "6", "--cache-dir", str(tmp_path / "cache"),
                 "--threads", "1"]) == 0
    content = read_checkpoint(out / "best.pt")
    record = content["record"]
    assert record["recipe"] == recipe("default").updated({"size": SIZE, "epochs": 1}).to_dict()
    assert record["recipe_changes"] == {"size": SIZE, "epochs": 1} and record["patience"] == 5
    assert content["preprocessing"]["lung_crop"] is True and record["augmentation_preset"] == "source-erasing"
    assert recipe_of_checkpoint(content) == recipe("default").updated({"size": SIZE, "epochs": 1})
    assert _recipe_lines(record) == [
        f"- Recipe: `default`, changed: size={SIZE}, epochs=1 (`covidxray train --recipe default --set size={SIZE} --set epochs=1`)"]
    assert _recipe_lines({"recipe": recipe("default").to_dict(), "recipe_changes": {}}) == [
        "- Recipe: `default` (`covidxray train --recipe default`)"]


def test_resume_refuses_a_different_recipe(split_file, tmp_path):
    train(quick_train_config(split_file, tmp_path / "run", epochs=1, max_images_per_part=6))
    with pytest.raises(TrainingError, match="resume with the run's own recipe; this one differs: lr 0.003 -> 0.01"):
        train(quick_train_config(split_file, tmp_path / "run", epochs=1, max_images_per_part=6, resume=True, lr=0.01))


def test_a_recipe_is_checked_when_built():
    with pytest.raises(RecipeError, match="distill_weight must be in"):
        Recipe("mine", distill_weight=1.5)
    with pytest.raises(RecipeError, match="epochs must be a whole number, not 2.5"):
        Recipe("mine", epochs=2.5)
    assert Recipe("mine").differences() == {}

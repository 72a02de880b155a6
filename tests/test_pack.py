"""Training packs (images shrunk into one portable file), training from them, lung-crop
preprocessing and the strong augmentation preset."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from covidxray.cli import app
from covidxray.data.pack import PackedImages, write_pack
from covidxray.errors import DatasetError, ImageReadError
from covidxray.imaging.augment import augmentation
from covidxray.lungs.segmenter import bundled_segmenter, lung_crop
from covidxray.imaging.preprocess import Preprocessing, prepare_array
from covidxray.imaging.read import read_image
from covidxray.inference.checkpoint import read_checkpoint
from covidxray.training.loop import TrainConfig, train
from synthetic_xrays import write_split

SIZE = 32


@pytest.fixture(scope="module")
def split_file(tmp_path_factory) -> Path:
    return write_split(tmp_path_factory.mktemp("xrays"), {"train": 8, "val": 4, "test": 2}, side=96)


def digest(paths) -> dict[str, str]:
    return {path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths}


def test_pack_holds_each_image_shrunk_and_leaves_sources_untouched(split_file: Path, tmp_path: Path) -> None:
    table = pd.read_csv(split_file)
    chosen = table[table["split"].isin(["train", "val"])]["path"].tolist()
    before = digest(table["path"])
    summary = write_pack(chosen + chosen[:3], tmp_path / "pack.npz", max_side=64, quality=95)
    assert summary.images == len(chosen) and not summary.unreadable
    assert digest(table["path"]) == before
    preprocessing = Preprocessing(size=SIZE, crop_border=0.04, equalise=True)
    packed = PackedImages(summary.path, preprocessing)
    assert packed.meta["max_side"] == 64 and all(path in packed for path in chosen)
    test_path = table.query("split == 'test'")["path"].iloc[0]
    assert test_path not in packed
    with pytest.raises(ImageReadError, match="not in pack"):
        packed.load(test_path)
    for path in chosen[:4]:  # the packed copy, preprocessed, is close to the original preprocessed
        from_pack = packed.load(path)
        original = prepare_array(read_image(path), preprocessing)
        assert from_pack.shape == (SIZE, SIZE) and from_pack.dtype == np.float32
        assert np.abs(from_pack - original).mean() < 0.03


def test_pack_refuses_bad_files_and_settings(split_file: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a pack")
    with pytest.raises(DatasetError, match="not a covidxray pack"):
        PackedImages(junk, Preprocessing())
    with pytest.raises(DatasetError, match="pack not found"):
        PackedImages(tmp_path / "missing.npz", Preprocessing())
    with pytest.raises(DatasetError, match="max-side"):
        write_pack(["x.png"], tmp_path / "p.npz", max_side=8)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    good = pd.read_csv(split_file)["path"].iloc[0]
    summary = write_pack([good, str(broken)], tmp_path / "p.npz")
    assert summary.images == 1 and str(broken) in summary.unreadable


def test_training_from_a_pack_matches_the_split_and_records_the_pack(split_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    pack = tmp_path / "train.npz"
    result = runner.invoke(app, ["data", "pack", str(split_file), "--out", str(pack), "--max-side", "64", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "packed 36 images" in result.output
    moved = tmp_path / "elsewhere.csv"  # the split's paths are only keys: the images need not exist
    pd.read_csv(split_file).to_csv(moved, index=False)
    trained = train(TrainConfig(model="xray-cnn", task="binary", split=moved, out=tmp_path / "run", epochs=2,
                                batch_size=8, size=SIZE, threads=1, show_progress=False, lr=3e-3, pack=pack))
    record = read_checkpoint(trained.best_path)["record"]
    assert record["pack"]["sha256"] == hashlib.sha256(pack.read_bytes()).hexdigest()
    assert record["pack"]["max_side"] == 64 and record["device"] == "cpu"
    assert record["counts"]["train"]["alpha|covid"] == 4
    assert len(trained.history) == 2 and np.isfinite(trained.history["val_auroc"]).all()


def test_lung_crop_preprocessing_cuts_to_the_segmented_lungs(data_dir: Path) -> None:
    image = read_image(data_dir / "covid-chestxray-dataset" / "images" / sorted(
        p.name for p in (data_dir / "covid-chestxray-dataset" / "images").glob("*.jp*g"))[0])
    plain = Preprocessing(size=64)
    cropped = Preprocessing(size=64, lung_crop=True)
    expected = prepare_array(lung_crop(image, bundled_segmenter().mask(image)), plain)
    np.testing.assert_allclose(prepare_array(image, cropped), expected, atol=1e-6)
    assert np.abs(prepare_array(image, cropped) - prepare_array(image, plain)).mean() > 0.01
    # caches and checkpoints made before lung_crop existed keep their key; lung crop gets its own
    assert Preprocessing(size=160, crop_border=0.04, equalise=True).cache_key() == "c60a09598c602e37"
    assert cropped.cache_key() != plain.cache_key()
    assert Preprocessing.from_dict({"size": 64}).lung_crop is False


def test_strong_augmentation_changes_exposure_more_and_stays_in_range() -> None:
    image = torch.linspace(0, 1, 64 * 64).reshape(1, 64, 64)
    torch.manual_seed(0)
    mild = torch.stack([augmentation("radiograph")(image) for _ in range(40)])
    torch.manual_seed(0)
    strong = torch.stack([augmentation("radiograph-strong")(image) for _ in range(40)])
    assert float(strong.min()) >= 0.0 and float(strong.max()) <= 1.0
    assert float((strong - image).abs().mean()) > float((mild - image).abs().mean())

"""Evidence in the lungs: a finer final map, lung masks in the model's frame, and the training penalty
on class-map mass outside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from covidxray.data.dataset import ImageCache, XrayDataset
from covidxray.imaging.augment import augmentation
from covidxray.imaging.preprocess import Preprocessing
from covidxray.inference.checkpoint import read_checkpoint
from covidxray.models.class_maps import cam_linear, class_activation_maps
from covidxray.models.registry import UnknownModelError, create_model
from covidxray.training.lung_evidence import LungEvidencePenalty, outside_share
from covidxray.training.loop import TrainingError, train
from covidxray.training.recipes import RecipeError, recipe
from synthetic_xrays import quick_train_config, write_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIIM = DATA / "siim-covid19-detection"


def test_a_dilated_last_stage_doubles_the_final_map_with_the_same_weights():
    coarse, fine = create_model("xray-cnn", 1), create_model("xray-cnn", 1, last_stride=1)
    batch = torch.rand(2, 1, 160, 160)
    assert coarse.features(batch).shape[-2:] == (5, 5) and fine.features(batch).shape[-2:] == (10, 10)
    assert [p.shape for p in coarse.parameters()] == [p.shape for p in fine.parameters()]
    fine.eval()
    maps = class_activation_maps(cam_linear(fine), fine.features(batch))
    # a pooled-linear head's logit is the mean of its class map plus the bias
    torch.testing.assert_close(maps.mean(dim=(2, 3)) + fine.head[-1].bias, fine(batch), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="last_stride must be 1 or 2"):
        create_model("xray-cnn", 1, last_stride=4)


def test_recipe_fields_for_the_lungs_are_checked():
    assert recipe("default").updated({"last_stride": 1, "lung_evidence": 0.5}).lung_evidence == 0.5
    with pytest.raises(RecipeError, match="last_stride must be 1"):
        recipe("default").updated({"last_stride": 3})
    with pytest.raises(UnknownModelError, match="does not take last_stride"):
        create_model("densenet121", 1, last_stride=1)
    with pytest.raises(RecipeError, match="lung_evidence must be 0"):
        recipe("default").updated({"lung_evidence": -1.0})


def test_outside_share_is_the_share_of_absolute_class_map_mass_outside_the_lungs():
    lungs = torch.zeros(1, 1, 8, 8)
    lungs[..., :, :4] = 1.0  # left half is lung
    inside, outside, half = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    inside[..., :, :2], outside[..., :, 2:] = 3.0, -3.0  # the sign of evidence does not hide it
    shares = outside_share(torch.cat([inside, outside, half], dim=1), lungs)
    torch.testing.assert_close(shares, torch.tensor([[0.0, 1.0, 0.5]]), atol=1e-5, rtol=0)


def test_a_mask_moves_with_its_image_and_the_image_gets_what_it_would_alone():
    image = torch.zeros(1, 64, 64)
    image[:, 10:40, 8:30] = 1.0
    mask = image.clone()
    preset = augmentation("source-erasing")
    torch.manual_seed(3)
    alone = preset(image.clone())
    torch.manual_seed(3)
    moved_image, moved_mask = preset.paired(image.clone(), mask)
    torch.testing.assert_close(moved_image, alone)
    # the geometry is shared: pixels of the moved mask sit where the moved square is bright
    assert moved_mask.sum() > 100
    assert moved_image[moved_mask > 0.9].mean() > moved_image[moved_mask < 0.1].mean() + 0.3


@pytest.mark.skipif(not SIIM.is_dir(), reason="needs ../shared/data")
def test_the_cache_keeps_a_real_films_lung_mask_in_the_lung_crops_frame(tmp_path):
    film = next((SIIM / "train").glob("*.jpg"))
    cache = ImageCache(tmp_path, recipe("default").preprocessing())
    image, lungs = cache.load(str(film)), cache.load_lungs(str(film))
    assert image.shape == lungs.shape == (160, 160)
    # cut to the lung box: the lungs fill much of the frame, not all of it, and sit left and right
    assert 0.3 < lungs.mean() < 0.8
    assert lungs[:, :40].mean() > 0.3 and lungs[:, -40:].mean() > 0.3 and lungs[:, 75:85].mean() < lungs.mean()
    again = ImageCache(tmp_path, recipe("default").preprocessing())
    np.testing.assert_array_equal(again.load_lungs(str(film)), lungs)  # read from the cache
    assert len(list(tmp_path.rglob("*-lungs.npy"))) == 1


def _outside_share_after_training(split_file: Path, out: Path, weight: float) -> float:
    result = train(quick_train_config(split_file, out, epochs=4, size=64, last_stride=1, lung_evidence=weight))
    content = read_checkpoint(result.best_path)
    assert content["record"]["recipe"]["lung_evidence"] == weight
    screener = result.screener.eval()  # the last epoch's weights
    network = screener.network
    rows = pd.read_csv(split_file).query("split == 'train'")
    cache = ImageCache(out.parent / "cache", Preprocessing.from_dict(content["preprocessing"]))
    dataset = XrayDataset(rows["path"].tolist(), np.zeros(len(rows)), cache, lungs=True)
    images = torch.stack([dataset[index][0] for index in range(len(dataset))])
    masks = torch.stack([dataset[index][2] for index in range(len(dataset))])
    penalty = LungEvidencePenalty(network, 1.0)
    with torch.no_grad():
        network(screener.door(images))
        return float(penalty.share(masks))


def test_the_penalty_moves_class_evidence_into_the_lungs(tmp_path):
    split_file = write_split(tmp_path / "xrays", {"train": 12, "val": 4}, side=96)
    free = _outside_share_after_training(split_file, tmp_path / "free", 0.0)
    held = _outside_share_after_training(split_file, tmp_path / "held", 5.0)
    assert held < free - 0.05


def test_a_pack_has_no_lung_masks_and_says_so(tmp_path):
    split_file = write_split(tmp_path / "xrays", {"train": 2, "val": 2})
    pack = tmp_path / "images.npz"
    np.savez(pack, nothing=np.zeros(1))
    with pytest.raises(TrainingError, match="a pack holds no lung masks"):
        train(quick_train_config(split_file, tmp_path / "run", lung_evidence=1.0, pack=pack))

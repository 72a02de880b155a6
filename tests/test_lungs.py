"""Lung segmentation: hand-mask I/O, U-Net training steps, the bundled segmenter on held-out
patients, mask clean-up, the weights file round trip, lung_crop and lung_outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from covidxray.errors import ImageReadError
from covidxray.lungs.segmenter import (
    LungSegmenter,
    LungSettings,
    SegmenterError,
    build_unet,
    clean_mask,
    lung_crop,
    lung_outline,
    read_lung_mask,
)
from covidxray.imaging.read import read_image
from covidxray.lungs.segmenter_evaluation import mask_scores
from covidxray.lungs.mask_pairs import drop_empty_masks, find_masked_images, split_by_patient
from covidxray.lungs.segmenter_training import LungTrainConfig, save_segmenter, train_unet

#: Images of patients held out when the bundled weights were trained (also listed in its record).
HELD_OUT_IMAGES = (
    "covid-19-rapidly-progressive-acute-respiratory-distress-syndrome-ards-admission.jpg",
    "BMJ-37-163-g1.jpg",
    "7-fatal-covid19.jpg",
)


def cohen(data_dir: Path) -> Path:
    return data_dir / "covid-chestxray-dataset"


def synthetic_pairs(count: int, side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey 'chests' with two darker elliptical 'lungs' (the masks), varied in place and size."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:side, 0:side] / side
    images, masks = [], []
    for _ in range(count):
        mask = np.zeros((side, side), dtype=bool)
        for centre in (0.3, 0.7):
            cx, cy = centre + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.05, 0.05)
            rx, ry = rng.uniform(0.1, 0.15), rng.uniform(0.25, 0.32)
            mask |= ((columns - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 < 1
        image = np.where(mask, 0.25, 0.7) + rng.normal(0, 0.05, (side, side))
        images.append(np.clip(image, 0, 1))
        masks.append(mask)
    as_tensor = lambda arrays: torch.from_numpy(np.asarray(arrays, dtype=np.float32))[:, None]  # noqa: E731
    return as_tensor(images), as_tensor(masks)


def test_real_mask_reads_as_boolean_at_image_size(data_dir: Path) -> None:
    pair = find_masked_images(cohen(data_dir))[0]
    image = read_image(pair.image)
    mask = read_lung_mask(pair.mask, image.shape)
    assert mask.dtype == bool and mask.shape == image.shape
    assert 0.05 < mask.mean() < 0.7  # lungs: a real part of the film, not all of it
    with pytest.raises(ImageReadError, match=pair.mask.name):
        read_lung_mask(pair.mask, (image.shape[0] + 1, image.shape[1]))


def test_pairs_have_patients_and_split_keeps_patients_apart(data_dir: Path) -> None:
    pairs = find_masked_images(cohen(data_dir))
    assert len(pairs) > 300 and all(p.image.stem == p.mask.stem and p.patient_id for p in pairs)
    kept, empty = drop_empty_masks(pairs)
    assert empty and len(kept) + len(empty) == len(pairs)  # the collection has never-outlined (empty) masks
    train, held_out = split_by_patient(kept, 0.2, seed=0)
    assert not {p.patient_id for p in train} & {p.patient_id for p in held_out}
    assert len(train) + len(held_out) == len(kept)


def test_unet_training_steps_lower_the_loss() -> None:
    images, masks = synthetic_pairs(8, 32, seed=1)
    config = LungTrainConfig(settings=LungSettings(size=32, channels=(4, 8, 16), strides=(2, 2)),
                             epochs=8, batch_size=4, lr=2e-2, threads=1)
    _, losses = train_unet(images, masks, config)
    assert losses[-1] < 0.8 * losses[0], losses


def test_weights_file_round_trip_and_mask_at_image_size(tmp_path: Path) -> None:
    settings = LungSettings(size=32, channels=(4, 8), strides=(2,), threshold=0.4)
    path = save_segmenter(tmp_path / "lungs.pt", build_unet(settings), settings, {"note": "test"})
    segmenter = LungSegmenter.load(path)
    assert segmenter.settings == settings and segmenter.record["note"] == "test"
    image = np.random.default_rng(0).random((45, 37)).astype(np.float32)
    masks = segmenter.masks([image, image[:30]])
    assert masks[0].shape == (45, 37) and masks[1].shape == (30, 37) and masks[0].dtype == bool
    (tmp_path / "other.pt").write_bytes(b"not a weights file")
    with pytest.raises(SegmenterError, match="other.pt"):
        LungSegmenter.load(tmp_path / "other.pt")


def test_bundled_segmenter_on_held_out_patients(data_dir: Path) -> None:
    segmenter = LungSegmenter.load()
    assert set(HELD_OUT_IMAGES) <= set(segmenter.record["held_out_images"])
    held_patients = set(segmenter.record["held_out_patients"])
    pairs = {p.name: p for p in find_masked_images(cohen(data_dir))}
    chosen = [pairs[name] for name in HELD_OUT_IMAGES]
    assert all(p.patient_id in held_patients for p in chosen)
    images = [read_image(p.image) for p in chosen]
    for pair, image, predicted in zip(chosen, images, segmenter.masks(images)):
        dice, _ = mask_scores(predicted, read_lung_mask(pair.mask, image.shape))
        assert dice > 0.8, (pair.name, dice)


def test_clean_mask_keeps_two_largest_components_and_fills_holes() -> None:
    probability = np.zeros((60, 60))
    probability[5:45, 5:25] = 0.9  # left lung, with a hole
    probability[20:25, 12:18] = 0.1
    probability[5:40, 35:55] = 0.9  # right lung
    probability[50:53, 50:53] = 0.9  # a speck: third largest, dropped
    mask = clean_mask(probability, threshold=0.5)
    assert mask[22, 15] and mask[10, 10] and mask[10, 40] and not mask[51, 51]


def test_lung_crop_shrinks_to_the_lung_box() -> None:
    image = np.random.default_rng(0).random((100, 120))
    mask = np.zeros((100, 120), dtype=bool)
    mask[20:61, 30:91] = True
    assert lung_crop(image, mask, margin=0).shape == (41, 61)
    np.testing.assert_array_equal(lung_crop(image, mask, margin=0), image[20:61, 30:91])
    assert lung_crop(image, mask, margin=0.1).shape == (41 + 2 * 4, 61 + 2 * 6)
    assert lung_crop(image, np.zeros_like(mask)).shape == image.shape  # no lungs found: keep the film


def test_lung_outline_is_the_boundary() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 4:14] = True
    outline = lung_outline(mask)
    assert outline.sum() == 36  # the ring of a 10 x 10 square
    assert not outline[10, 9] and outline[5, 9] and outline[10, 4] and not (outline & ~mask).any()
    assert not lung_outline(np.zeros((5, 5), dtype=bool)).any()

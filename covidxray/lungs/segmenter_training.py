"""Fit the lung U-Net on hand masks (Dice + BCE, light augmentation) and save a self-contained file.

The weights file carries the settings (size, threshold, network shape), the held-out patients and
images, and the training record, so LungSegmenter.load() needs nothing else. train_segmenter is the
whole recipe (what `covidxray lungs train` runs): split by patient, train, save, measure, save.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from covidxray.lungs.segmenter import WEIGHTS_FORMAT, LungSettings, build_unet, read_lung_mask, resize_image, standardise
from covidxray.imaging.read import read_image
from covidxray.lungs.mask_pairs import MaskedImage

if TYPE_CHECKING:
    from covidxray.evaluation.metrics import Estimate


@dataclass
class LungTrainConfig:
    """Training choices; the network's own settings travel in `settings`."""

    settings: LungSettings = field(default_factory=LungSettings)
    epochs: int = 40
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0
    threads: int | None = None


def load_pairs(pairs: Sequence[MaskedImage], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, masks) as (N, 1, size, size) tensors: images in [0, 1], masks in {0, 1}."""
    images, masks = [], []
    for pair in pairs:
        image = read_image(pair.image)
        mask = read_lung_mask(pair.mask, image.shape)
        images.append(resize_image(image, size))
        masks.append((resize_image(mask.astype(np.float32), size) > 0.5).float())
    return torch.cat(images), torch.cat(masks)


def augment(images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Light, anatomy-preserving changes: rotation +-8 degrees, scale 0.9-1.1, shift +-6%,
    gamma 0.7-1.4 and contrast 0.8-1.2; no flips (the heart makes left and right differ).

    Args:
        images: (N, 1, S, S) float [0, 1].
        masks: (N, 1, S, S) float {0, 1}, moved with their images.
        generator: the seeded torch Generator.

    Returns:
        (images, masks), changed alike.
    """
    count = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, generator=generator)

    angle, scale = uniform(-8, 8) * np.pi / 180, uniform(0.9, 1.1)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, 0, 2], theta[:, 1, 2] = uniform(-0.12, 0.12), uniform(-0.12, 0.12)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    masks = (F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.5).float()
    gamma = uniform(0.7, 1.4).view(-1, 1, 1, 1)
    contrast = uniform(0.8, 1.2).view(-1, 1, 1, 1)
    images = images.clamp(0, 1) ** gamma
    mean = images.mean(dim=(2, 3), keepdim=True)
    return ((images - mean) * contrast + mean).clamp(0, 1), masks


def dice_bce_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss (per image, averaged) plus binary cross-entropy, both on logits."""
    probability = torch.sigmoid(logits)
    overlap = (probability * masks).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + masks.sum(dim=(1, 2, 3))
    dice = 1 - (2 * overlap + 1) / (total + 1)
    return dice.mean() + F.binary_cross_entropy_with_logits(logits, masks)


def train_unet(images: torch.Tensor, masks: torch.Tensor, config: LungTrainConfig,
               on_epoch: Callable[[int, float], None] | None = None) -> tuple[torch.nn.Module, list[float]]:
    """Train a fresh U-Net on prepared tensors.

    Args:
        images: (N, 1, S, S) float [0, 1].
        masks: (N, 1, S, S) float {0, 1}.
        config: epochs, seed, threads and the network's settings.
        on_epoch: called with (epoch, mean loss) after each epoch.

    Returns:
        (the trained network, the loss per epoch).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    network = build_unet(config.settings)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr)
    steps = max(1, config.epochs * int(np.ceil(len(images) / config.batch_size)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    losses = []
    for epoch in range(config.epochs):
        network.train()
        order = torch.randperm(len(images), generator=generator)
        running, seen = 0.0, 0
        for start in range(0, len(images), config.batch_size):
            rows = order[start:start + config.batch_size]
            batch_images, batch_masks = augment(images[rows], masks[rows], generator)
            loss = dice_bce_loss(network(standardise(batch_images)), batch_masks)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            running, seen = running + float(loss.detach()) * len(rows), seen + len(rows)
        losses.append(running / max(seen, 1))
        if on_epoch:
            on_epoch(epoch, losses[-1])
    return network.eval(), losses


def save_segmenter(path: Path, network: torch.nn.Module, settings: LungSettings, record: dict) -> Path:
    """Write the weights file LungSegmenter.load() reads (plain dict; loads with weights_only=True).

    Args:
        path: the file to write.
        network: the trained U-Net.
        settings: its LungSettings.
        record: what it was trained and measured on.

    Returns:
        path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
    record = dict(record, saved=time.strftime("%Y-%m-%d %H:%M:%S"))
    torch.save({"format": WEIGHTS_FORMAT, "settings": settings.as_dict(), "state_dict": state, "record": record}, path)
    return path


@dataclass(frozen=True)
class TrainedSegmenter:
    """What train_segmenter wrote and measured: the weights file; the images and patients it was trained
    on and held out (empty masks set aside, by name); the loss per epoch; the figures on held-out
    patients (Dice and HD95 in pixels at the stored size, patient-bootstrap CIs) and how many
    patients they cover."""

    path: Path
    train_images: int
    train_patients: int
    held_out_images: int
    held_out_patients: int
    empty_masks: list[str]
    losses: list[float]
    figures: dict[str, "Estimate"]
    scored_patients: int


def train_segmenter(data: str | Path, out: str | Path = "lungs-unet.pt", epochs: int = 40, size: int = 128,
                    held_out: float = 0.2, seed: int = 0, threads: int | None = 1, release: bool = False) -> TrainedSegmenter:
    """Train the lung U-Net on hand masks of train patients, save it, and measure it on held-out patients.

    Args:
        data: the covid-chestxray-dataset folder (images/, metadata.csv, annotations/v7labs-lung-masks/).
        out: the weights file to write; checked first (never inside data, never the bundled one unless release).
        epochs: training epochs.
        size: side of the square network input in pixels.
        held_out: share of patients held out for the figures.
        seed: seed of the patient split, initialisation and augmentation.
        threads: torch CPU threads.
        release: allow out inside covidxray/weights, replacing the segmenter the package ships.

    Returns:
        TrainedSegmenter; the weights file's record holds the same figures and the held-out names.
    """
    from covidxray.console import progress
    from covidxray.lungs.mask_pairs import check_collection, drop_empty_masks, find_masked_images, split_by_patient
    from covidxray.lungs.segmenter import LungSegmenter
    from covidxray.lungs.segmenter_evaluation import score_segmenter
    from covidxray.paths.outputs import check_output, check_release

    data, out = Path(data), Path(out)
    check_release(out, release, "lung weights")
    check_collection(data, "annotations/v7labs-lung-masks")
    check_output(out, [data], what="lung weights")
    pairs, empty = drop_empty_masks(find_masked_images(data))
    train_pairs, held_pairs = split_by_patient(pairs, held_out, seed)
    config = LungTrainConfig(settings=LungSettings(size=size), epochs=epochs, seed=seed, threads=threads)
    images, masks = load_pairs(train_pairs, size)
    with progress() as bar:
        task = bar.add_task("training", total=epochs)
        network, losses = train_unet(images, masks, config, lambda epoch, loss: bar.update(
            task, advance=1, description=f"training (loss {loss:.3f})"))
    record = {
        "data": str(data), "empty_masks": empty, "epochs": epochs, "seed": seed, "losses": [round(v, 5) for v in losses],
        "train_images": len(train_pairs), "train_patients": len({p.patient_id for p in train_pairs}),
        "held_out_patients": sorted({p.patient_id for p in held_pairs}),
        "held_out_images": [p.name for p in held_pairs],
    }
    save_segmenter(out, network, config.settings, record)
    scores = score_segmenter(LungSegmenter.load(out), held_pairs)
    summary = scores.summary(seed=seed)
    record["held_out_figures"] = {name: estimate.as_dict() for name, estimate in summary.items()}
    record["held_out_dice"] = {name: round(float(d), 4) for name, d in zip(scores.names, scores.dice)}
    save_segmenter(out, network, config.settings, record)
    return TrainedSegmenter(out, len(train_pairs), record["train_patients"], len(held_pairs), len(record["held_out_patients"]),
                            list(empty), list(losses), summary, len(set(scores.patients)))

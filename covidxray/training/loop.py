"""The training loop: data from a split file, a registered network, best and last checkpoints.

Deterministic under a seed (every epoch reseeds, so a resumed run repeats an uninterrupted one),
early stopping on validation AUROC, per-epoch curves as CSV and PNG; only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from covidxray import __version__
from covidxray.console import console, progress
from covidxray.data.dataset import ImageCache, XrayDataset, default_cache_dir, split_part, targets_for, task_labels
from covidxray.data.pack import PackedImages
from covidxray.data.schema import read_table
from covidxray.errors import CovidxrayError, DatasetError
from covidxray.data.fingerprint import split_fingerprint
from covidxray.hashing import sha256_file
from covidxray.imaging.augment import augmentation
from covidxray.models.registry import model_spec
from covidxray.training import distributed as dist_
from covidxray.evaluation.yardstick import has_within_contrast, selection_score
from covidxray.training.calibration import covid_probability, fit_decision, task_auroc
from covidxray.inference.checkpoint import build_screener, read_checkpoint, save_checkpoint
from covidxray.training.adversary import SourceAdversary
from covidxray.training.distillation import load_teacher

SAMPLERS = ("shuffle", "class-balanced", "source-balanced")
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auroc", "val_within_auroc", "lr", "seconds"]


class TrainingError(CovidxrayError):
    """A training setting or a run directory that cannot be used."""


@dataclass
class TrainConfig:
    """Everything `covidxray train` is told; None means the model's recipe default."""

    model: str
    task: str
    split: Path
    out: Path
    epochs: int = 10
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    resume: bool = False
    workers: int = 0
    cache_dir: Path | None = None
    train_part: str = "train"
    val_part: str = "val"
    max_images_per_part: int | None = None
    patience: int = 5
    sampler: str = "shuffle"
    size: int | None = None
    equalise: bool | None = None
    crop_border: float | None = None
    augmentation: str | None = None
    threads: int | None = None
    lung_crop: bool | None = None
    hide_outside_lungs: bool | None = None
    pack: Path | None = None
    width: int | None = None             # xray-cnn's base channel count (default 24)
    teacher: Path | None = None          # a trained checkpoint to distil from (covidxray.training.distillation)
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    source_adversary: float = 0.0        # weight of the gradient-reversed source head (covidxray.training.adversary)
    show_progress: bool = True


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_epoch: int
    best_val_auroc: float
    best_path: Path
    last_path: Path
    screener: nn.Module


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


class WeightedDistributedSampler(DistributedSampler):
    """Draws len(dataset) indices with replacement by weight, reseeded per epoch, sharded by rank."""

    def __init__(self, dataset, weights: np.ndarray, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.weights = torch.tensor(np.array(weights, dtype=np.float64))

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator).tolist()
        return iter(drawn[self.rank: self.total_size: self.num_replicas])


def sampling_weights(rows: pd.DataFrame, sampler: str) -> np.ndarray | None:
    """Per-row weights: equal classes (class-balanced) or equal (source, label) cells (source-balanced)."""
    if sampler == "shuffle":
        return None
    keys = rows["label"] if sampler == "class-balanced" else rows["source"] + "|" + rows["label"]
    return (1.0 / keys.map(keys.value_counts())).to_numpy()


def loss_function(task: str, targets: np.ndarray, weighted: bool, classes: int) -> nn.Module:
    """BCE on one logit (binary) or cross-entropy; weighted by inverse class frequency if asked."""
    if task == "binary":
        positives = max(1, int(targets.sum()))
        negatives = max(1, int(len(targets) - targets.sum()))
        pos_weight = torch.tensor([negatives / positives]) if weighted else None
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    counts = np.bincount(targets, minlength=classes).astype(np.float64)
    weight = torch.tensor(len(targets) / (classes * np.maximum(counts, 1)), dtype=torch.float32) if weighted else None
    return nn.CrossEntropyLoss(weight=weight)


def batch_loss(criterion: nn.Module, logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == "binary":
        return criterion(logits.reshape(-1), targets.float())
    return criterion(logits, targets)


def _counts(rows: pd.DataFrame) -> dict:
    table = rows.groupby(["source", "label"]).size()
    return {f"{source}|{label}": int(n) for (source, label), n in table.items()}


def _limit(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    if limit is None or len(rows) <= limit:
        return rows
    return rows.sample(n=limit, random_state=seed).reset_index(drop=True)


def _check_config(config: TrainConfig) -> None:
    task_labels(config.task)
    model_spec(config.model)
    if config.sampler not in SAMPLERS:
        raise TrainingError(f"unknown sampler '{config.sampler}'; choose one of: {', '.join(SAMPLERS)}")
    if config.epochs < 1:
        raise TrainingError(f"--epochs must be at least 1, not {config.epochs}")
    if config.batch_size is not None and config.batch_size < 1:
        raise TrainingError(f"--batch-size must be at least 1, not {config.batch_size}")
    if config.width is not None and config.width < 1:
        raise TrainingError(f"--width must be at least 1, not {config.width}")
    if config.source_adversary < 0:
        raise TrainingError(f"--source-adversary must be 0 (off) or a positive weight, not {config.source_adversary}")
    if config.max_images_per_part is not None and config.max_images_per_part < 1:
        raise TrainingError(f"--max-images-per-part must be at least 1, not {config.max_images_per_part}")


def _load_parts(config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    split = read_table(config.split)
    train_rows = split_part(split, config.train_part, config.split)
    if len(train_rows) == 0:
        parts = ", ".join(sorted(set(split["split"]))) or "none"
        raise DatasetError(f"{config.split}: no labelled rows with split == '{config.train_part}' (parts present: {parts})")
    val_rows = split_part(split, config.val_part, config.split)
    if len(val_rows) == 0:
        raise DatasetError(f"{config.split}: no labelled rows with split == '{config.val_part}'; "
                           "validation is needed for early stopping, the threshold and the calibration")
    return (_limit(train_rows, config.max_images_per_part, config.seed),
            _limit(val_rows, config.max_images_per_part, config.seed + 1))


def _single_thread_worker(_: int) -> None:
    torch.set_num_threads(1)


def _autocast(device: torch.device):
    """bfloat16 autocast on a GPU (about twice the speed, same AUROC); a no-op on CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _predict(model: nn.Module, dataset: XrayDataset, indices: list[int], batch_size: int, device,
             width: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and targets of the given rows, in order, without augmentation."""
    model.eval()
    logits, targets = [], []
    with torch.no_grad(), _autocast(device):
        for start in range(0, len(indices), batch_size):
            items = [dataset[i] for i in indices[start: start + batch_size]]
            batch = torch.stack([image for image, _ in items]).to(device)
            logits.append(model(batch).float().cpu().numpy())
            targets.extend(target for _, target in items)
    return (np.concatenate(logits) if logits else np.zeros((0, width), np.float32)), np.asarray(targets, dtype=np.int64)


def _write_curves(history: pd.DataFrame, out: Path) -> None:
    history.to_csv(out / "history.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(history["epoch"], history["train_loss"], marker="o", label="train loss")
    left.plot(history["epoch"], history["val_loss"], marker="o", label="val loss")
    left.set_xlabel("epoch"), left.set_title("loss"), left.legend()
    right.plot(history["epoch"], history["val_auroc"], marker="o", color="tab:green", label="val AUROC (mixed sources)")
    if history["val_within_auroc"].notna().any():
        right.plot(history["epoch"], history["val_within_auroc"], marker="s", color="tab:purple",
                   label="val within-hospital AUROC (selects the epoch)")
    right.set_xlabel("epoch"), right.set_title("validation AUROC"), right.set_ylim(0.4, 1.0)
    twin = right.twinx()
    twin.plot(history["epoch"], history["lr"], color="tab:grey", linestyle="--", label="learning rate")
    twin.set_ylabel("learning rate")
    right.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(out / "curves.png", dpi=100)
    plt.close(figure)


def train(config: TrainConfig) -> TrainResult:
    """Train config.model on the split's train part, validating on its val part, into config.out."""
    _check_config(config)
    world = dist_.start_world()
    try:
        return _train(config, world)
    finally:
        dist_.end_world(world)


def _train(config: TrainConfig, world: dist_.World) -> TrainResult:
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // dist_.local_size()))
    spec = model_spec(config.model)
    overrides = {key: value for key, value in
                 {"size": config.size, "equalise": config.equalise, "crop_border": config.crop_border,
                  "lung_crop": config.lung_crop, "hide_outside_lungs": config.hide_outside_lungs}.items()
                 if value is not None}
    preprocessing = dataclasses.replace(spec.preprocessing, **overrides)
    recipe = spec.recipe
    batch_size = config.batch_size or recipe.batch_size
    lr = config.lr or recipe.lr
    augment = augmentation(config.augmentation or recipe.augmentation)
    labels = task_labels(config.task)
    classes = 1 if config.task == "binary" else len(labels)
    architecture_kwargs = {"size": preprocessing.size} if config.model == "seed-cnn" else {}
    if config.width is not None:
        architecture_kwargs["width"] = config.width
    out = Path(config.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if not config.resume and last_path.exists():
        raise TrainingError(f"{out}: already holds a run (last.pt); pass --resume to continue it or choose another --out")

    train_rows, val_rows = _load_parts(config)
    split_sha256 = sha256_file(config.split)
    fingerprint = split_fingerprint(config.split)  # the same wherever the datasets sit on disk
    teacher = None
    if config.teacher is not None:
        teacher = load_teacher(config.teacher, task=config.task, labels=labels, split_sha256=split_sha256,
                               split_fingerprint=fingerprint,
                               train_part=config.train_part, weight=config.distill_weight,
                               temperature=config.distill_temperature, device=world.device)
    paths = sorted(set(train_rows["path"]) | set(val_rows["path"]))
    if config.pack is not None:  # every rank holds the whole pack in memory, prepared once
        cache = PackedImages(config.pack, preprocessing)
        mine = paths
    else:
        cache = ImageCache(config.cache_dir or default_cache_dir(), preprocessing)
        mine = paths[world.rank:: world.size]
    with progress() as bar:
        what = f"preparing images from {config.pack}" if config.pack is not None else "decoding images into the cache"
        task = bar.add_task(what, total=len(mine), visible=world.is_main and config.show_progress)
        failures = cache.prepare(mine, workers=config.workers, progress=lambda: bar.advance(task))
    unreadable: dict[str, str] = {}
    for part in dist_.gather_objects(failures, world):
        unreadable.update(part)
    if unreadable:
        if world.is_main:
            console.print(f"[yellow]skipping {len(unreadable)} unreadable image(s)[/], e.g. {next(iter(unreadable.values()))}")
        train_rows = train_rows[~train_rows["path"].isin(unreadable)].reset_index(drop=True)
        val_rows = val_rows[~val_rows["path"].isin(unreadable)].reset_index(drop=True)
    train_targets = targets_for(train_rows["label"], config.task)
    val_targets = targets_for(val_rows["label"], config.task)
    if len(np.unique(train_targets)) < 2:
        raise DatasetError(f"{config.split}: the '{config.train_part}' part has only one class for the {config.task} task")

    source_names = sorted(set(train_rows["source"]))
    source_index = train_rows["source"].map(source_names.index).to_numpy() if config.source_adversary else None
    train_set = XrayDataset(train_rows["path"].tolist(), train_targets, cache, augment, source_index)
    val_set = XrayDataset(val_rows["path"].tolist(), val_targets, cache, None)
    weights = sampling_weights(train_rows, config.sampler)
    if weights is None:
        sampler = DistributedSampler(train_set, num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed)
    else:
        sampler = WeightedDistributedSampler(train_set, weights, world.size, world.rank, config.seed)
    loader_seed = torch.Generator()
    loader = DataLoader(
        train_set, batch_size=batch_size, sampler=sampler, num_workers=config.workers, generator=loader_seed,
        drop_last=len(sampler) > batch_size, worker_init_fn=_single_thread_worker,
        persistent_workers=False, pin_memory=world.device.type == "cuda",
    )
    if world.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    seed_everything(config.seed)
    screener = build_screener(config.model, architecture_kwargs, classes, preprocessing).to(world.device)
    adversary = None
    if config.source_adversary:
        if len(source_names) < 2:
            raise TrainingError(f"--source-adversary needs at least two sources in the training part; found {source_names}")
        adversary = SourceAdversary(screener.network, len(source_names), classes, config.source_adversary).to(world.device)
    model = dist_.wrap(screener, world)
    criterion = loss_function(config.task, train_targets, recipe.class_weights, max(classes, 2)).to(world.device)
    if recipe.optimizer == "rmsprop":  # Keras defaults: rho 0.9, epsilon 1e-7
        optimizer = torch.optim.RMSprop(model.parameters(), lr=lr, alpha=0.9, eps=1e-7)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    if adversary is not None:  # trained with the network, never saved: a resumed run starts a fresh head
        optimizer.add_param_group({"params": list(adversary.parameters())})
    epochs = config.epochs
    if recipe.schedule == "cosine":
        factor = lambda epoch: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))  # noqa: E731
    else:
        factor = lambda epoch: 1.0  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    record = {
        "split_file": Path(config.split).name, "split_sha256": split_sha256, "split_fingerprint": fingerprint,
        "train_part": config.train_part, "val_part": config.val_part,
        "selection": ("within-hospital validation AUROC (covidxray.evaluation.yardstick)"
                      if has_within_contrast(val_rows["label"].to_numpy(), val_rows["source"].to_numpy())
                      else "validation AUROC (no within-hospital contrast in the validation part)"),
        "counts": {"train": _counts(train_rows), "val": _counts(val_rows)},
        "unreadable_skipped": len(unreadable), "seed": config.seed, "epochs": config.epochs, "covidxray_version": __version__,
        "torch_version": str(torch.__version__), "world_size": world.size, "batch_size": batch_size, "lr": lr,
        "optimizer": recipe.optimizer, "schedule": recipe.schedule, "sampler": config.sampler,
        "augmentation_preset": config.augmentation or recipe.augmentation, "source_adversary": config.source_adversary,
        "augmentation": dataclasses.asdict(augment), "max_images_per_part": config.max_images_per_part or 0,
        "device": world.device.type,
    }
    if config.pack is not None:
        record["pack"] = {"file": Path(config.pack).name, "sha256": cache.sha256(),
                          "max_side": cache.meta.get("max_side"), "quality": cache.meta.get("quality")}
    if teacher is not None:
        record["distillation"] = teacher.record
    history: list[dict] = []
    start_epoch, best_auroc, best_epoch, stale = 0, -math.inf, 0, 0
    if config.resume:
        if not last_path.exists():
            raise TrainingError(f"{out}: no last.pt to resume from; run without --resume")
        saved = read_checkpoint(last_path)
        if saved["architecture"] != config.model or saved["task"] != config.task:
            raise TrainingError(f"{last_path}: was a {saved['architecture']} {saved['task']} run, not {config.model} {config.task}")
        state = saved["training_state"]
        screener.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_auroc, best_epoch, stale = state["epoch"], state["best_auroc"], state["best_epoch"], state["stale"]
        history = list(state["history"])
        if world.is_main:
            console.print(f"resuming {config.model} from epoch {start_epoch} of {epochs} ({last_path})")

    def save(path: Path, threshold: float, temperature: float, bias: float, epoch: int) -> None:
        save_checkpoint(
            path, screener, architecture=config.model, architecture_kwargs=architecture_kwargs,
            preprocessing=preprocessing, task=config.task, labels=labels, threshold=threshold,
            temperature=temperature, bias=bias, record={**record, "epoch": epoch, "best_epoch": best_epoch},
            training_state={"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "epoch": epoch, "best_auroc": best_auroc, "best_epoch": best_epoch,
                            "stale": stale, "history": history},
        )

    val_indices = list(range(world.rank, len(val_set), world.size))
    # the gathered validation logits come rank by rank; the yardstick needs each row's label and source
    val_order = np.concatenate([np.arange(rank, len(val_set), world.size) for rank in range(world.size)]).astype(int)
    val_labels_seen = val_rows["label"].to_numpy()[val_order]
    val_sources_seen = val_rows["source"].to_numpy()[val_order]
    with progress() as bar:
        for epoch in range(start_epoch, epochs):
            if stale >= config.patience:
                break
            began = time.perf_counter()
            seed_everything(config.seed * 1000 + epoch * 10 + world.rank)
            loader_seed.manual_seed(config.seed * 1000 + epoch * 10 + world.rank)
            sampler.set_epoch(epoch)
            model.train()
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=len(loader), visible=world.is_main and config.show_progress)
            total, seen = 0.0, 0
            for images, targets, *sources in loader:
                images, targets = images.to(world.device, non_blocking=True), targets.to(world.device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with _autocast(world.device):
                    logits = model(images)
                    teacher_logits = teacher.logits(images) if teacher is not None else None
                loss = batch_loss(criterion, logits.float(), targets, config.task)
                if teacher is not None:
                    loss = teacher.loss(loss, logits, teacher_logits, config.task)
                if adversary is not None:
                    loss = loss + adversary.loss(targets, sources[0].to(world.device))
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(targets)
                seen += len(targets)
                bar.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs} loss {total / seen:.4f}")
            dist_.sync_buffers(screener, world)
            train_loss = dist_.mean_over_world(total / max(seen, 1), world)
            current_lr = optimizer.param_groups[0]["lr"]
            scheduler.step()

            shards = dist_.gather_objects(_predict(screener, val_set, val_indices, batch_size * 2, world.device, classes), world)
            val_logits = np.concatenate([logits for logits, _ in shards])
            val_targets_seen = np.concatenate([targets for _, targets in shards])
            with torch.no_grad():
                val_loss = float(batch_loss(criterion.cpu(), torch.from_numpy(val_logits), torch.from_numpy(val_targets_seen), config.task))
            criterion.to(world.device)
            val_auroc = task_auroc(val_logits, val_targets_seen, config.task)
            val_within = selection_score(val_labels_seen, val_sources_seen, covid_probability(val_logits, config.task))
            score = next(v for v in (val_within, val_auroc, -val_loss) if not math.isnan(v))
            temperature, bias, threshold = fit_decision(val_logits, val_targets_seen, config.task, labels)
            improved = score > best_auroc
            if improved:
                best_auroc, best_epoch, stale = score, epoch + 1, 0
            else:
                stale += 1
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_auroc": val_auroc,
                            "val_within_auroc": val_within, "lr": current_lr, "seconds": round(time.perf_counter() - began, 1)})
            if world.is_main:
                if improved:
                    save(best_path, threshold, temperature, bias, epoch + 1)
                save(last_path, threshold, temperature, bias, epoch + 1)
                _write_curves(pd.DataFrame(history, columns=HISTORY_COLUMNS), out)
                if config.show_progress:
                    mark = " [green]best[/]" if improved else ""
                    bar.console.print(f"epoch {epoch + 1}: train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
                                      f"val AUROC {val_auroc:.4f}  within-hospital {val_within:.4f}  lr {current_lr:.2e}{mark}", highlight=False)
            dist_.barrier(world)
    if world.is_main and stale >= config.patience and config.show_progress:
        console.print(f"stopped early: the selection score has not improved for {stale} epoch(s); best at epoch {best_epoch}")
    dist_.barrier(world)
    return TrainResult(pd.DataFrame(history, columns=HISTORY_COLUMNS), best_epoch, best_auroc, best_path, last_path, screener)

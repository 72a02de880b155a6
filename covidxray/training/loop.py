"""The training loop: a recipe trained on a split file into best and last checkpoints.

Deterministic under a seed (every epoch reseeds, so a resumed run repeats an uninterrupted one),
early stopping on the within-hospital validation AUROC, per-epoch curves as CSV and PNG; only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
import time
from dataclasses import dataclass, field
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
from covidxray.imaging.augment import Augmentation, augmentation
from covidxray.imaging.preprocess import Preprocessing
from covidxray.models.outputs import output_width
from covidxray.models.registry import input_arguments, model_spec
import covidxray.training.distributed as dist_
from covidxray.evaluation.yardstick import has_within_contrast, selection_score
from covidxray.training.calibration import covid_probability, fit_decision, task_auroc
from covidxray.inference.checkpoint import build_screener, read_checkpoint, save_checkpoint
from covidxray.training.adversary import SourceAdversary
from covidxray.training.distillation import Teacher, load_teacher
from covidxray.training.lung_evidence import LungEvidencePenalty
from covidxray.training.recipes import DEFAULT_RECIPE, RECIPES, SAMPLERS, Recipe, recipe as registered_recipe

__all__ = ["HISTORY_COLUMNS", "SAMPLERS", "TrainConfig", "TrainResult", "TrainingError", "train"]

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auroc", "val_within_auroc", "lr", "seconds"]


class TrainingError(CovidxrayError):
    """A training setting or a run directory that cannot be used."""


@dataclass(init=False)
class TrainConfig:
    """One training run: the recipe (what is trained, and how) and the run's own settings (where, with what)."""

    split: Path
    out: Path
    recipe: Recipe
    seed: int = 0
    resume: bool = False
    workers: int = 0
    threads: int | None = None           # torch threads per process; None: cores / local processes
    cache_dir: Path | None = None
    pack: Path | None = None
    teacher: Path | None = None          # a trained checkpoint to distil from (covidxray.training.distillation)
    max_images_per_part: int | None = None
    train_part: str = "train"
    val_part: str = "val"
    show_progress: bool = True

    def __init__(self, split: str | Path, out: str | Path, recipe: Recipe | str | None = None, **settings) -> None:
        """Args:
            split: split CSV written by `covidxray data split`.
            out: run directory (best.pt, last.pt, history.csv, curves.png).
            recipe: a Recipe or a registered recipe's name; None: "default", or with `model`, that network's own recipe.
            settings: run settings by name, and recipe fields by name, which change the recipe (None changes
                nothing; `model` is the old name of `architecture`).
        """
        run_fields = {entry.name: entry for entry in dataclasses.fields(TrainConfig)
                      if entry.name not in ("split", "out", "recipe")}
        run = {key: settings.pop(key) for key in list(settings) if key in run_fields}
        architecture = settings.pop("model", None)
        if architecture is not None:
            settings["architecture"] = architecture
            recipe = recipe or (architecture if architecture in RECIPES else None)
        chosen = recipe if isinstance(recipe, Recipe) else registered_recipe(recipe or DEFAULT_RECIPE)
        self.split, self.out = Path(split), Path(out)
        self.recipe = chosen.updated({key: value for key, value in settings.items() if value is not None})
        for name, entry in run_fields.items():
            setattr(self, name, run.get(name, entry.default))


@dataclass
class TrainResult:
    """What a run produced: its history, its best epoch and selection score, and where the checkpoints are."""

    history: pd.DataFrame
    best_epoch: int
    best_val_auroc: float        # the selection score of the best epoch (the within-hospital val AUROC where it applies)
    best_path: Path
    last_path: Path
    screener: nn.Module
    selection: str = ""          # what the score is, as the checkpoint's record says


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch at once, so sampling, augmentation and dropout repeat."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


class WeightedDistributedSampler(DistributedSampler):
    """Draws len(dataset) indices with replacement by weight, reseeded per epoch, sharded by rank."""

    def __init__(self, dataset, weights: np.ndarray, num_replicas: int, rank: int, seed: int) -> None:
        """Args:
            dataset: the training dataset (only its length is read).
            weights: one sampling weight per row.
            num_replicas: processes sharing the epoch.
            rank: this process's share.
            seed: base seed; each epoch adds its number.
        """
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
    """BCE on one logit (binary) or cross-entropy; weighted by inverse class frequency if asked.

    Args:
        task: binary or 3class.
        targets: the training targets (0/1, or class indices), which set the weights.
        weighted: weight the loss by inverse class frequency (the recipe's class_weights).
        classes: number of classes of the cross-entropy (ignored for binary).

    Returns:
        The loss module, on the CPU.
    """
    if task == "binary":
        positives = max(1, int(targets.sum()))
        negatives = max(1, int(len(targets) - targets.sum()))
        pos_weight = torch.tensor([negatives / positives]) if weighted else None
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    counts = np.bincount(targets, minlength=classes).astype(np.float64)
    weight = torch.tensor(len(targets) / (classes * np.maximum(counts, 1)), dtype=torch.float32) if weighted else None
    return nn.CrossEntropyLoss(weight=weight)


def batch_loss(criterion: nn.Module, logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    """The loss of one batch, shaped for the task (BCE takes flat float targets).

    Args:
        criterion: from loss_function.
        logits: (N, outputs).
        targets: (N,) integer targets.
        task: binary or 3class.

    Returns:
        The scalar loss.
    """
    if task == "binary":
        return criterion(logits.reshape(-1), targets.float())
    return criterion(logits, targets)


def _counts(rows: pd.DataFrame) -> dict:
    table = rows.groupby(["source", "label"]).size()
    return {f"{source}|{label}": int(n) for (source, label), n in table.items()}


def _limit(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subset of at most limit rows (--max-images-per-part), for quick runs.

    Args:
        rows: one part's rows.
        limit: most rows kept; None keeps all.
        seed: seed of the draw.

    Returns:
        The rows, or a subset of them.
    """
    if limit is None or len(rows) <= limit:
        return rows
    return rows.sample(n=limit, random_state=seed).reset_index(drop=True)


def _check_config(config: TrainConfig) -> None:
    """The names a recipe cannot check without torch (network, augmentation preset), and the run's own numbers."""
    task_labels(config.recipe.task)
    model_spec(config.recipe.architecture)
    augmentation(config.recipe.augmentation)
    if config.max_images_per_part is not None and config.max_images_per_part < 1:
        raise TrainingError(f"--max-images-per-part must be at least 1, not {config.max_images_per_part}")


def _load_parts(config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split's labelled train and val rows (each limited for quick runs); DatasetError when one is empty."""
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
    """DataLoader workers use one thread each, so they do not fight the training process for cores."""
    torch.set_num_threads(1)


def _autocast(device: torch.device):
    """bfloat16 autocast on a GPU (about twice the speed, same AUROC); a no-op on CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _predict(model: nn.Module, dataset: XrayDataset, indices: list[int], batch_size: int, device,
             width: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and targets of the given rows, in order, without augmentation.

    Args:
        model: the screener.
        dataset: the validation dataset.
        indices: the rows to predict (this process's share).
        batch_size: images per forward pass.
        device: where the model is.
        width: outputs per image, for the shape of an empty result.

    Returns:
        (logits (N, width), targets (N,)).
    """
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
    """history.csv and curves.png (loss, the two validation AUROCs, learning rate) into the run folder."""
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
    """Train config.recipe on the split's train part, validating on its val part, into config.out."""
    _check_config(config)
    world = dist_.start_world()
    try:
        return _train(config, world)
    finally:
        dist_.end_world(world)


@dataclass
class _Settings:
    """What the recipe implies for this run: the network's input, augmentation, labels, outputs and paths."""

    preprocessing: Preprocessing
    recipe: Recipe
    batch_size: int
    lr: float
    augment: Augmentation
    labels: tuple[str, ...]
    classes: int                 # network outputs: 1 for the binary task, else one per label
    architecture_kwargs: dict
    out: Path
    last_path: Path
    best_path: Path


@dataclass
class _Split:
    """The split file's train and val rows and its identity (hash and fingerprint) for the record."""

    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    sha256: str
    fingerprint: str
    unreadable: int = 0          # images dropped from both parts because they could not be read


@dataclass
class _Data:
    """The datasets and the training loader the epochs read, and the val rows in the order validation gathers them."""

    split: _Split
    cache: ImageCache | PackedImages
    train_targets: np.ndarray
    source_names: list[str]
    train_set: XrayDataset
    val_set: XrayDataset
    sampler: DistributedSampler
    loader: DataLoader
    loader_seed: torch.Generator
    val_indices: list[int]       # this rank's share of the val rows
    val_labels_seen: np.ndarray  # label and source of each gathered val row
    val_sources_seen: np.ndarray


@dataclass
class _Learner:
    """The network and everything that updates it: loss, optimiser, schedule, optional source adversary and teacher."""

    screener: nn.Module
    model: nn.Module             # the screener, wrapped for distributed training
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    adversary: SourceAdversary | None
    teacher: Teacher | None
    lung_evidence: LungEvidencePenalty | None = None


@dataclass
class _Run:
    """Everything built before the first epoch, handed to each per-epoch step."""

    config: TrainConfig
    world: dist_.World
    settings: _Settings
    data: _Data
    learner: _Learner
    record: dict


@dataclass
class _Standing:
    """Where the run stands between epochs: the history so far, the best score and how long since it improved."""

    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best_auroc: float = -math.inf
    best_epoch: int = 0
    stale: int = 0


@dataclass
class _Validation:
    """One epoch's validation figures and the decision rule (calibration and threshold) fitted on them."""

    loss: float
    auroc: float
    within: float                # within-hospital AUROC (nan without a within-hospital contrast)
    score: float                 # what selects the epoch: within, else AUROC, else minus the loss
    temperature: float
    bias: float
    threshold: float


def _train(config: TrainConfig, world: dist_.World) -> TrainResult:
    """The recipe: settings, data, model; then train, validate and keep the best each epoch until patience runs out."""
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // dist_.local_size()))
    settings = _resolve_settings(config)
    _claim_out_dir(config, world, settings)
    split = _read_split(config)
    teacher = _load_teacher_if_asked(config, world, settings, split)
    cache, split = _prepare_images(config, world, settings, split)
    data = _build_data(config, world, settings, split, cache)
    learner = _build_learner(config, world, settings, data, teacher)
    run = _Run(config, world, settings, data, learner, _run_record(config, world, settings, data, teacher))
    standing = _start_or_resume(run)
    recipe = config.recipe

    with progress() as bar:
        for epoch in range(standing.start_epoch, recipe.epochs):
            if standing.stale >= recipe.patience:
                break
            began = time.perf_counter()
            train_loss, current_lr = _train_one_epoch(run, epoch, bar)
            validation = _validate(run)
            improved = _tally_epoch(standing, validation, epoch, train_loss, current_lr, began)
            if world.is_main:
                _save_epoch(run, standing, validation, epoch, improved)
                if config.show_progress:
                    _report_epoch(bar, validation, epoch, train_loss, current_lr, improved)
            dist_.barrier(world)
    if world.is_main and standing.stale >= recipe.patience and config.show_progress:
        console.print(f"stopped early: the selection score has not improved for {standing.stale} epoch(s); "
                      f"best at epoch {standing.best_epoch}")
    dist_.barrier(world)
    return TrainResult(pd.DataFrame(standing.history, columns=HISTORY_COLUMNS), standing.best_epoch, standing.best_auroc,
                       settings.best_path, settings.last_path, learner.screener, run.record["selection"])


def _resolve_settings(config: TrainConfig) -> _Settings:
    """What the recipe implies: the network's input, the augmentation, the labels and outputs, the run's paths."""
    recipe = config.recipe
    preprocessing = recipe.preprocessing()
    labels = task_labels(recipe.task)
    architecture_kwargs = input_arguments(recipe.architecture, preprocessing)
    if recipe.width is not None:
        architecture_kwargs["width"] = recipe.width
    if recipe.last_stride != 2:
        architecture_kwargs["last_stride"] = recipe.last_stride
    out = Path(config.out)
    return _Settings(
        preprocessing=preprocessing, recipe=recipe, batch_size=recipe.batch_size, lr=recipe.lr,
        augment=augmentation(recipe.augmentation), labels=labels, classes=output_width(recipe.task, labels),
        architecture_kwargs=architecture_kwargs, out=out, last_path=out / "last.pt", best_path=out / "best.pt",
    )


def _claim_out_dir(config: TrainConfig, world: dist_.World, settings: _Settings) -> None:
    """Create the run directory, refusing to overwrite an earlier run unless resuming it.

    Args:
        config: the run (its resume flag).
        world: the processes (only the main one creates the folder).
        settings: the run's paths.
    """
    if world.is_main:
        settings.out.mkdir(parents=True, exist_ok=True)
    if not config.resume and settings.last_path.exists():
        raise TrainingError(f"{settings.out}: already holds a run (last.pt); pass --resume to continue it or choose another --out")


def _read_split(config: TrainConfig) -> _Split:
    """Read the train and val parts and identify the split, so checkpoints say what they were trained on."""
    train_rows, val_rows = _load_parts(config)
    return _Split(train_rows, val_rows, sha256=sha256_file(config.split),
                  fingerprint=split_fingerprint(config.split))  # the same wherever the datasets sit on disk


def _load_teacher_if_asked(config: TrainConfig, world: dist_.World, settings: _Settings, split: _Split) -> Teacher | None:
    """Load the checkpoint to distil from, checked against this task and split, before any image work.

    Args:
        config: the run (its teacher path and recipe's distillation weight and temperature).
        world: the processes (the teacher goes to their device).
        settings: the run's labels.
        split: the split's identity, which the teacher must share.

    Returns:
        The frozen Teacher, or None without --teacher.
    """
    if config.teacher is None:
        return None
    return load_teacher(config.teacher, task=config.recipe.task, labels=settings.labels, split_sha256=split.sha256,
                        split_fingerprint=split.fingerprint, train_part=config.train_part,
                        weight=config.recipe.distill_weight, temperature=config.recipe.distill_temperature,
                        device=world.device)


def _prepare_images(config: TrainConfig, world: dist_.World, settings: _Settings,
                    split: _Split) -> tuple[ImageCache | PackedImages, _Split]:
    """Decode every image once (into the cache, or from the pack) and drop the rows whose image cannot be read.

    Args:
        config: the run (pack, cache folder, workers).
        world: the processes (each decodes its share into the cache).
        settings: the preprocessing the cache is keyed by.
        split: the rows to decode.

    Returns:
        (the image source the datasets read, the split without unreadable rows).
    """
    paths = sorted(set(split.train_rows["path"]) | set(split.val_rows["path"]))
    lungs = config.recipe.reads_lung_masks
    if config.pack is not None:  # every rank holds the whole pack in memory, prepared once
        if lungs:
            raise TrainingError(f"{config.pack}: a pack holds no lung masks; train with lung_evidence from the image "
                                "cache (leave --pack out) or set lung_evidence=0")
        cache = PackedImages(config.pack, settings.preprocessing)
        mine, prepare = paths, cache.prepare
    else:
        cache = ImageCache(config.cache_dir or default_cache_dir(), settings.preprocessing)
        mine, prepare = paths[world.rank:: world.size], functools.partial(cache.prepare, with_lungs=lungs)
    with progress() as bar:
        what = f"preparing images from {config.pack}" if config.pack is not None else "decoding images into the cache"
        task = bar.add_task(what, total=len(mine), visible=world.is_main and config.show_progress)
        failures = prepare(mine, workers=config.workers, progress=lambda: bar.advance(task))
    unreadable: dict[str, str] = {}
    for part in dist_.gather_objects(failures, world):
        unreadable.update(part)
    if not unreadable:
        return cache, split
    if world.is_main:
        console.print(f"[yellow]skipping {len(unreadable)} unreadable image(s)[/], e.g. {next(iter(unreadable.values()))}")
    return cache, dataclasses.replace(
        split, train_rows=split.train_rows[~split.train_rows["path"].isin(unreadable)].reset_index(drop=True),
        val_rows=split.val_rows[~split.val_rows["path"].isin(unreadable)].reset_index(drop=True),
        unreadable=len(unreadable))


def _build_data(config: TrainConfig, world: dist_.World, settings: _Settings, split: _Split,
                cache: ImageCache | PackedImages) -> _Data:
    """Turn the rows into datasets and a seeded, sharded training loader with the chosen sampler.

    Args:
        config: the run (its recipe's task and sampler, seed, workers).
        world: the processes the rows are sharded over.
        settings: batch size and augmentation.
        split: the train and val rows.
        cache: where the prepared images are read from.

    Returns:
        The datasets, the loader and the val rows' labels and sources in gathered order.
    """
    train_rows, val_rows = split.train_rows, split.val_rows
    task = config.recipe.task
    train_targets = targets_for(train_rows["label"], task)
    val_targets = targets_for(val_rows["label"], task)
    if len(np.unique(train_targets)) < 2:
        raise DatasetError(f"{config.split}: the '{config.train_part}' part has only one class for the {task} task")

    source_names = sorted(set(train_rows["source"]))
    source_index = train_rows["source"].map(source_names.index).to_numpy() if config.recipe.source_adversary else None
    train_set = XrayDataset(train_rows["path"].tolist(), train_targets, cache, settings.augment, source_index,
                            lungs=config.recipe.reads_lung_masks)
    val_set = XrayDataset(val_rows["path"].tolist(), val_targets, cache, None)
    weights = sampling_weights(train_rows, config.recipe.sampler)
    if weights is None:
        sampler = DistributedSampler(train_set, num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed)
    else:
        sampler = WeightedDistributedSampler(train_set, weights, world.size, world.rank, config.seed)
    loader_seed = torch.Generator()
    loader = DataLoader(
        train_set, batch_size=settings.batch_size, sampler=sampler, num_workers=config.workers, generator=loader_seed,
        drop_last=len(sampler) > settings.batch_size, worker_init_fn=_single_thread_worker,
        persistent_workers=False, pin_memory=world.device.type == "cuda",
    )
    # the gathered validation logits come rank by rank; the yardstick needs each row's label and source
    val_order = np.concatenate([np.arange(rank, len(val_set), world.size) for rank in range(world.size)]).astype(int)
    return _Data(
        split=split, cache=cache, train_targets=train_targets, source_names=source_names,
        train_set=train_set, val_set=val_set, sampler=sampler, loader=loader, loader_seed=loader_seed,
        val_indices=list(range(world.rank, len(val_set), world.size)),
        val_labels_seen=val_rows["label"].to_numpy()[val_order], val_sources_seen=val_rows["source"].to_numpy()[val_order],
    )


def _lr_factor(schedule: str, epochs: int):
    """The schedule as a multiplier of the base learning rate per epoch: cosine down to 1%, or constant."""
    if schedule == "cosine":
        return lambda epoch: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
    return lambda epoch: 1.0


def _build_learner(config: TrainConfig, world: dist_.World, settings: _Settings, data: _Data,
                   teacher: Teacher | None) -> _Learner:
    """Build the seeded network (and source adversary), its loss, optimiser and schedule, on the run's device.

    Args:
        config: the run (its recipe and seed).
        world: the processes (device, distributed wrapping).
        settings: the network's input, outputs and learning rate.
        data: the training targets (loss weights) and sources (adversary).
        teacher: the frozen teacher, or None.

    Returns:
        The _Learner every epoch updates.
    """
    if world.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    recipe, classes = settings.recipe, settings.classes
    seed_everything(config.seed)
    screener = build_screener(recipe.architecture, settings.architecture_kwargs, classes,
                              settings.preprocessing).to(world.device)
    adversary = None
    if recipe.source_adversary:
        if len(data.source_names) < 2:
            raise TrainingError(f"source_adversary needs at least two sources in the training part; "
                                f"found {data.source_names}")
        adversary = SourceAdversary(screener.network, len(data.source_names), classes,
                                    recipe.source_adversary).to(world.device)
    model = dist_.wrap(screener, world)
    criterion = loss_function(recipe.task, data.train_targets, recipe.class_weights, max(classes, 2)).to(world.device)
    if recipe.optimizer == "rmsprop":  # Keras defaults: rho 0.9, epsilon 1e-7
        optimizer = torch.optim.RMSprop(model.parameters(), lr=settings.lr, alpha=0.9, eps=1e-7)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=recipe.weight_decay)
    if adversary is not None:  # trained with the network, never saved: a resumed run starts a fresh head
        optimizer.add_param_group({"params": list(adversary.parameters())})
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(recipe.schedule, recipe.epochs))
    lung_evidence = LungEvidencePenalty(screener.network, recipe.lung_evidence) if recipe.reads_lung_masks else None
    return _Learner(screener, model, criterion, optimizer, scheduler, adversary, teacher, lung_evidence)


def _run_record(config: TrainConfig, world: dist_.World, settings: _Settings, data: _Data, teacher: Teacher | None) -> dict:
    """What every checkpoint records about how it was trained, so a model can be traced back to its data and recipe.

    Args:
        config: the run (split, parts, seed, recipe).
        world: the processes (size, device).
        settings: the resolved batch, learning rate and augmentation.
        data: the rows trained and validated on (counts per source and label).
        teacher: the teacher's own record, or None.

    Returns:
        The record: plain values only (a checkpoint loads with weights_only).
    """
    split, recipe = data.split, settings.recipe
    val_rows = split.val_rows
    record = {
        "split_file": Path(config.split).name, "split_sha256": split.sha256, "split_fingerprint": split.fingerprint,
        "train_part": config.train_part, "val_part": config.val_part,
        "selection": ("within-hospital validation AUROC (covidxray.evaluation.yardstick)"
                      if has_within_contrast(val_rows["label"].to_numpy(), val_rows["source"].to_numpy())
                      else "validation AUROC (no within-hospital contrast in the validation part)"),
        "counts": {"train": _counts(split.train_rows), "val": _counts(val_rows)},
        "unreadable_skipped": split.unreadable, "seed": config.seed, "epochs": recipe.epochs, "covidxray_version": __version__,
        "torch_version": str(torch.__version__), "world_size": world.size, "batch_size": settings.batch_size, "lr": settings.lr,
        "optimizer": recipe.optimizer, "schedule": recipe.schedule, "sampler": recipe.sampler,
        "augmentation_preset": recipe.augmentation, "source_adversary": recipe.source_adversary,
        "augmentation": dataclasses.asdict(settings.augment), "max_images_per_part": config.max_images_per_part or 0,
        "device": world.device.type, "patience": recipe.patience,
        # the whole resolved recipe and what differs from the registered one of its name (empty: reproduced exactly)
        "recipe": recipe.to_dict(), "recipe_changes": recipe.differences(),
    }
    if config.pack is not None:
        cache = data.cache
        record["pack"] = {"file": Path(config.pack).name, "sha256": cache.sha256(),
                          "max_side": cache.meta.get("max_side"), "quality": cache.meta.get("quality")}
    if teacher is not None:
        record["distillation"] = teacher.record
    return record


def _start_or_resume(run: _Run) -> _Standing:
    """Start afresh, or with --resume restore the weights, optimiser, schedule and standing from last.pt."""
    config, settings, learner = run.config, run.settings, run.learner
    if not config.resume:
        return _Standing()
    last_path = settings.last_path
    if not last_path.exists():
        raise TrainingError(f"{settings.out}: no last.pt to resume from; run without --resume")
    saved = read_checkpoint(last_path)
    recipe = config.recipe
    if saved["architecture"] != recipe.architecture or saved["task"] != recipe.task:
        raise TrainingError(f"{last_path}: was a {saved['architecture']} {saved['task']} run, not {recipe.architecture} {recipe.task}")
    recorded = saved.get("record", {}).get("recipe")
    if recorded is not None and recorded != recipe.to_dict():
        changed = ", ".join(f"{key} {recorded.get(key)!r} -> {value!r}" for key, value in recipe.to_dict().items()
                            if recorded.get(key) != value)
        raise TrainingError(f"{last_path}: resume with the run's own recipe; this one differs: {changed}")
    state = saved["training_state"]
    learner.screener.load_state_dict(saved["state_dict"])
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scheduler.load_state_dict(state["scheduler"])
    standing = _Standing(history=list(state["history"]), start_epoch=state["epoch"], best_auroc=state["best_auroc"],
                         best_epoch=state["best_epoch"], stale=state["stale"])
    if run.world.is_main:
        console.print(f"resuming {recipe.architecture} from epoch {standing.start_epoch} of {recipe.epochs} ({last_path})")
    return standing


def _train_one_epoch(run: _Run, epoch: int, bar) -> tuple[float, float]:
    """One reseeded pass over the training loader; the mean loss over the world and the learning rate it used.

    Args:
        run: everything built before the first epoch.
        epoch: 0-based epoch number (reseeds sampling and augmentation).
        bar: the progress display.

    Returns:
        (mean training loss over all processes, the learning rate of this epoch).
    """
    config, world, data, learner = run.config, run.world, run.data, run.learner
    teacher, adversary, optimizer, lung_evidence = learner.teacher, learner.adversary, learner.optimizer, learner.lung_evidence
    seed_everything(config.seed * 1000 + epoch * 10 + world.rank)
    data.loader_seed.manual_seed(config.seed * 1000 + epoch * 10 + world.rank)
    data.sampler.set_epoch(epoch)
    learner.model.train()
    task = bar.add_task(f"epoch {epoch + 1}/{config.recipe.epochs}", total=len(data.loader),
                        visible=world.is_main and config.show_progress)
    total, seen = 0.0, 0
    for images, targets, *extras in data.loader:  # then the source index and the lung mask, when used
        images, targets = images.to(world.device, non_blocking=True), targets.to(world.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(world.device):
            logits = learner.model(images)
            teacher_logits = teacher.logits(images) if teacher is not None else None
        loss = batch_loss(learner.criterion, logits.float(), targets, config.recipe.task)
        if teacher is not None:
            loss = teacher.loss(loss, logits, teacher_logits, config.recipe.task)
        if adversary is not None:
            loss = loss + adversary.loss(targets, extras[0].to(world.device))
        if lung_evidence is not None:
            loss = loss + lung_evidence.loss(extras[-1].to(world.device, non_blocking=True))
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(targets)
        seen += len(targets)
        bar.update(task, advance=1, description=f"epoch {epoch + 1}/{config.recipe.epochs} loss {total / seen:.4f}")
    dist_.sync_buffers(learner.screener, world)
    train_loss = dist_.mean_over_world(total / max(seen, 1), world)
    current_lr = optimizer.param_groups[0]["lr"]
    learner.scheduler.step()
    return train_loss, current_lr


def _validate(run: _Run) -> _Validation:
    """Score the epoch on the whole val part (the within-hospital AUROC selects it) and fit the decision rule there."""
    world, settings, data, learner = run.world, run.settings, run.data, run.learner
    criterion, task = learner.criterion, run.config.recipe.task
    shards = dist_.gather_objects(_predict(learner.screener, data.val_set, data.val_indices, settings.batch_size * 2,
                                           world.device, settings.classes), world)
    val_logits = np.concatenate([logits for logits, _ in shards])
    val_targets_seen = np.concatenate([targets for _, targets in shards])
    with torch.no_grad():
        val_loss = float(batch_loss(criterion.cpu(), torch.from_numpy(val_logits), torch.from_numpy(val_targets_seen), task))
    criterion.to(world.device)
    val_auroc = task_auroc(val_logits, val_targets_seen, task)
    val_within = selection_score(data.val_labels_seen, data.val_sources_seen, covid_probability(val_logits, task))
    score = next(v for v in (val_within, val_auroc, -val_loss) if not math.isnan(v))
    temperature, bias, threshold = fit_decision(val_logits, val_targets_seen, task, settings.labels)
    return _Validation(val_loss, val_auroc, val_within, score, temperature, bias, threshold)


def _tally_epoch(standing: _Standing, validation: _Validation, epoch: int, train_loss: float, current_lr: float,
                 began: float) -> bool:
    """Note whether this epoch is the best so far (else one more stale epoch) and add its history row.

    Args:
        standing: the run's standing, updated in place.
        validation: this epoch's validation figures.
        epoch: 0-based epoch number.
        train_loss: this epoch's mean training loss.
        current_lr: this epoch's learning rate.
        began: perf_counter at the epoch's start.

    Returns:
        Whether the selection score improved.
    """
    improved = validation.score > standing.best_auroc
    if improved:
        standing.best_auroc, standing.best_epoch, standing.stale = validation.score, epoch + 1, 0
    else:
        standing.stale += 1
    standing.history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": validation.loss,
                             "val_auroc": validation.auroc, "val_within_auroc": validation.within, "lr": current_lr,
                             "seconds": round(time.perf_counter() - began, 1)})
    return improved


def _save_epoch(run: _Run, standing: _Standing, validation: _Validation, epoch: int, improved: bool) -> None:
    """Write best.pt when the epoch improved, last.pt always (what --resume reads), then the history and curves.

    Args:
        run: the run.
        standing: where it stands.
        validation: this epoch's figures and decision rule.
        epoch: 0-based epoch number.
        improved: whether this epoch is the best so far.
    """
    if improved:
        _save_checkpoint(run, standing, validation, run.settings.best_path, epoch + 1)
    _save_checkpoint(run, standing, validation, run.settings.last_path, epoch + 1)
    _write_curves(pd.DataFrame(standing.history, columns=HISTORY_COLUMNS), run.settings.out)


def _save_checkpoint(run: _Run, standing: _Standing, validation: _Validation, path: Path, epoch: int) -> None:
    """One self-contained checkpoint: weights, decision rule, record, and the training state a resume needs.

    Args:
        run: the run.
        standing: where it stands (best epoch, stale count, history).
        validation: the decision rule fitted this epoch.
        path: best.pt or last.pt.
        epoch: 1-based epoch number the weights are from.
    """
    config, settings, learner = run.config, run.settings, run.learner
    save_checkpoint(
        path, learner.screener, architecture=config.recipe.architecture, architecture_kwargs=settings.architecture_kwargs,
        preprocessing=settings.preprocessing, task=config.recipe.task, labels=settings.labels, threshold=validation.threshold,
        temperature=validation.temperature, bias=validation.bias,
        record={**run.record, "epoch": epoch, "best_epoch": standing.best_epoch},
        training_state={"optimizer": learner.optimizer.state_dict(), "scheduler": learner.scheduler.state_dict(),
                        "epoch": epoch, "best_auroc": standing.best_auroc, "best_epoch": standing.best_epoch,
                        "stale": standing.stale, "history": standing.history},
    )


def _report_epoch(bar, validation: _Validation, epoch: int, train_loss: float, current_lr: float, improved: bool) -> None:
    """Print the epoch's one-line summary above the progress bars.

    Args:
        bar: the progress display, whose console prints.
        validation: this epoch's figures.
        epoch: 0-based epoch number.
        train_loss: this epoch's mean training loss.
        current_lr: this epoch's learning rate.
        improved: whether the line is marked best.
    """
    mark = " [green]best[/]" if improved else ""
    bar.console.print(f"epoch {epoch + 1}: train loss {train_loss:.4f}  val loss {validation.loss:.4f}  "
                      f"val AUROC {validation.auroc:.4f}  within-hospital {validation.within:.4f}  lr {current_lr:.2e}{mark}",
                      highlight=False)

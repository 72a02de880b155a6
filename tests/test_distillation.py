"""Distillation: the soft-target term pulls the student to the teacher; only a same-split teacher teaches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from covidxray.inference.checkpoint import read_checkpoint
from covidxray.training.distillation import DistillationError, load_teacher, soft_target_loss
from covidxray.training.loop import train
from covidxray.training.recipes import RecipeError
from synthetic_xrays import quick_train_config, write_split


@pytest.fixture(scope="module")
def split_file(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("xrays"), {"train": 16, "val": 6, "test": 2})


@pytest.fixture(scope="module")
def teacher(split_file, tmp_path_factory):
    """A teacher trained on the split at a larger input side than its students."""
    out = tmp_path_factory.mktemp("teacher")
    return train(quick_train_config(split_file, out / "run", size=48, epochs=3)).best_path


@pytest.mark.parametrize("task,width", [("binary", 1), ("3class", 3)])
def test_soft_target_loss_is_smallest_with_zero_gradient_where_the_student_matches_the_teacher(task, width):
    teacher_logits = torch.tensor(np.random.default_rng(0).normal(0, 2, (12, width)), dtype=torch.float32)
    student = teacher_logits.clone().requires_grad_(True)
    at_teacher = soft_target_loss(student, teacher_logits, task, temperature=2.0)
    at_teacher.backward()
    assert student.grad.abs().max() < 1e-6
    for offset in (0.5, -1.0):
        moved = teacher_logits + offset * torch.linspace(-1, 1, width)  # a 3-class shift must change the softmax
        assert soft_target_loss(moved, teacher_logits, task, 2.0) > at_teacher + 1e-4


def test_soft_target_gradient_keeps_its_size_across_temperatures():
    teacher_logits = torch.tensor([[2.0], [-1.0], [0.5]])
    sizes = []
    for temperature in (1.0, 4.0):
        student = torch.zeros(3, 1, requires_grad=True)
        soft_target_loss(student, teacher_logits, "binary", temperature).backward()
        sizes.append(float(student.grad.abs().sum()))
    assert sizes[1] == pytest.approx(sizes[0], rel=0.6)  # T^2 scaling: same order, not 1/T smaller


def test_a_distilled_run_records_its_teacher_and_follows_it_more_closely(split_file, teacher, tmp_path):
    from covidxray.inference.classifier import load_checkpoint
    from covidxray.imaging.read import read_image
    import pandas as pd

    plain = train(quick_train_config(split_file, tmp_path / "plain", epochs=3, seed=1))
    taught = train(quick_train_config(split_file, tmp_path / "taught", epochs=3, seed=1, teacher=teacher, distill_weight=1.0,
                          distill_temperature=1.0))
    record = read_checkpoint(taught.best_path)["record"]["distillation"]
    assert record["architecture"] == "xray-cnn" and record["input_size"] == 48 and len(record["sha256"]) == 64
    assert record["weight"] == 1.0 and "distillation" not in read_checkpoint(plain.best_path)["record"]
    assert not np.allclose(plain.history["train_loss"], taught.history["train_loss"])

    rows = pd.read_csv(split_file).query("split == 'train'")
    images = [read_image(path) for path in rows["path"]]
    teacher_logits = load_checkpoint(teacher).logits(images).ravel()

    def distance(run) -> float:  # last weights, raw logits: what the loss pulled on
        model = load_checkpoint(run.last_path)
        return float(np.mean((model.logits(images).ravel() - teacher_logits) ** 2))

    assert distance(taught) < distance(plain)


def test_a_teacher_from_another_split_or_task_is_refused(split_file, teacher, tmp_path):
    other_split = tmp_path / "other.csv"
    other_split.write_text(split_file.read_text() + "\n")
    with pytest.raises(DistillationError, match="trained on another split"):
        train(quick_train_config(other_split, tmp_path / "a", teacher=teacher))
    with pytest.raises(DistillationError, match="teacher is a binary model"):
        train(quick_train_config(split_file, tmp_path / "b", task="3class", teacher=teacher))
    with pytest.raises(RecipeError, match="distill_weight must be in"):  # refused with the recipe, before any work
        train(quick_train_config(split_file, tmp_path / "c", teacher=teacher, distill_weight=1.5))
    with pytest.raises(DistillationError, match="distill-weight"):  # and by the function, called on its own
        load_teacher(teacher, task="binary", labels=("not_covid", "covid"), split_sha256="", train_part="train",
                     weight=1.5, temperature=2.0, device=torch.device("cpu"))
    assert not (tmp_path / "a" / "best.pt").exists()

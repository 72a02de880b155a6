"""Knowledge distillation: a small, fast student learns from a big teacher's outputs.

Why: a DenseNet-121 trained on a GPU ranks better than the small CPU network, but it is too big
and too slow to ship. The student sees each augmented batch once and is pulled both towards the
labels and towards the teacher's softened outputs on that same batch (the teacher sees the same
view, resized to its own input side), so it learns the teacher's ranking, not just the labels.

The teacher must have been trained on the same split file: a teacher that saw the student's
validation or test images would leak them into the student's evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from covidxray.errors import CovidxrayError
from covidxray.data.fingerprint import same_split
from covidxray.hashing import sha256_file
from covidxray.inference.classifier import load_checkpoint

__all__ = ["DistillationError", "Teacher", "load_teacher", "soft_target_loss"]


class DistillationError(CovidxrayError):
    """A teacher that cannot teach this run: other task, other labels, other split."""


@dataclass
class Teacher:
    """A frozen trained screener and how much its outputs count in the student's loss."""

    screener: nn.Module
    size: int
    weight: float
    temperature: float
    record: dict

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's raw logits for the student's batch (N, 1, H, W) in [0, 1]."""
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False).clamp(0, 1)
        return self.screener(images).float()

    def loss(self, hard_loss: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor, task: str) -> torch.Tensor:
        """(1 - weight) * label loss + weight * T^2 * divergence from the teacher's softened outputs.

        Args:
            hard_loss: the label loss of the batch.
            student_logits: (N, outputs) of the network being trained.
            teacher_logits: (N, outputs) of the teacher on the same batch.
            task: binary or 3class.

        Returns:
            The combined scalar loss.
        """
        return (1 - self.weight) * hard_loss + self.weight * soft_target_loss(student_logits, teacher_logits, task, self.temperature)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, task: str, temperature: float) -> torch.Tensor:
    """Hinton's distillation term, scaled by T^2 so its gradients keep their size as T changes.

    Binary: cross-entropy between sigmoid(student / T) and sigmoid(teacher / T); otherwise the
    KL divergence between the softmaxes. Smallest (zero gradient) where student == teacher.

    Args:
        student_logits: (N, outputs) of the network being trained.
        teacher_logits: (N, outputs) of the teacher.
        task: binary or 3class.
        temperature: softens both before comparing.

    Returns:
        The scalar term, times T^2.
    """
    student, teacher = student_logits.float() / temperature, teacher_logits.float() / temperature
    if task == "binary":
        term = F.binary_cross_entropy_with_logits(student.reshape(-1), torch.sigmoid(teacher.reshape(-1)))
    else:
        term = F.kl_div(F.log_softmax(student, dim=1), F.log_softmax(teacher, dim=1), reduction="batchmean", log_target=True)
    return term * temperature ** 2


def load_teacher(path: str | Path, *, task: str, labels: tuple[str, ...], split_sha256: str, train_part: str,
                 weight: float, temperature: float, device: torch.device, split_fingerprint: str = "") -> Teacher:
    """The checkpoint at path as a frozen teacher for a run on the split whose fingerprint
    (covidxray.data.fingerprint; or, for teachers recorded before it, file sha256) is given.

    Args:
        path: the teacher's checkpoint.
        task: the student's task, which the teacher must share.
        labels: the student's labels, which the teacher must share.
        split_sha256: the student's split file hash (for teachers recorded before fingerprints).
        train_part: the student's training part, which the teacher must share.
        weight: share of the loss given to the teacher, in (0, 1].
        temperature: softening temperature, positive.
        device: where the teacher runs.
        split_fingerprint: the student's split fingerprint.

    Returns:
        The frozen Teacher; DistillationError when it may not teach this run.
    """
    if not 0.0 < weight <= 1.0:
        raise DistillationError(f"--distill-weight must be in (0, 1], not {weight}")
    if temperature <= 0:
        raise DistillationError(f"--distill-temperature must be positive, not {temperature}")
    classifier = load_checkpoint(path)
    if classifier.task != task or tuple(classifier.labels) != tuple(labels):
        raise DistillationError(f"{path}: the teacher is a {classifier.task} model {list(classifier.labels)}; "
                                f"this run is {task} {list(labels)}")
    taught = classifier.record
    taught_here = (same_split(taught, split_fingerprint, split_sha256) if split_fingerprint
                   else taught.get("split_sha256") == split_sha256)
    if not taught_here or taught.get("train_part", "train") != train_part:
        raise DistillationError(f"{path}: the teacher was trained on another split ({classifier.record.get('split_file', 'unknown')}); "
                                "it may have seen this run's validation or test images, so it cannot teach it")
    screener = classifier.screener.to(device).eval()
    for parameter in screener.parameters():
        parameter.requires_grad_(False)
    record = {"checkpoint": Path(path).name, "sha256": sha256_file(path), "architecture": classifier.architecture,
              "input_size": classifier.preprocessing.size, "weight": weight, "temperature": temperature}
    return Teacher(screener, classifier.preprocessing.size, weight, temperature, record)

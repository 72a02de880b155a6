"""How many logits a network gives for a task: one answer for training and for reading an X-ray.

Imports nothing heavy (no torch), so the ONNX path of inference may use it too.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["output_width"]


def output_width(task: str, labels: Sequence[str]) -> int:
    """1 for the binary task (one logit, p(covid) by its sigmoid), else one logit per label (softmax)."""
    return 1 if task == "binary" else len(labels)

"""Self-contained checkpoints: a file that predicts from read radiographs with nothing else.

It holds the weights, the architecture's name and arguments, the Preprocessing, the label names,
the task, the validation threshold and temperature, and a record of the training data.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from covidxray.errors import CovidxrayError
from covidxray.shown_paths import portable
from covidxray.imaging.preprocess import Preprocessing, Screener, check_intensity, prepare_array
from covidxray.training.calibration import probabilities

FORMAT = "covidxray-checkpoint/1"


class CheckpointError(CovidxrayError):
    """A checkpoint file is missing, unreadable or not a covidxray checkpoint."""


def build_screener(architecture: str, architecture_kwargs: dict, num_outputs: int, preprocessing: Preprocessing) -> Screener:
    """The registered network behind its door check."""
    from covidxray.models.registry import create_model

    return Screener(create_model(architecture, num_outputs, **architecture_kwargs), preprocessing)


def save_checkpoint(path: str | Path, screener: Screener, *, architecture: str, architecture_kwargs: dict,
                    preprocessing: Preprocessing, task: str, labels: Sequence[str], threshold: float,
                    temperature: float, record: dict, training_state: dict | None = None, bias: float = 0.0) -> Path:
    """Write atomically (temporary file, then rename) so an interrupted run never leaves half a file."""
    content = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in screener.state_dict().items()},
        "architecture": architecture,
        "architecture_kwargs": dict(architecture_kwargs),
        "preprocessing": preprocessing.to_dict(),
        "task": task,
        "labels": list(labels),
        "threshold": float(threshold),
        "temperature": float(temperature),
        "logit_bias": float(bias),
        "record": record,
    }
    if training_state is not None:
        content["training_state"] = training_state
    return write_content(content, path)


def write_content(content: dict, path: str | Path) -> Path:
    """torch.save to a temporary file, then rename, so that no reader ever sees half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(content, temporary)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from other users
    os.replace(temporary, path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw dictionary of a checkpoint, checked to be one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a covidxray checkpoint (expected format {FORMAT})")
    return content


@dataclass
class Classifier:
    """A trained screener ready to predict: predict_proba takes read radiographs (2-D float
    arrays in [0, 1], any size) and returns calibrated probabilities (N, len(labels))."""

    screener: Screener
    preprocessing: Preprocessing
    task: str
    labels: tuple[str, ...]
    threshold: float
    temperature: float
    architecture: str
    record: dict = field(default_factory=dict)
    bias: float = 0.0  # binary Platt bias (checkpoints made before it existed: 0)

    def logits(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        outputs = []
        self.screener.eval()
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start: start + batch_size]
                for number, image in enumerate(chunk):
                    check_intensity(np.asarray(image), f"image {start + number}")
                batch = torch.stack([torch.from_numpy(prepare_array(np.asarray(image, dtype=np.float32), self.preprocessing))
                                     for image in chunk]).unsqueeze(1)
                outputs.append(self.screener(batch).numpy())
        width = 1 if self.task == "binary" else len(self.labels)
        return np.concatenate(outputs) if outputs else np.zeros((0, width), dtype=np.float32)

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities, one column per label (binary: not_covid, covid)."""
        return probabilities(self.logits(images), self.task, self.temperature, self.bias)

    def p_covid(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba(images)[:, self.labels.index("covid")]

    def predict(self, images: Sequence[np.ndarray]) -> list[str]:
        """Binary: 'covid' where p(covid) >= the validation threshold; 3class: the most probable label."""
        proba = self.predict_proba(images)
        if self.task == "binary":
            return [self.labels[1] if p >= self.threshold else self.labels[0] for p in proba[:, 1]]
        return [self.labels[k] for k in proba.argmax(axis=1)]


def load_checkpoint(path: str | Path) -> Classifier:
    """Rebuild the Classifier saved at path (CPU)."""
    content = read_checkpoint(path)
    preprocessing = Preprocessing.from_dict(content["preprocessing"])
    labels = tuple(content["labels"])
    num_outputs = 1 if content["task"] == "binary" else len(labels)
    screener = build_screener(content["architecture"], content["architecture_kwargs"], num_outputs, preprocessing)
    screener.load_state_dict(content["state_dict"])
    screener.eval()
    return Classifier(screener, preprocessing, content["task"], labels, content["threshold"],
                      content["temperature"], content["architecture"], content.get("record", {}),
                      float(content.get("logit_bias", 0.0)))


def slim_checkpoint(source: str | Path, target: str | Path) -> Path:
    """A copy for shipping: no optimiser state, floating weights stored as float16 (half the size),
    absolute paths in the training record cut to file names.

    Loading restores float32 (load_state_dict copies into the model's float32 parameters), so
    only the stored precision changes; evaluate the slim file itself before quoting its figures.
    """
    content = read_checkpoint(source)
    content.pop("training_state", None)
    content["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in content["state_dict"].items()}
    content["stored_precision"] = "float16"
    content["record"] = portable(content.get("record") or {})  # no folder of the machine that trained it ships
    return write_content(content, target)

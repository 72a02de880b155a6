"""Self-contained checkpoints: a file that predicts from read radiographs with nothing else.

It holds the weights, the architecture's name and arguments, and the settings that decide an
answer (ModelInfo: the Preprocessing, the label names, the task, the validation threshold, the
calibration's temperature and logit bias) with a record of the training data. ModelInfo.settings
is the one place those settings become a dictionary, for every file that stores them. torch is
imported only to read or write the weights, so ModelInfo serves an ONNX-only installation too.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from covidxray.errors import CovidxrayError
from covidxray.paths.shown import portable
from covidxray.imaging.preprocess import Preprocessing

if TYPE_CHECKING:
    from covidxray.imaging.preprocess_torch import Screener

__all__ = ["FORMAT", "CheckpointError", "ModelInfo", "build_screener", "logit_bias_of", "read_checkpoint",
           "save_checkpoint", "slim_checkpoint", "write_content"]

FORMAT = "covidxray-checkpoint/1"
#: The calibration's logit bias under the one key every file writes; files written before it was
#: the one key (ONNX sidecars, evaluation reports) call it OLD_BIAS_KEY, still read.
BIAS_KEY = "logit_bias"
OLD_BIAS_KEY = "bias"


class CheckpointError(CovidxrayError):
    """A checkpoint file is missing, unreadable or not a covidxray checkpoint."""


def logit_bias_of(settings: dict) -> float:
    """The calibration's logit bias in stored settings (a checkpoint, a sidecar's meta, a report's
    "model"), under its key or the key older files used; 0.0 where there is none."""
    return float(settings.get(BIAS_KEY, settings.get(OLD_BIAS_KEY, 0.0)) or 0.0)


@dataclass
class ModelInfo:
    """A checkpoint's settings without its weights: everything but the network."""

    architecture: str
    preprocessing: Preprocessing
    task: str
    labels: tuple[str, ...]
    threshold: float
    temperature: float
    record: dict = field(default_factory=dict)
    bias: float = 0.0

    @classmethod
    def from_meta(cls, meta: dict) -> "ModelInfo":
        """From a checkpoint's dictionary, an ONNX sidecar's meta or a report's "model" (all use settings' keys)."""
        return cls(str(meta["architecture"]), Preprocessing.from_dict(meta["preprocessing"]), str(meta["task"]),
                   tuple(meta["labels"]), float(meta["threshold"]), float(meta["temperature"]),
                   dict(meta.get("record") or {}), logit_bias_of(meta))

    def settings(self) -> dict:
        """The settings that decide an answer, as every file stores them (checkpoint, ONNX sidecar,
        evaluation report, the web service's model card): one key each, the bias under BIAS_KEY."""
        return {"architecture": self.architecture, "preprocessing": self.preprocessing.to_dict(), "task": self.task,
                "labels": list(self.labels), "threshold": float(self.threshold),
                "temperature": float(self.temperature), BIAS_KEY: float(self.bias)}

    def as_meta(self) -> dict:
        """The settings and the training record: what a checkpoint and an ONNX sidecar hold besides the network."""
        return {**self.settings(), "record": self.record}


def build_screener(architecture: str, architecture_kwargs: dict, num_outputs: int, preprocessing: Preprocessing) -> Screener:
    """The registered network behind its door check.

    Args:
        architecture: a name in covidxray.models.registry.
        architecture_kwargs: the builder's arguments, as saved.
        num_outputs: 1 for the binary task, else one per label.
        preprocessing: the door's settings.

    Returns:
        The Screener (door check, then network), untrained until weights are loaded.
    """
    from covidxray.imaging.preprocess_torch import Screener
    from covidxray.models.registry import create_model

    return Screener(create_model(architecture, num_outputs, **architecture_kwargs), preprocessing)


def save_checkpoint(path: str | Path, screener: Screener, *, architecture: str, architecture_kwargs: dict,
                    preprocessing: Preprocessing, task: str, labels: Sequence[str], threshold: float,
                    temperature: float, record: dict, training_state: dict | None = None, bias: float = 0.0) -> Path:
    """Write atomically (temporary file, then rename) so an interrupted run never leaves half a file.

    Args:
        path: the checkpoint to write.
        screener: the trained network behind its door check; its weights are saved.
        architecture, architecture_kwargs: the registered name and builder arguments that rebuild it.
        preprocessing, task, labels, threshold, temperature, bias: the settings (ModelInfo).
        record: what the training saw (data, recipe, versions).
        training_state: optimiser and epoch, to resume; left out of shipped checkpoints.

    Returns:
        path.
    """
    info = ModelInfo(architecture, preprocessing, task, tuple(labels), threshold, temperature, record, bias)
    content = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in screener.state_dict().items()},
        "architecture_kwargs": dict(architecture_kwargs),
        **info.as_meta(),
    }
    if training_state is not None:
        content["training_state"] = training_state
    return write_content(content, path)


def write_content(content: dict, path: str | Path) -> Path:
    """torch.save to a temporary file, then rename, so that no reader ever sees half a checkpoint."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    buffer = io.BytesIO()  # saved to memory, the archive's inner folder is always "archive", never the
    torch.save(content, buffer)  # temporary file's random name: the same content gives the same bytes
    Path(temporary).write_bytes(buffer.getvalue())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from other users
    os.replace(temporary, path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw dictionary of a checkpoint, checked to be one of ours."""
    import torch

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

"""Self-contained checkpoints: a file that predicts from read radiographs with nothing else.

It holds the weights, the architecture's name and arguments, the Preprocessing, the label names,
the task, the validation threshold and temperature, and a record of the training data.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from covidxray.errors import CovidxrayError
from covidxray.paths.shown import portable
from covidxray.imaging.preprocess import Preprocessing
from covidxray.imaging.preprocess_torch import Screener

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

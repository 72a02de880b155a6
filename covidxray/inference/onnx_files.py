"""ONNX exports on disk: the sidecar that proves an export fresh, and the ONNX Runtime session.

`covidxray export --onnx --lungs` writes, beside each torch weights file (the source of truth),
NAME.onnx and a JSON sidecar NAME.onnx.json holding what inference needs besides the graph (the
classifier's preprocessing, labels, task, threshold, temperature, record; the segmenter's
settings) and the sha256 of the .pt it came from and of the .onnx. A sidecar that does not match
both files is stale: the caller then falls back to torch, so a stale export never gives an answer.

Nothing here imports torch or the preprocessing: the classifier and the lung segmenter both use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from covidxray.errors import CovidxrayError
from covidxray.hashing import sha256_file

# ONNX Runtime otherwise writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}
# (its telemetry store) on every run; it reads this variable once, when it is first imported.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

SIDECAR_FORMAT = "covidxray-onnx-sidecar/1"
#: What each kind of sidecar must hold in "meta".
META_KEYS = {
    "classifier": ("architecture", "preprocessing", "task", "labels", "threshold", "temperature"),
    "lungs": ("settings",),
}


class OnnxModelError(CovidxrayError):
    """An exported model asked for explicitly is missing, stale or cannot be run."""


def onnx_path_for(source: str | Path) -> Path:
    """Where the export of a .pt lives by default: beside it, suffix .onnx."""
    return Path(source).with_suffix(".onnx")


def sidecar_path(onnx_path: str | Path) -> Path:
    """NAME.onnx -> NAME.onnx.json."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def write_sidecar(onnx_path: str | Path, source: str | Path, kind: str, meta: dict) -> Path:
    """Record what the export came from (sha256 of source and of the .onnx) and what inference needs."""
    missing = [key for key in META_KEYS[kind] if key not in meta]
    if missing:
        raise OnnxModelError(f"{onnx_path}: sidecar metadata lacks {', '.join(missing)}")
    document = {"format": SIDECAR_FORMAT, "kind": kind, "source": Path(source).name,
                "source_sha256": sha256_file(source), "onnx_sha256": sha256_file(onnx_path), "meta": meta}
    path = sidecar_path(onnx_path)
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_fresh_sidecar(source: str | Path, kind: str, onnx_path: str | Path | None = None) -> tuple[Path, dict]:
    """(onnx path, meta) when the export beside source is present and made from this very source.

    Raises OnnxModelError saying why otherwise (missing, unreadable, other kind, stale).
    """
    source = Path(source)
    onnx_path = Path(onnx_path) if onnx_path is not None else onnx_path_for(source)
    side = sidecar_path(onnx_path)
    if not onnx_path.is_file():
        raise OnnxModelError(f"{onnx_path}: no ONNX model (run `covidxray export --onnx`)")
    if not side.is_file():
        raise OnnxModelError(f"{side}: no sidecar beside the ONNX model (run `covidxray export --onnx` again)")
    try:
        document = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxModelError(f"{side}: not a readable sidecar ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != SIDECAR_FORMAT or document.get("kind") != kind:
        raise OnnxModelError(f"{side}: not a {kind} sidecar (expected format {SIDECAR_FORMAT})")
    meta = document.get("meta")
    if not isinstance(meta, dict) or any(key not in meta for key in META_KEYS[kind]):
        raise OnnxModelError(f"{side}: sidecar lacks the model's settings")
    if not source.is_file():
        raise OnnxModelError(f"{source}: the weights the ONNX model was exported from are missing")
    if document.get("source_sha256") != sha256_file(source):
        raise OnnxModelError(f"{onnx_path}: stale, exported from another version of {source.name} "
                             "(run `covidxray export --onnx` again)")
    if document.get("onnx_sha256") != sha256_file(onnx_path):
        raise OnnxModelError(f"{onnx_path}: changed since export (sha256 differs from its sidecar)")
    return onnx_path, meta


def inference_session(onnx_path: str | Path):
    """A CPU ONNX Runtime session; OnnxModelError when onnxruntime is missing or the file is bad."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxModelError("onnxruntime is not installed (pip install onnxruntime)") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OnnxModelError(f"{onnx_path}: ONNX Runtime cannot load it ({exc})") from None

"""Who made a result: covidxray's version and the model (name, checkpoint sha256, threshold),
written into every SR and secondary capture so that a reader knows exactly what answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from covidxray import __version__

if TYPE_CHECKING:
    from covidxray.inference.predictor import Predictor

#: Manufacturer written into every result object; also how a viewer's user tells covidxray's results apart.
MANUFACTURER = "covidxray"


@dataclass(frozen=True)
class ModelIdentity:
    """The model behind a set of results."""

    name: str
    sha256: str
    labels: tuple[str, ...]
    threshold: float
    version: str = __version__

    @property
    def description(self) -> str:
        """One line: model name, checkpoint sha256 and covidxray version."""
        return f"model {self.name} (checkpoint sha256 {self.sha256}), covidxray {self.version}"


def model_identity(predictor: Predictor) -> ModelIdentity:
    """The identity of a covidxray Predictor's model (its checkpoint file is hashed once)."""
    from covidxray.hashing import sha256_file

    return ModelIdentity(name=predictor.name, sha256=sha256_file(predictor.model_path),
                         labels=tuple(predictor.labels), threshold=float(predictor.info.threshold))

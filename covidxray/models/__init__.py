"""Networks created by name from a registry (timm style): `create_model("xray-cnn", 1)`, no class imported.

Training recipes (how a network is trained) are covidxray.training.recipes; this package holds only
architectures. Names are imported on first use, so importing the package loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidxray.lazy import lazy_names

#: Public name -> the module that defines it (imported when the name is first used).
_API = {
    "create_model": "covidxray.models.registry",
    "list_models": "covidxray.models.registry",
    "model_spec": "covidxray.models.registry",
    "ModelSpec": "covidxray.models.registry",
    "UnknownModelError": "covidxray.models.registry",
    "output_width": "covidxray.models.outputs",
}

__all__ = list(_API)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from covidxray.models.outputs import output_width  # noqa: F401
    from covidxray.models.registry import ModelSpec, UnknownModelError, create_model, list_models, model_spec  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _API)

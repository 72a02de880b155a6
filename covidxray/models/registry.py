"""Networks created by name, each with the input it expects (timm style: no class is imported).

The CLI, the benchmarks and the tests all say create_model("xray-cnn", 1). How a network is
trained (optimiser, augmentation, epochs...) is a recipe: covidxray.training.recipes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from torch import nn

from covidxray.errors import CovidxrayError
from covidxray.imaging.preprocess import Preprocessing

__all__ = ["ModelSpec", "UnknownModelError", "create_model", "input_arguments", "list_models", "model_spec",
           "register_model"]


class UnknownModelError(CovidxrayError):
    """A model name that the registry does not know."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: its builder, the input it expects, and whether its layers depend on the input side.

    preprocessing: the network's native input (channels and intensity are the network's; size, crop and
    equalisation are what its plain recipe uses); sized_by_input: the builder takes the input side
    (a dense layer sized by it, as seed-cnn's), so every build passes `size`.
    """

    name: str
    builder: Callable[..., nn.Module]
    preprocessing: Preprocessing
    description: str = ""
    sized_by_input: bool = False


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a network to the registry under spec.name."""
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for name; UnknownModelError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model '{name}'; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def input_arguments(name: str, preprocessing: Preprocessing) -> dict:
    """The builder arguments the input fixes: {"size": side} for a network sized by its input, else {}."""
    return {"size": preprocessing.size} if model_spec(name).sized_by_input else {}


def create_model(name: str, num_outputs: int = 1, **kwargs) -> nn.Module:
    """Build the network called name with num_outputs logits; kwargs go to its builder.

    Args:
        name: a registered model name.
        num_outputs: logits per image (covidxray.models.outputs.output_width).
        kwargs: builder arguments (xray-cnn's width, seed-cnn's size); unknown ones are refused by name.

    Returns:
        The network, taking (N, channels, H, W) as given by its default Preprocessing.
    """
    spec = model_spec(name)
    if num_outputs < 1:
        raise UnknownModelError(f"num_outputs must be at least 1, not {num_outputs}")
    accepted = set(inspect.signature(spec.builder).parameters) - {"self", "num_outputs"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise UnknownModelError(f"model '{name}' does not take {', '.join(unknown)}; it takes: {', '.join(sorted(accepted))}")
    return spec.builder(num_outputs=num_outputs, **kwargs)


def _register_defaults() -> None:
    from covidxray.models.monai_nets import XrayCNN, densenet121, efficientnet_b0
    from covidxray.models.seed_cnn import SEED_INPUT_SIZE, SeedCNN

    register_model(ModelSpec(
        "seed-cnn", SeedCNN, Preprocessing(size=SEED_INPUT_SIZE, channels=3),
        "the seed study's CNN (baseline)", sized_by_input=True,
    ))
    register_model(ModelSpec(
        "xray-cnn", XrayCNN,
        # no border crop: on the held-out source it beat the 4% crop in two seeds (docs/training.md)
        Preprocessing(size=160, channels=1, intensity="per-image", crop_border=0.0, equalise=True),
        "small batch-normed CNN with global pooling, fast on CPU",
    ))
    register_model(ModelSpec(
        "densenet121", densenet121, Preprocessing(size=224, channels=1, intensity="per-image", crop_border=0.04, equalise=True),
        "MONAI DenseNet-121, from scratch",
    ))
    register_model(ModelSpec(
        "efficientnet-b0", efficientnet_b0, Preprocessing(size=224, channels=1, intensity="per-image", crop_border=0.04, equalise=True),
        "MONAI EfficientNet-B0, from scratch",
    ))


_register_defaults()

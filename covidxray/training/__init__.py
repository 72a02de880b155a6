"""Training: recipes by name, the loop that trains one into a run folder, calibration, distributed runs.

`covidxray train --recipe default` (or `train(TrainConfig(split, out, "default"))`) rebuilds the bundled
model's recipe. Names are imported on first use, so importing the package loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidxray.lazy import lazy_names

#: Public name -> the module that defines it (imported when the name is first used).
_API = {
    "Recipe": "covidxray.training.recipes",
    "RecipeError": "covidxray.training.recipes",
    "RECIPES": "covidxray.training.recipes",
    "recipe": "covidxray.training.recipes",
    "list_recipes": "covidxray.training.recipes",
    "resolve_recipe": "covidxray.training.recipes",
    "TrainConfig": "covidxray.training.loop",
    "TrainResult": "covidxray.training.loop",
    "TrainingError": "covidxray.training.loop",
    "train": "covidxray.training.loop",
    "recalibrate": "covidxray.training.recalibrate",
}

__all__ = list(_API)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from covidxray.training.loop import TrainConfig, TrainingError, TrainResult, train  # noqa: F401
    from covidxray.training.recalibrate import recalibrate  # noqa: F401
    from covidxray.training.recipes import RECIPES, Recipe, RecipeError, list_recipes, recipe, resolve_recipe  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _API)

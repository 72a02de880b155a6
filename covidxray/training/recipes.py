"""Training recipes by name: everything that decides what a run trains, so `--recipe default` rebuilds the bundled model.

A Recipe holds the network, the task, the preprocessing and the training settings, with one line
saying why; RECIPES holds the registered ones. A recipe file (TOML) and KEY=VALUE settings change
fields of a registered recipe; every checkpoint records the resolved recipe and what was changed.
Imports nothing heavy, so the CLI can list recipes without loading torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from covidxray.errors import CovidxrayError

__all__ = ["DEFAULT_RECIPE", "OPTIMIZERS", "RECIPES", "Recipe", "RecipeError", "SAMPLERS", "SCHEDULES", "TASKS",
           "list_recipes", "parse_settings", "read_recipe_file", "recipe", "recipe_of_checkpoint", "recipe_toml",
           "resolve_recipe"]

TASKS = ("binary", "3class")
OPTIMIZERS = ("adamw", "rmsprop")
SCHEDULES = ("cosine", "constant")
SAMPLERS = ("shuffle", "class-balanced", "source-balanced")
#: The recipe `covidxray train` uses when none is named: the bundled model's.
DEFAULT_RECIPE = "default"
#: Recipe fields that are the network's input, in the order Preprocessing lists them.
PREPROCESSING_FIELDS = ("size", "crop_border", "equalise", "lung_crop", "hide_outside_lungs")
#: The key of a recipe file that names the registered recipe it changes.
BASE_KEY = "base"


class RecipeError(CovidxrayError):
    """A recipe name, recipe file or recipe setting that cannot be used."""


@dataclass(frozen=True)
class Recipe:
    """What a training run trains and how: network, task, preprocessing, optimisation, regularisation.

    The run's own settings (split file, output folder, seed, workers, teacher checkpoint) are not
    part of it: they are covidxray.training.loop.TrainConfig's. Values are checked on construction.
    """

    name: str
    why: str = ""
    # what is trained
    architecture: str = "xray-cnn"      # a covidxray.models.registry name
    task: str = "binary"                # binary (covid vs not) | 3class (covid / pneumonia / normal)
    width: int | None = None            # xray-cnn's base channel count; None: the network's own (24)
    last_stride: int = 2                # xray-cnn's last stage: 2, or 1 (dilated) for a final map of side/16
    # preprocessing: travels in the checkpoint (channels and intensity are the network's own)
    size: int = 160                     # input side in pixels
    crop_border: float = 0.0            # fraction cut from each side
    equalise: bool = True               # histogram equalisation
    lung_crop: bool = False             # cut each image to the bundled segmenter's lung box plus 5%
    hide_outside_lungs: bool = False    # fill outside the lung mask with the lungs' median
    # optimisation
    epochs: int = 10                    # most epochs (the cosine schedule is laid out over them)
    patience: int = 5                   # stop after this many epochs without a better within-hospital val AUROC
    batch_size: int = 32
    lr: float = 2e-3
    optimizer: str = "adamw"            # adamw | rmsprop (Keras defaults)
    weight_decay: float = 1e-4
    schedule: str = "cosine"            # cosine (down to 1%) | constant
    class_weights: bool = True          # weight the loss by inverse class frequency
    sampler: str = "shuffle"            # shuffle | class-balanced | source-balanced
    augmentation: str = "radiograph"    # a covidxray.imaging.augment preset
    # against the shortcut, and distillation (the teacher checkpoint is a run setting: --teacher)
    source_adversary: float = 0.0       # weight of a gradient-reversed head that predicts the source (0: off)
    distill_weight: float = 0.5         # share of the loss given to matching the teacher, in (0, 1]
    distill_temperature: float = 2.0    # softening temperature of the distillation term
    # where the evidence lies
    lung_evidence: float = 0.0          # weight of the penalty on class-map mass outside the lung masks (0: off)

    def __post_init__(self) -> None:
        for key, kind in _FIELD_KINDS.items():
            _check_type(key, getattr(self, key), kind, f"recipe '{self.name}'")
        for key, choices in (("task", TASKS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("sampler", SAMPLERS)):
            if getattr(self, key) not in choices:
                self._refuse(f"{key} '{getattr(self, key)}' is unknown; choose one of: {', '.join(choices)}")
        for key in ("epochs", "patience", "batch_size") + (("width",) if self.width is not None else ()):
            if getattr(self, key) < 1:
                self._refuse(f"{key} must be at least 1, not {getattr(self, key)}")
        if not 16 <= self.size <= 2048:
            self._refuse(f"size {self.size} is outside 16..2048 pixels")
        if not 0.0 <= self.crop_border < 0.4:
            self._refuse(f"crop_border {self.crop_border} must be a fraction in [0, 0.4)")
        if self.lr <= 0 or self.weight_decay < 0:
            self._refuse(f"lr must be positive and weight_decay not negative, not {self.lr} and {self.weight_decay}")
        if self.last_stride not in (1, 2):  # only xray-cnn takes it: another network refuses it by name when built
            self._refuse(f"last_stride must be 1 (a dilated last stage) or 2, not {self.last_stride}")
        if self.lung_evidence < 0:
            self._refuse(f"lung_evidence must be 0 (off) or a positive weight, not {self.lung_evidence}")
        if self.source_adversary < 0:
            self._refuse(f"source_adversary must be 0 (off) or a positive weight, not {self.source_adversary}")
        if not 0.0 < self.distill_weight <= 1.0 or self.distill_temperature <= 0:
            self._refuse(f"distill_weight must be in (0, 1] and distill_temperature positive, "
                         f"not {self.distill_weight} and {self.distill_temperature}")

    def _refuse(self, problem: str) -> None:
        raise RecipeError(f"recipe '{self.name}': {problem}")

    @property
    def reads_lung_masks(self) -> bool:
        """Whether training needs each image's lung mask in the model's frame (the lung-evidence penalty)."""
        return self.lung_evidence > 0

    def to_dict(self) -> dict[str, Any]:
        """Every field by name: what a checkpoint's record stores under 'recipe'."""
        return dataclasses.asdict(self)

    def differences(self) -> dict[str, Any]:
        """The fields that differ from the registered recipe of this name (empty when it is reproduced exactly)."""
        registered = RECIPES.get(self.name)
        if registered is None:
            return {}
        return {key: getattr(self, key) for key in _FIELD_KINDS
                if key not in ("name", "why") and getattr(self, key) != getattr(registered, key)}

    def updated(self, changes: Mapping[str, Any], source: str = "", parse: bool = False) -> Recipe:
        """This recipe with some fields changed, each checked by name and type.

        Args:
            changes: field name (or the same with hyphens) -> new value.
            source: where the changes come from, named in any error (a file, "--set").
            parse: the values are text to parse (from a command line), not typed values (from TOML or Python).

        Returns:
            A new Recipe; RecipeError naming the key for an unknown key or a value of the wrong type.
        """
        values = {}
        for raw_key, value in changes.items():
            key = _known_key(raw_key, source)
            value = _parse(key, value, source) if parse else value
            _check_type(key, value, _FIELD_KINDS[key], source or f"recipe '{self.name}'")
            values[key] = float(value) if _plain_kind(_FIELD_KINDS[key])[0] is float else value
        return dataclasses.replace(self, **values) if values else self

    def preprocessing(self):
        """The network's input: the architecture's channels and intensity with this recipe's size, crops and fills.

        Returns:
            A covidxray.imaging.preprocess.Preprocessing (imported here: it loads numpy and PIL).
        """
        from covidxray.models.registry import model_spec

        return dataclasses.replace(model_spec(self.architecture).preprocessing,
                                   **{key: getattr(self, key) for key in PREPROCESSING_FIELDS})

    def summary(self) -> str:
        """One line: network, task, input, augmentation, schedule."""
        steps = [f"{self.size} px"]
        steps += ["lung crop"] if self.lung_crop else [f"border crop {self.crop_border:g}"] if self.crop_border else []
        steps += ["equalised"] if self.equalise else []
        steps += ["outside lungs hidden"] if self.hide_outside_lungs else []
        width = f" width {self.width}" if self.width is not None else ""
        width += " dilated last stage" if self.last_stride == 1 else ""
        adversary = f", source adversary {self.source_adversary:g}" if self.source_adversary else ""
        adversary += f", lung-evidence penalty {self.lung_evidence:g}" if self.lung_evidence else ""
        return (f"{self.architecture}{width} {self.task}, {', '.join(steps)}, {self.augmentation} augmentation{adversary}, "
                f"{self.sampler} sampling, {self.optimizer} lr {self.lr:g} batch {self.batch_size}, {self.schedule}, "
                f"{self.epochs} epochs (patience {self.patience})")


#: Field name -> its type, resolved once (int, float, bool, str, or int | None).
_FIELD_KINDS: dict[str, Any] = {field.name: hints[field.name]
                                for hints in [typing.get_type_hints(Recipe)] for field in dataclasses.fields(Recipe)}
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _known_key(raw_key: str, source: str) -> str:
    key = str(raw_key).strip().replace("-", "_")
    if key == "name":
        raise RecipeError(f"{source or 'recipe'}: 'name' is the registered recipe's; write {BASE_KEY} = \"NAME\" "
                          "(or --recipe NAME) to start from another recipe")
    if key not in _FIELD_KINDS:
        known = [name for name in _FIELD_KINDS if name != "name"]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RecipeError(f"{source or 'recipe'}: unknown recipe key '{raw_key}'{hint}; known keys: {', '.join(known)}")
    return key


def _plain_kind(kind: Any) -> tuple[type, bool]:
    """(the type, whether None is allowed) of a field type such as int or int | None."""
    arguments = typing.get_args(kind)
    if arguments:
        return next(argument for argument in arguments if argument is not type(None)), type(None) in arguments
    return kind, False


def _check_type(key: str, value: Any, kind: Any, source: str) -> None:
    """Refuse a value of the wrong type for its field, naming the field and where the value came from.

    Args:
        key: the field.
        value: its value.
        kind: the field's type (int, float (an int is accepted), bool, str, or X | None).
        source: where the value came from (a file, --set, the recipe).
    """
    plain, optional = _plain_kind(kind)
    if value is None and optional:
        return
    accepted = (isinstance(value, plain) and not (plain is int and isinstance(value, bool))) or (
        plain is float and isinstance(value, int) and not isinstance(value, bool))
    if not accepted:
        raise RecipeError(f"{source}: {key} must be {_KIND_WORDS[plain]}"
                          f"{' (or none)' if optional else ''}, not {value!r}")


def _parse(key: str, text: Any, source: str) -> Any:
    """A command line's text as the field's type: 'true' -> True, '8' -> 8, 'none' -> None (where allowed).

    Args:
        key: the field.
        text: the text after KEY= (any other value is returned as it is).
        source: named in the error.

    Returns:
        The parsed value; RecipeError when the text is not of the field's type.
    """
    if not isinstance(text, str):
        return text
    plain, optional = _plain_kind(_FIELD_KINDS[key])
    words = text.strip()
    if optional and words.lower() in ("none", "default", ""):
        return None
    try:
        if plain is bool:
            return {"true": True, "yes": True, "on": True, "1": True,
                    "false": False, "no": False, "off": False, "0": False}[words.lower()]
        if plain is int:
            return int(words)
        if plain is float:
            return float(words)
    except (KeyError, ValueError):
        raise RecipeError(f"{source}: {key} must be {_KIND_WORDS[plain]}, not '{text}'") from None
    return words


def _registered() -> dict[str, Recipe]:
    # the plain recipe of each network, named after it, then the bundled model's, built on xray-cnn's
    xray_cnn = Recipe(
        "xray-cnn", "xray-cnn on whole images with mild augmentation: the plain recipe variants are measured against",
        architecture="xray-cnn", size=160, crop_border=0.0, equalise=True, epochs=10, patience=5,
        batch_size=32, lr=2e-3, augmentation="radiograph")
    recipes = [
        dataclasses.replace(
            xray_cnn, name=DEFAULT_RECIPE,
            why="the bundled model: lung crop, source-erasing augmentation, a 10 x 10 final map and its class "
                "evidence held to the lungs, chosen on the within-hospital yardstick",
            lung_crop=True, augmentation="source-erasing", epochs=12, last_stride=1, lung_evidence=0.5),
        Recipe(
            "seed-cnn", "the seed study's network and recipe, unchanged: the baseline row of every comparison",
            architecture="seed-cnn", size=150, crop_border=0.0, equalise=False, epochs=4, patience=5, batch_size=6,
            lr=1e-3, optimizer="rmsprop", weight_decay=0.0, schedule="constant", class_weights=False, augmentation="seed"),
        xray_cnn,
        Recipe(
            "densenet121", "MONAI DenseNet-121 from scratch; needs a GPU (3-5 images/s on a 2-core CPU)",
            architecture="densenet121", size=224, crop_border=0.04, equalise=True, batch_size=16, lr=1e-3),
        Recipe(
            "efficientnet-b0", "MONAI EfficientNet-B0 from scratch; collapsed after one epoch on the GPU comparison",
            architecture="efficientnet-b0", size=224, crop_border=0.04, equalise=True, batch_size=16, lr=1e-3),
    ]
    return {entry.name: entry for entry in recipes}


#: Registered recipes by name; `covidxray train --recipe NAME`.
RECIPES: dict[str, Recipe] = _registered()


def list_recipes() -> list[str]:
    """Registered recipe names, the default first."""
    return sorted(RECIPES, key=lambda name: (name != DEFAULT_RECIPE, name))


def recipe(name: str) -> Recipe:
    """The registered recipe called name; RecipeError listing the known names otherwise."""
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe '{name}'; choose one of: {', '.join(list_recipes())}")
    return RECIPES[name]


def read_recipe_file(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """(the registered recipe the file starts from, or None; the fields it changes) of a TOML recipe file.

    The file holds recipe fields at its top level (`epochs = 20`) and optionally `base = "NAME"`;
    unknown keys are refused by name with the known ones.
    """
    import tomllib  # only when a recipe file is read: the CLI starts without it

    path = Path(path)
    try:
        content = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not a valid TOML recipe file ({exc})") from None
    base = content.pop(BASE_KEY, None)
    if base is not None and not isinstance(base, str):
        raise RecipeError(f"{path}: {BASE_KEY} must be a recipe name in quotes, not {base!r}")
    for key in content:
        _known_key(key, str(path))
    return base, content


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """KEY=VALUE texts (the train command's --set) as {key: text}, in order; a later key wins."""
    settings: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise RecipeError(f"--set '{pair}': write KEY=VALUE, e.g. --set patience=8")
        settings[key.strip()] = value.strip()
    return settings


def resolve_recipe(name: str | None = None, config: str | Path | None = None, settings: Sequence[str] = (),
                   **changes: Any) -> Recipe:
    """The recipe a training run uses: a registered one, changed by a file, then by --set, then by options.

    Args:
        name: registered recipe (--recipe); None: the file's `base`, else "default".
        config: TOML recipe file (--config) whose fields change the registered recipe.
        settings: KEY=VALUE texts (--set), applied after the file.
        changes: typed field values from explicit options (--epochs), applied last; None changes nothing.

    Returns:
        The resolved Recipe, keeping the registered name (`differences()` says what was changed).
    """
    base, file_changes = read_recipe_file(config) if config is not None else (None, {})
    resolved = recipe(name or base or DEFAULT_RECIPE).updated(file_changes, str(config))
    resolved = resolved.updated(parse_settings(settings), "--set", parse=True)
    return resolved.updated({key: value for key, value in changes.items() if value is not None}, "option")


def recipe_toml(chosen: Recipe) -> str:
    """The recipe as a recipe file that `--config` reads back to the same recipe."""
    lines = ["# covidxray recipe: covidxray train --config FILE --split SPLIT --out RUN",
             f"{BASE_KEY} = {json.dumps(chosen.name)}"]
    for key in _FIELD_KINDS:
        value = getattr(chosen, key)
        if key == "name":
            continue
        if value is None:
            lines.append(f"# {key}: unset (the network's own)")
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"


def recipe_of_checkpoint(content: Mapping[str, Any]) -> Recipe:
    """The recipe a checkpoint was trained with: the one it records, or one rebuilt from its separate settings.

    Checkpoints made before recipes had names record the preprocessing, the network and most training
    settings one by one; what they lack (patience, weight decay, class weights) is taken from the
    network's plain recipe, and the rebuilt recipe is named 'unnamed'.
    """
    record = content.get("record") or {}
    if isinstance(record.get("recipe"), Mapping):
        stored = dict(record["recipe"])
        known = {key: value for key, value in stored.items() if key in _FIELD_KINDS}
        return Recipe(**known)
    architecture = content["architecture"]
    base = RECIPES.get(architecture, Recipe("unnamed", architecture=architecture))
    preprocessing = content.get("preprocessing") or {}
    teacher = record.get("distillation") or {}
    found = {
        "task": content.get("task"), "width": (content.get("architecture_kwargs") or {}).get("width"),
        **{key: preprocessing.get(key) for key in PREPROCESSING_FIELDS},
        **{key: record.get(key)
           for key in ("epochs", "batch_size", "lr", "optimizer", "schedule", "sampler", "source_adversary")},
        "augmentation": record.get("augmentation_preset") or _preset_named_by(record.get("augmentation")),
        "distill_weight": teacher.get("weight"), "distill_temperature": teacher.get("temperature"),
    }
    return dataclasses.replace(base, name="unnamed", why="rebuilt from a checkpoint's training record",
                               **{key: value for key, value in found.items() if value is not None})


def _preset_named_by(settings: Mapping[str, Any] | None) -> str | None:
    """The augmentation preset whose parameters a record holds (older records hold only those)."""
    if not settings:
        return None
    from covidxray.imaging.augment import PRESETS

    return next((name for name, preset in PRESETS.items() if dataclasses.asdict(preset) == dict(settings)), None)

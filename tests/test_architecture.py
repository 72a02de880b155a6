"""The shape of the house: two flows, one concern per package, no import circle, one way to add a command."""

from __future__ import annotations

import ast
from pathlib import Path

import typer

PACKAGE = Path(__file__).resolve().parents[1] / "covidxray"
#: The only modules allowed outside a package: small ones every package shares.
SHARED_MODULES = {"__init__", "__main__", "errors", "console", "hashing", "parallel", "lazy"}
#: Reading an X-ray, evaluating and serving never reach back into model fitting.
NEVER_IMPORT_TRAINING = ("inference", "evaluation", "serve", "gate", "lungs", "explain", "imaging", "models", "data", "pacs")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """covidxray module -> the covidxray modules it imports, at the top or inside functions."""
    found: dict[str, set[str]] = {}
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("covidxray"):
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names
                               if f"{node.module}.{alias.name}" in modules)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name.startswith("covidxray"))
        name = module_name(path)
        found[name] = {t for t in targets if t in modules and t not in ("covidxray", name)}
    return found


def test_no_import_circle():
    graph = imports()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                circles.append(trail[trail.index(target):] + [target] if target in trail else [node, target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_reading_evaluating_and_serving_never_import_training():
    offenders = sorted(f"{module} -> {target}" for module, targets in imports().items() for target in targets
                       if module.split(".")[1:2] and module.split(".")[1] in NEVER_IMPORT_TRAINING
                       and target.startswith("covidxray.training"))
    assert not offenders, offenders


def test_only_the_small_shared_modules_live_outside_a_package():
    loose = {path.stem for path in PACKAGE.glob("*.py")} - SHARED_MODULES
    assert not loose, f"move into a package: {sorted(loose)}"


def test_every_command_module_is_mounted_the_same_way():
    from importlib import import_module

    from covidxray.cli import COMMAND_MODULES

    found = {module_name(path) for path in PACKAGE.rglob("command.py")}
    assert found == set(COMMAND_MODULES)
    for name in COMMAND_MODULES:  # a module-level Typer app, mounted by covidxray.cli; no other hook
        module = import_module(name)
        assert isinstance(getattr(module, "app", None), typer.Typer) and not hasattr(module, "register"), name


def test_the_api_is_typed():
    assert (PACKAGE / "py.typed").is_file()

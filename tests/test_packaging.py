"""pyproject.toml as users install it: every import declared, floors the code needs, extras, package data, licence."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata as metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "covidxray"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: The lowest version of each dependency that provides what covidxray uses of it.
KNOWN_MINIMUMS = {
    "torch": "2.5",             # torch.onnx.export(..., dynamo=False)
    "scikit-learn": "1.6",      # GroupKFold(shuffle=True)
    "python-multipart": "0.0.13",  # the python_multipart module name
    "pydicom": "3.0",           # pydicom.pixels
    "numpy": "1.26",
    "pandas": "2.1",
}
#: Import names whose distribution is named otherwise, when the distribution is not installed here.
IMPORT_NAMES = {"PIL": "pillow", "sklearn": "scikit-learn", "python_multipart": "python-multipart"}
#: Modules that only one extra's commands import, and that extra.
EXTRA_OF_MODULE = {"covidxray/serve/": "serve", "covidxray/pacs/": "pacs", "covidxray/inference/export.py": "onnx",
                   "covidxray/inference/parquet_rows.py": "parquet", "covidxray/inference/distributed.py": "cluster"}


def requirements(group: str | None = None) -> dict[str, Requirement]:
    texts = PROJECT["project"]["dependencies"] if group is None else PROJECT["project"]["optional-dependencies"][group]
    found = {}
    for text in texts:
        requirement = Requirement(text)
        if requirement.name != "covidxray":
            found[requirement.name.lower()] = requirement
    return found


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party module -> the covidxray files importing it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "covidxray" and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def distribution_of(module: str) -> str:
    installed = metadata.packages_distributions().get(module)
    return (installed[0] if installed else IMPORT_NAMES.get(module, module)).lower()


def test_every_imported_module_is_declared_where_its_users_need_it():
    core = requirements()
    extras = {name: requirements(name) for name in PROJECT["project"]["optional-dependencies"]}
    problems = []
    for module, files in sorted(imported_modules().items()):
        distribution = distribution_of(module)
        wanted = {extra for prefix, extra in EXTRA_OF_MODULE.items() for f in files if f.startswith(prefix)}
        outside_extras = [f for f in files if not any(f.startswith(prefix) for prefix in EXTRA_OF_MODULE)]
        if outside_extras and distribution not in core:
            problems.append(f"{module} ({distribution}) imported by {sorted(outside_extras)} but not in [project].dependencies")
        for extra in wanted:
            if distribution not in core and distribution not in extras[extra]:
                problems.append(f"{module} ({distribution}) imported by the {extra} code but not in the {extra} extra")
    assert not problems, problems


def test_floors_meet_what_the_code_uses_and_torch_is_a_range():
    declared = {**requirements("serve"), **requirements("onnx"), **requirements()}
    for name, minimum in KNOWN_MINIMUMS.items():
        specifier = declared[name].specifier
        floors = [Version(s.version) for s in specifier if s.operator in (">=", "==", "~=")]
        assert floors and min(floors) >= Version(minimum), f"{name}: declared {specifier}, needs >= {minimum}"
        assert not any(s.operator == "==" for s in specifier), f"{name} is pinned exactly ({specifier}); declare a range"
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text(), "the Makefile pins the torch the tests run on"


def test_gpl_decoder_and_web_stack_are_extras_and_dev_has_them():
    core = requirements()
    assert "pylibjpeg-libjpeg" not in core, "GPL-3.0 decoder must not be a hard dependency of an Apache-2.0 tool"
    assert not {"fastapi", "uvicorn", "python-multipart", "starlette", "anyio"} & set(core)
    dev = PROJECT["project"]["optional-dependencies"]["dev"]
    wanted = {"serve", "onnx", "dicom-jpeg-lossless"}
    assert any(Requirement(t).name == "covidxray" and wanted <= Requirement(t).extras for t in dev), dev


def test_licence_is_an_spdx_string_with_a_setuptools_that_reads_it():
    assert PROJECT["project"]["license"] == "Apache-2.0"
    build = [Requirement(t) for t in PROJECT["build-system"]["requires"]]
    setuptools = next(r for r in build if r.name == "setuptools")
    assert min(Version(s.version) for s in setuptools.specifier) >= Version("77")


def test_package_data_covers_every_file_the_code_ships():
    patterns = PROJECT["tool"]["setuptools"]["package-data"]["covidxray"]
    shipped = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    missing = [name for name in shipped if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert "evaluation/published.csv" in shipped and not missing, missing


def test_serve_without_its_extra_is_one_line_naming_the_extra(monkeypatch, capsys):
    from covidxray.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve"]) == 2
    error = capsys.readouterr().err.strip()
    assert "covidxray[serve]" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("command", [["predict", "--help"], ["data", "manifest", "--help"]])
def test_predict_and_data_commands_do_not_import_the_web_stack(command):
    import subprocess

    code = "import sys; from covidxray.cli import main; main(%r); print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code % (command,)], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().endswith("[]"), result.stdout[-300:] + result.stderr[-300:]

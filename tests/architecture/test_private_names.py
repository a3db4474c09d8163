"""Only `mlplab.private_api` touches private names of Hydra, OmegaConf, Optuna and Hydra's
plugins, read from the source with `ast` (nothing is imported).

A private name is one with a single leading underscore. Found: imports of a private module
or name of those libraries (`hydra._internal...`, `..._core import x`); `X._name` where X
was imported from them; and `obj._name` or `getattr(obj, "_name")` on any other object
but `self`/`cls`, unless mlplab itself defines `_name` (its own helpers and attributes).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LIBRARIES = ("hydra", "omegaconf", "optuna", "hydra_plugins")
ALLOWED = "mlplab/private_api.py"
ATTRIBUTE_CALLS = ("getattr", "setattr", "hasattr", "delattr")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def sources() -> list[Path]:
    return sorted((SRC / "mlplab").rglob("*.py")) + sorted(
        (SRC / "hydra_plugins" / "mlplab_optuna_sweeper").rglob("*.py"))


def defined_private_names(paths) -> set[str]:
    """Private names mlplab defines: functions, classes, assigned names and attributes."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if is_private(name)}


def _library(module: str) -> bool:
    return module.split(".")[0] in LIBRARIES and module.split(".")[:2] != [
        "hydra_plugins", "mlplab_optuna_sweeper"]


def offences(path: Path, ours: set[str]) -> list[str]:
    """`line: what` for every touch of a library's private name in one file."""
    tree = ast.parse(path.read_text(), str(path))
    imported: set[str] = set()  # local names bound to the libraries' modules and objects
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name):
                    imported.add((alias.asname or alias.name).split(".")[0])
                    if any(is_private(part) for part in alias.name.split(".")):
                        found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and not node.level and _library(node.module):
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                parts = [*node.module.split("."), alias.name]
                if any(is_private(part) for part in parts):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner in imported or (owner not in ("self", "cls") and node.attr not in ours):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ATTRIBUTE_CALLS and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and is_private(node.args[1].value) and node.args[1].value not in ours):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_sees_each_kind_of_touch(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import optuna.storages._cached_storage\n"
        "from hydra._internal.utils import get_args_parser\n"
        "from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg\n"
        "from hydra.core.override_parser.types import Override\n"
        "from hydra_plugins.mlplab_optuna_sweeper.mlplab_optuna_sweeper import Shell\n"
        "def f(trial, node, thing):\n"
        "    Override._own_helper(1)\n"
        "    trial._trial_id\n"
        "    getattr(node, '_get_node')\n"
        "    self._state, thing._own_helper, getattr(thing, '_own_helper'), Shell\n"
        "def _own_helper():\n"
        "    pass\n")
    found = offences(source, defined_private_names([source]))
    assert sorted(int(line.split(":")[0]) for line in found) == [1, 2, 3, 7, 8, 9]


def test_only_the_private_api_module_touches_private_names_of_the_libraries():
    paths = sources()
    ours = defined_private_names(paths)
    found = {str(p.relative_to(SRC)): offences(p, ours) for p in paths}
    assert found.pop(ALLOWED), "the checker no longer sees the private API module's uses"
    assert not {path: lines for path, lines in found.items() if lines}

"""The package's layers, read from the source with `ast` (nothing is imported): no import
cycle between modules of `src/mlplab`, and the engine (`nn`, `data`, `training`) knows
nothing of Hydra, OmegaConf, MLflow or the layers above it.

Every `import` counts, at module level or inside a function: an import moved into a
function still ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "mlplab"

# What each engine package may import of mlplab (besides itself), and libraries it must not.
# `constraints` holds the rules of parameter values that the engine and the config share.
ENGINE_MAY_IMPORT = {
    "nn": {"errors", "constraints"},
    "data": {"errors", "constraints"},
    "training": {"errors", "constraints", "signals", "nn", "data"},
}
# Leaf modules the engine imports: they may import nothing of mlplab but these.
LEAVES = {"mlplab.constraints": {"mlplab.errors"}, "mlplab.errors": set()}
ENGINE_FORBIDDEN_LIBRARIES = ("hydra", "omegaconf", "mlflow", "optuna", "hydra_plugins")
# Layers that tracking may not import: it is called by them and is given what it needs.
TRACKING_MAY_NOT_IMPORT = {"cli", "config", "job", "multirun", "reproduction", "search"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def imported_names(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module `path` imports: `from a import b` is `a.b` when that is a module of
    ours, else `a`; relative imports are resolved against the module's package."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: {m for m in imported_names(path, name, known) if m in known and m != name}
            for name, path in modules().items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (depth-first, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_checker_sees_a_cycle_and_a_relative_import(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from .sub import thing\n    import mlplab.x\n")
    assert imported_names(source, "mlplab.pkg.m", {"mlplab.pkg.sub"}) == {
        "mlplab.pkg.sub", "mlplab.x"}


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert {"mlplab.cli.train", "mlplab.job.run", "mlplab.nn.model"} <= set(graph)
    assert "mlplab.job.build" in graph["mlplab.job.run"]  # edges are read, not assumed


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("engine", sorted(ENGINE_MAY_IMPORT))
def test_the_engine_imports_nothing_above_it(engine):
    known = set(modules())
    offences = []
    for name, path in modules().items():
        if layer(name) != engine:
            continue
        for target in imported_names(path, name, known):
            top = target.split(".")[0]
            if top in ENGINE_FORBIDDEN_LIBRARIES:
                offences.append(f"{name} imports {target}")
            elif top == PACKAGE and layer(target) not in {engine, *ENGINE_MAY_IMPORT[engine]}:
                offences.append(f"{name} imports {target}")
    assert not offences, "; ".join(offences)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_the_leaves_the_engine_imports_import_almost_nothing(leaf):
    path = modules()[leaf]
    imported = imported_names(path, leaf, set(modules()))
    ours = {m for m in imported if m.split(".")[0] == PACKAGE}
    assert ours <= LEAVES[leaf], f"{leaf} imports {sorted(ours - LEAVES[leaf])}"
    assert not [m for m in imported if m.split(".")[0] in ENGINE_FORBIDDEN_LIBRARIES]


def test_tracking_does_not_reach_up_into_the_layers_that_call_it():
    known = set(modules())
    offences = [f"{name} imports {target}" for name, path in modules().items()
                if layer(name) == "tracking"
                for target in imported_names(path, name, known)
                if target.startswith(PACKAGE + ".") and layer(target) in TRACKING_MAY_NOT_IMPORT]
    assert not offences, "; ".join(offences)

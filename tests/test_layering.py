"""Imports follow the layers of the package, and no module imports itself back.

Every import of a module of the package counts, at module level or inside a function (those
run too); imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stability"

LAYERS = {
    "core": {
        "symbols", "errors", "_values", "algorithms", "charpoly", "regions", "noise",
        "fluctuations", "geometry", "acceleration", "ltv", "simulate", "noise_models", "spectra",
        "noisesum", "searches", "trajectories", "asymptotics", "rootconditions", "verdicts",
        "progress",
        "autosgm", "schedules", "ltv_verdicts", "replay", "frozen", "configs",
        "curves", "methods",
    },
    "adapters": {"optimizers"},
    "checkers": {
        "checkers", "_codegen", "_kernels", "_engine", "triplet_checkers", "_compiled",
        "noisebounds",
    },
    "faces": {
        "report", "cli", "latex", "plots", "demo", "sweep", "__main__", "__init__", "maxlr",
        "inputs", "curvature", "torch_schedules", "monitor",
    },
}  # fmt: skip
MAY_IMPORT = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "checkers": {"core", "adapters", "checkers"},
    "faces": {"core", "adapters", "checkers", "faces"},
}
LAYER_OF = {m: layer for layer, mods in LAYERS.items() for m in mods}
# the core answers from its own arithmetic: no plotting library, no optional framework
FORBIDDEN_OUTSIDE_FACES = {"matplotlib", "torch", "scipy"}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level names) imported by ``path``."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    ours.add(node.module.split(".")[0])
                else:
                    ours.update(a.name for a in node.names)
            elif node.module:
                top = node.module.split(".")[0]
                if top == "stability":
                    ours.add(node.module.split(".")[1] if "." in node.module else "__init__")
                else:
                    theirs.add(top)
        elif isinstance(node, ast.Import):
            theirs.update(a.name.split(".")[0] for a in node.names)
    return ours, theirs


GRAPH = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}


def test_every_module_has_a_layer():
    assert set(GRAPH) == set(LAYER_OF), set(GRAPH) ^ set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_respect_the_layers(module):
    ours, theirs = GRAPH[module]
    layer = LAYER_OF[module]
    wrong = {m for m in ours if m in LAYER_OF and LAYER_OF[m] not in MAY_IMPORT[layer]}
    assert not wrong, f"{module} ({layer}) imports {sorted(wrong)}"
    if layer != "faces":
        assert not theirs & FORBIDDEN_OUTSIDE_FACES, (module, theirs & FORBIDDEN_OUTSIDE_FACES)


def test_the_compiled_backend_is_the_only_user_of_numba():
    # numba is optional: one module imports it (guarded), everything else goes through it
    users = sorted(m for m, (_, theirs) in GRAPH.items() if "numba" in theirs)
    assert users == ["_compiled"], users


def test_no_import_cycles():
    edges = {m: {d for d in GRAPH[m][0] if d in GRAPH and d != "__init__"} for m in GRAPH}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycle = [*path[path.index(d) :], d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)

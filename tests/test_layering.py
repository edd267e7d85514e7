"""The package's layout is its documentation: the module map in ``stability.__doc__``.

The layers come from the map and the folders, not from a list kept here: each package is one
layer and each run of consecutive top-level modules is one, in the order the map lists them.
A module imports from its own layer and the layers above it only, internal code imports from
member modules (never from another area's ``__init__``), no module imports itself back, and
every module on disk is in the map (and nothing else is).

Every import of a module of the package counts, at module level or inside a function (those
run too); imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import stability

PACKAGE = Path(stability.__file__).resolve().parent
# the optional frameworks, each allowed in one place only (the core answers with its own
# arithmetic): torch and scipy in the training area, matplotlib in the plots, numba in the
# compiled backend
THIRD_PARTY_HOME = {
    "torch": ("training/",),
    "scipy": ("training/",),
    "matplotlib": ("plots.py",),
    "numba": ("checkers/_backend.py",),
}


def parse_map(doc: str) -> list[list[str]]:
    """The layers of the map: lists of module paths relative to the package (``noise/sums``),
    in order. Top-level entries are indented 8 spaces, members of a package 12."""
    layers: list[list[str]] = []
    package = None
    previous_top_file = False
    for line in doc.splitlines():
        m = re.match(r"^( {8}| {12})(\S+?)(/|\.py)(\s|$)", line)
        if not m:
            continue
        indent, name, kind = len(m.group(1)), m.group(2), m.group(3)
        if indent == 8 and kind == "/":
            package = name
            layers.append([])
            previous_top_file = False
        elif indent == 8:
            package = None
            if not previous_top_file:
                layers.append([])
            layers[-1].append(name)
            previous_top_file = True
        else:
            assert package is not None, f"member {name} listed outside a package"
            layers[-1].append(f"{package}/{name}")
    return layers


def modules_on_disk(root: Path) -> set[str]:
    return {str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.py")}


def map_problems(layers: list[list[str]], root: Path) -> list[str]:
    """What is wrong between the map and the files under ``root``."""
    listed = [m for layer in layers for m in layer]
    problems = [f"listed twice: {m}" for m in sorted({m for m in listed if listed.count(m) > 1})]
    on_disk = modules_on_disk(root)
    problems += [f"missing from the map: {m}" for m in sorted(on_disk - set(listed))]
    problems += [f"in the map but not on disk: {m}" for m in sorted(set(listed) - on_disk)]
    return problems


LAYERS = parse_map(stability.__doc__)
LAYER_OF = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def _resolve(module: str, level: int, target: str | None) -> str:
    """The package-relative path of a relative import's target (``noise/sums``)."""
    parts = module.split("/")[:-1]  # the package the importing module lives in
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return "/".join([*parts, *(target.split(".") if target else [])])


def _as_module(path: str) -> str | None:
    """A resolved import as a module on disk: ``x`` (module), ``x/__init__`` (package)."""
    if (PACKAGE / f"{path}.py").is_file():
        return path
    if (PACKAGE / path / "__init__.py").is_file():
        return f"{path}/__init__" if path else "__init__"
    return None


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level names) that ``module`` imports."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = _resolve(module, node.level, node.module)
            target = _as_module(base)
            for alias in node.names:  # `from . import x` may name a module
                sub = _as_module(f"{base}/{alias.name}" if base else alias.name)
                if sub is not None:
                    ours.add(sub)
                elif target is not None:
                    ours.add(target)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top == "stability":
                ours.add(_as_module(node.module.replace(".", "/")[len("stability/") :]))
            else:
                theirs.add(top)
        elif isinstance(node, ast.Import):
            theirs.update(a.name.split(".")[0] for a in node.names)
    return ours - {None}, theirs


GRAPH = {m: imports_of(m) for m in sorted(modules_on_disk(PACKAGE))}


def test_the_map_lists_every_module_once():
    assert not map_problems(LAYERS, PACKAGE)


def test_a_module_left_out_of_the_map_fails(tmp_path):
    """The check above, shown failing once: a tree with one module the map leaves out."""
    root = tmp_path / "pkg"
    (root / "area").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "area/__init__.py", "area/member.py", "area/new.py"):
        (root / name).write_text("")
    doc = """
        errors.py           the errors
        area/               an area
            __init__.py     its API
            member.py       a member
        __init__.py         the API
    """
    assert map_problems(parse_map(doc), root) == ["missing from the map: area/new"]


def test_the_layers_come_from_the_folders():
    for layer in LAYERS:
        folders = {m.rsplit("/", 1)[0] if "/" in m else "" for m in layer}
        assert len(folders) == 1, layer  # a layer is one package, or top-level modules


# a result's ``plot()`` method may import the figures lazily (inside the method) from a later
# layer: the figure is presentation, drawn only when asked for, and matplotlib stays in plots.py
PRESENTATION = {"training/lr_finder": ("plots",)}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_respect_the_layers(module):
    ours, _ = GRAPH[module]
    later = sorted(
        m for m in ours if LAYER_OF[m] > LAYER_OF[module] and m not in PRESENTATION.get(module, ())
    )
    assert not later, f"{module} imports {later}, listed below it in the map"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_internal_code_imports_member_modules(module):
    """Only the package's own ``__init__`` imports an area's ``__init__``; a package's
    ``__main__`` may import its own."""
    ours, _ = GRAPH[module]
    area = module.rsplit("/", 1)[0] if "/" in module else ""
    inits = sorted(m for m in ours if m.endswith("__init__") and m != "__init__")
    if module == "__init__":
        return
    assert all(m == f"{area}/__init__" for m in inits), f"{module} imports {inits}"


@pytest.mark.parametrize("name", sorted(THIRD_PARTY_HOME))
def test_optional_frameworks_stay_in_their_home(name):
    users = sorted(m for m, (_, theirs) in GRAPH.items() if name in theirs)
    homes = THIRD_PARTY_HOME[name]
    outside = [m for m in users if not any(f"{m}.py".startswith(h) for h in homes)]
    assert not outside, f"{name} imported outside {homes}: {outside}"


def test_no_import_cycles():
    edges = {m: {d for d in GRAPH[m][0] if d in GRAPH and d != m} for m in GRAPH}
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


def test_public_modules_mark_their_helpers_private():
    """In a public module every top-level name is in ``__all__`` or starts with ``_``."""
    bad = {}
    for module in GRAPH:
        if any(part.startswith("_") for part in module.split("/")):
            continue  # private modules, __init__ and __main__
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        names, public = [], None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id == "__all__":
                        public = {e.value for e in node.value.elts}
                    elif isinstance(t, ast.Name):
                        names.append(t.id)
        assert public is not None, f"{module} has no __all__"
        loose = [n for n in names if not n.startswith("_") and n not in public]
        if loose:
            bad[module] = loose
    assert not bad, bad


def test_the_core_does_not_load_matplotlib_or_torch():
    import subprocess
    import sys

    code = (
        "import sys, stability, stability.regions, stability.noise, stability.ltv, "
        "stability.checkers, stability.training, stability.cli; "
        "print(sorted(m for m in ('matplotlib', 'torch', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

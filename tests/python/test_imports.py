"""The package's import graph: no cycles, and no module imports one in a layer above its own.

The graph is read from the source with :mod:`ast` (nothing is imported), including the imports inside
functions (the package defers heavy ones there) and ``from pkg import name`` where ``name`` is one of
the package's lazy exports (:func:`srnomogram._lazy.lazy_exports`), which resolves to the module that
defines it. Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those package
``__init__`` files only import leaves and declare lazy exports, so they are not counted as edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "srnomogram"
ROOT = Path(__file__).resolve().parents[2] / "python" / PACKAGE

#: The layer order, lowest first: a module may import modules of its own layer or of a lower one,
#: never of a higher one. ``pkg.*`` is the package ``pkg`` and everything under it; other entries
#: are exact module names, and an exact name wins over a ``pkg.*`` entry (``srnomogram.deep.registry``
#: is a leaf of the base layer although it lives in ``deep/``). Each study module is its own layer, in
#: the order the study builds on them.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("srnomogram", "srnomogram._lazy", "srnomogram.errors", "srnomogram.utils", "srnomogram._threads",
              "srnomogram.deep.registry", "srnomogram.names")),
    ("data", ("srnomogram.data.*",)),
    ("tools", ("srnomogram._torch", "srnomogram._checkpoint", "srnomogram.metrics", "srnomogram.validation",
               "srnomogram.parallel", "srnomogram.board", "srnomogram.stats")),
    ("areas", ("srnomogram.sr.*", "srnomogram.radiomics.*", "srnomogram.deep.*")),
    ("study", ("srnomogram.study",)),
    ("study.subgroups", ("srnomogram.study.subgroups",)),
    ("study.config", ("srnomogram.study.config",)),
    ("study.folders", ("srnomogram.study.folders",)),
    ("study.cache", ("srnomogram.study.cache",)),
    ("study.main_result", ("srnomogram.study.main_result",)),
    ("study.freeze", ("srnomogram.study.freeze",)),
    ("study.stages", ("srnomogram.study.stages.*",)),
    ("study.repeats", ("srnomogram.study.repeats",)),
    ("study.applying", ("srnomogram.study.applying",)),
    ("study.iecv", ("srnomogram.study.iecv",)),
    ("study.figures", ("srnomogram.study.figures",)),
    ("study.tripod", ("srnomogram.study.tripod",)),
    ("study.report", ("srnomogram.study.report",)),
    ("study.pipeline", ("srnomogram.study.pipeline",)),
    ("study.external", ("srnomogram.study.external",)),
    ("study.demo", ("srnomogram.study.demo",)),
    ("study.update", ("srnomogram.study.update",)),
    ("cli", ("srnomogram.cli", "srnomogram.__main__", "srnomogram.data._cli", "srnomogram.sr._cli",
             "srnomogram.radiomics._cli", "srnomogram.deep._cli", "srnomogram.study._cli",
             "srnomogram.study._external_cli", "srnomogram.study._update_cli")),
]
#: Layers whose ``pkg.*`` groups stand side by side: they may not import each other.
SIDE_BY_SIDE = {"areas"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` of every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """A package ``__init__``'s lazy exports: ``{name: relative module}`` from ``lazy_exports(__name__, TABLE)``."""
    dicts = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict)
             for t in n.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports" and len(node.args) == 2:
            table = node.args[1]
            table = dicts.get(table.id) if isinstance(table, ast.Name) else table
            if isinstance(table, ast.Dict):
                return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(table.keys, table.values)}
    return {}


def _absolute(package: str, relative: str) -> str:
    level = len(relative) - len(relative.lstrip("."))
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    rest = relative.lstrip(".")
    return ".".join(base + ([rest] if rest else []))


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` within the package, from every ``import`` statement of its source."""
    mods = _modules()
    trees = {m: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for m, (p, _) in mods.items()}
    lazy = {m: {k: _absolute(m, v) for k, v in _lazy_table(trees[m]).items()} for m, (_, pkg) in mods.items() if pkg}

    def owner(name: str) -> str | None:  # the longest module prefix of a dotted name
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, tree in trees.items():
        package = mod if mods[mod][1] else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(package, "." * node.level + (node.module or "")) if node.level else node.module
                targets = []
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append(full if full in mods else lazy.get(base, {}).get(a.name, base))
            else:
                continue
            deps |= {t for t in map(owner, targets) if t and t.split(".")[0] == PACKAGE and t != mod}
        graph[mod] = deps
    return graph


def layer_of(module: str) -> tuple[int, str]:
    """``(rank, group)`` of a module: its layer's index in :data:`LAYERS` and the entry that matched."""
    for rank, (_, entries) in enumerate(LAYERS):
        if module in entries:
            return rank, module
    best = None
    for rank, (_, entries) in enumerate(LAYERS):
        for e in entries:
            pkg = e[:-2] if e.endswith(".*") else None
            if pkg and (module == pkg or module.startswith(pkg + ".")) and (best is None or len(pkg) > len(best[1])):
                best = (rank, pkg)
    if best is None:
        raise LookupError(f"{module} has no layer; add it to LAYERS in {Path(__file__).name}")
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        (rank, group) = layer_of(mod)
        for dep in sorted(deps):
            (drank, dgroup) = layer_of(dep)
            if drank > rank:
                bad.append(f"{mod} ({LAYERS[rank][0]}) imports {dep} ({LAYERS[drank][0]})")
            elif drank == rank and LAYERS[rank][0] in SIDE_BY_SIDE and dgroup != group:
                bad.append(f"{mod} imports {dep}: {group} and {dgroup} stand side by side in '{LAYERS[rank][0]}'")
    return bad


GRAPH = import_graph()


def test_the_graph_is_read_from_every_module_with_relative_lazy_and_function_level_imports():
    assert len(GRAPH) > 60 and all(layer_of(m) for m in GRAPH)
    # a relative import inside a function (stages/nomogram.py, run_nomogram: ``from ..freeze import save_nomogram_fits``)
    assert "srnomogram.study.freeze" in GRAPH["srnomogram.study.stages.nomogram"]
    # ``from ...sr import SuperResolver`` resolves through sr's lazy exports to sr/model.py
    assert "srnomogram.sr.model" in GRAPH["srnomogram.study.stages.sr"]
    # ``from ... import names`` is the module names.py, ``from .. import __version__`` the package itself
    assert {"srnomogram.names", "srnomogram"} <= GRAPH["srnomogram.sr.model"] | GRAPH["srnomogram.study.stages"]
    # a package's ``__init__`` importing its own modules: ``from .sr import run_sr`` is stages/sr.py
    assert {"srnomogram.study.stages.sr", "srnomogram.study.stages.nomogram"} <= GRAPH["srnomogram.study.stages"]


def test_the_checks_catch_a_cycle_and_an_upward_import():
    fake = {"srnomogram.names": {"srnomogram.deep.networks"}, "srnomogram.deep.networks": {"srnomogram.names"},
            "srnomogram.sr.apply": {"srnomogram.deep.model"}}
    assert cycles(fake) == [["srnomogram.deep.networks", "srnomogram.names"]]
    bad = upward_imports(fake)
    assert "srnomogram.names (base) imports srnomogram.deep.networks (areas)" in bad
    assert any(b.startswith("srnomogram.sr.apply imports srnomogram.deep.model") for b in bad)


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_imports_one_above_its_layer():
    bad = upward_imports(GRAPH)
    assert not bad, "upward imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["srnomogram.names", "srnomogram.deep.registry"])
def test_the_base_layer_imports_only_the_base_layer(module):
    assert {layer_of(d)[0] for d in GRAPH[module]} <= {0}


def test_importing_names_loads_only_the_base_layer_and_no_numerical_package():
    """Model ids and labels (names.py and the network registry below it) cost no torch, numpy or pandas
    import and load no module above the base layer (e.g. deep/networks.py, which builds the networks)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, srnomogram.names as n; n.labels(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('srnomogram', 'torch', 'numpy', 'pandas'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True,
                         env={"PYTHONPATH": str(ROOT.parent), "PATH": "/usr/bin:/bin"})
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if not m.startswith("srnomogram")], loaded
    # the package __init__ files run on the way (srnomogram, srnomogram.deep) declare lazy exports only
    assert {layer_of(m)[0] for m in loaded if m not in ("srnomogram.deep",)} == {0}, loaded
    assert "srnomogram.deep.networks" not in loaded

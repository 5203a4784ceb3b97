"""The layer order of mixedppl (REDESIGN.md), asserted on the import statements of every module.

    core → families → spec → graph → fit → {inference, diagnostics, bayes} → results → api

A module imports only from its own layer and the layers to its left; ``inference``,
``diagnostics`` and ``bayes`` sit side by side and do not import one another. ``datasets`` stands
apart: it imports only ``core`` and only ``mixedppl/__init__.py`` imports it. ``__init__.py`` and
``__main__.py`` may import anything. No internal import is written inside a function (optional
heavy libraries -- pymc, arviz, matplotlib, dask -- are external and not checked here).

Layer of today's modules (by module-name prefix; the longest prefix wins):

    core         mixedppl.core.*  (exceptions, control, compile, threads)
    families     mixedppl.families (families.py, or the families/ package), mixedppl.cumulative
    spec         mixedppl.spec.*
    graph        mixedppl.graph.*
    fit          mixedppl.fit.*
    inference    mixedppl.inference.*
    diagnostics  mixedppl.diagnostics.*, mixedppl.plotting (functions of a fit; matplotlib wrapper)
    bayes        mixedppl.bayes.*, mixedppl.priors (REDESIGN: bayes/priors.py)
    results      mixedppl.results.*
    api          mixedppl.api, mixedppl.glmm_api, mixedppl.clmm_api, mixedppl.anova (a front door
                 over fitted models, like lmer/glmer/clmm)
    datasets     mixedppl.datasets (apart: imports core only)
    init         mixedppl (__init__.py), mixedppl.__main__

The allow-lists below are today's violations, written out: ``test_*_known`` fails when a new
violation appears and when a listed one is fixed but left in the list (remove it then); the
``xfail(strict=True)`` tests state the target and start to XPASS -- failing -- when their list is
empty, at which point the marker goes. Entries are (file, imported module), once per import
statement, without line numbers so that edits elsewhere in a file do not break them; the failure
messages give file:line.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mixedppl"

RANK = {"core": 0, "families": 1, "spec": 2, "graph": 3, "fit": 4,
        "inference": 5, "diagnostics": 5, "bayes": 5, "results": 6, "api": 7}

PREFIX_LAYER = {
    "mixedppl.core": "core",
    "mixedppl.families": "families", "mixedppl.cumulative": "families",
    "mixedppl.spec": "spec",
    "mixedppl.graph": "graph",
    "mixedppl.fit": "fit",
    "mixedppl.inference": "inference",
    "mixedppl.diagnostics": "diagnostics", "mixedppl.plotting": "diagnostics",
    "mixedppl.bayes": "bayes", "mixedppl.priors": "bayes",
    "mixedppl.results": "results",
    "mixedppl.api": "api", "mixedppl.glmm_api": "api", "mixedppl.clmm_api": "api",
    "mixedppl.anova": "api", "mixedppl.coxme_api": "api",
    "mixedppl.datasets": "datasets",
    "mixedppl.__main__": "init", "mixedppl": "init",
}


#: Module-scope imports against the layer order today (file, imported module).
TOP_LEVEL_ALLOWED: list[tuple[str, str]] = [
    ("mixedppl/inference/lrt.py", "mixedppl.results.glmm"),
]

#: Internal imports written inside functions today (file, imported module), one per statement.
FUNCTION_LEVEL_ALLOWED: list[tuple[str, str]] = [
]


def layer_of(module: str) -> str:
    """The layer of a module name: the longest prefix in :data:`PREFIX_LAYER`."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        layer = PREFIX_LAYER.get(".".join(parts[:k]))
        if layer is not None:
            return layer
    raise KeyError(f"{module} has no layer: add it to PREFIX_LAYER in tests/test_layers.py")


def allowed(src: str, dst: str) -> bool:
    """Whether a module of layer ``src`` may import one of layer ``dst``."""
    if src == dst or src == "init":
        return True
    if src == "datasets":
        return dst == "core"
    if dst in ("datasets", "init"):
        return False
    return RANK[dst] < RANK[src]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()


def _targets(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """The mixedppl modules an import statement imports (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "mixedppl"]
    if node.level == 0:
        base = node.module or ""
    else:
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package.pop()
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    if base.split(".")[0] != "mixedppl":
        return []
    subs = [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
    return subs if len(subs) == len(node.names) else [base]


def _imports():
    """(file, line, imported module, inside a function) for every internal import statement."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                inner = in_function or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    found.extend((rel, child.lineno, target, in_function)
                                 for target in _targets(child, path))
                visit(child, inner)

        visit(tree, False)
    return found


IMPORTS = _imports()


def _layer_violations(in_function: bool) -> list[tuple[str, int, str]]:
    return [(f, line, target) for f, line, target, inside in IMPORTS
            if inside == in_function
            and not allowed(layer_of(_module_name(ROOT / f)), layer_of(target))]


def _report(rows) -> str:
    return "\n".join(f"{f}:{line}: imports {target}" for f, line, target in rows)


def _compare(found: list[tuple[str, int, str]], allow: list[tuple[str, str]]) -> str:
    """Empty when ``found`` matches the allow-list statement for statement; else what differs."""
    have, listed = Counter((f, t) for f, _, t in found), Counter(allow)
    new = [row for row in found if have[row[0], row[2]] > listed[row[0], row[2]]]
    fixed = sorted((listed - have).elements())
    msg = []
    if new:
        msg.append("new (not in the allow-list):\n" + _report(new))
    if fixed:
        msg.append("allowed but no longer there -- remove from the allow-list:\n"
                   + "\n".join(f"{f}: {t}" for f, t in fixed))
    return "\n".join(msg)


def test_every_module_has_a_layer():
    for f, _, target, _ in IMPORTS:
        layer_of(_module_name(ROOT / f))
        layer_of(target)


def test_core_imports_no_other_layer():
    bad = [(f, line, t) for f, line, t, _ in IMPORTS
           if layer_of(_module_name(ROOT / f)) == "core" and layer_of(t) != "core"]
    assert not bad, "core must import nothing from other mixedppl layers:\n" + _report(bad)


def test_datasets_stand_apart():
    bad = [(f, line, t) for f, line, t, _ in IMPORTS
           if (layer_of(_module_name(ROOT / f)) == "datasets") != (layer_of(t) == "datasets")
           and not allowed(layer_of(_module_name(ROOT / f)), layer_of(t))]
    assert not bad, "datasets/ imports only core, and only __init__ imports it:\n" + _report(bad)


def test_top_level_import_violations_known():
    msg = _compare(_layer_violations(in_function=False), TOP_LEVEL_ALLOWED)
    assert not msg, msg


def test_layers_that_follow_the_order_keep_it():
    """Every layer but inference, diagnostics and bayes follows the order at module scope
    today."""
    rows = [(f, line, t) for f, line, t in _layer_violations(in_function=False)
            if layer_of(_module_name(ROOT / f)) not in ("inference", "diagnostics", "bayes")]
    assert not rows, _report(rows)


@pytest.mark.xfail(strict=True, reason="the layer order is not reached yet: TOP_LEVEL_ALLOWED")
def test_top_level_imports_follow_the_layer_order():
    rows = _layer_violations(in_function=False)
    assert not rows, _report(rows)


def test_function_level_imports_known():
    rows = [(f, line, t) for f, line, t, inside in IMPORTS if inside]
    msg = _compare(rows, FUNCTION_LEVEL_ALLOWED)
    assert not msg, msg


def test_no_internal_import_inside_a_function():
    rows = [(f, line, t) for f, line, t, inside in IMPORTS if inside]
    assert not rows, _report(rows)

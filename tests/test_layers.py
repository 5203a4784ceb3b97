"""The layer order of mixedppl (REDESIGN.md), asserted on the import statements of every module.

    core → families → spec → graph → fit → {inference, diagnostics, bayes, distributed} → results → api

A module imports only from its own layer and the layers to its left; ``inference``,
``diagnostics``, ``bayes`` and ``distributed`` sit side by side and do not import one another. ``datasets`` stands
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
    distributed  mixedppl.distributed.* (the row passes over a Dask DataFrame's partitions)
    results      mixedppl.results.*
    api          mixedppl.api, mixedppl.glmm_api, mixedppl.clmm_api, mixedppl.arrays_api (the
                 array door), mixedppl.anova (a front door over fitted models, like lmer/glmer/clmm)
    datasets     mixedppl.datasets (apart: imports core only)
    init         mixedppl (__init__.py), mixedppl.__main__

The allow-lists below are today's violations, written out: ``test_*_known`` fails when a new
violation appears and when a listed one is fixed but left in the list (remove it then); both lists
are empty today, and the tests that state the target (no violation at all) pass. Entries are (file, imported module), once per import
statement, without line numbers so that edits elsewhere in a file do not break them; the failure
messages give file:line.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mixedppl"

RANK = {"core": 0, "families": 1, "spec": 2, "graph": 3, "fit": 4,
        "inference": 5, "diagnostics": 5, "bayes": 5, "distributed": 5, "results": 6, "api": 7}

PREFIX_LAYER = {
    "mixedppl.core": "core",
    "mixedppl.families": "families", "mixedppl.cumulative": "families",
    "mixedppl.spec": "spec",
    "mixedppl.graph": "graph",
    "mixedppl.fit": "fit",
    "mixedppl.inference": "inference",
    "mixedppl.diagnostics": "diagnostics", "mixedppl.plotting": "diagnostics",
    "mixedppl.bayes": "bayes", "mixedppl.priors": "bayes",
    "mixedppl.distributed": "distributed",
    "mixedppl.results": "results",
    "mixedppl.api": "api", "mixedppl.glmm_api": "api", "mixedppl.clmm_api": "api",
    "mixedppl.anova": "api", "mixedppl.coxme_api": "api", "mixedppl.arrays_api": "api",
    "mixedppl.datasets": "datasets",
    "mixedppl.__main__": "init", "mixedppl": "init",
}


#: Module-scope imports against the layer order today (file, imported module).
TOP_LEVEL_ALLOWED: list[tuple[str, str]] = [
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


def _from_base(node: ast.ImportFrom, path: Path) -> str:
    """The module a ``from ... import`` statement imports from (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """The mixedppl modules an import statement imports (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "mixedppl"]
    base = _from_base(node, path)
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


# -- private names ------------------------------------------------------------------------------

def _package_of(module: str) -> str:
    """``mixedppl.fit`` for ``mixedppl.fit.laplace``; ``mixedppl`` for a top-level module."""
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / Path(*parts[:2])).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _underscore_imports() -> list[tuple[str, int, str]]:
    """(file, line, "module.name") for every ``from ..x import _name`` across packages."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()
        here = _package_of(_module_name(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = _from_base(node, path)
            if base.split(".")[0] != "mixedppl" or _package_of(base) == here:
                continue
            found.extend((rel, node.lineno, f"{base}.{a.name}") for a in node.names
                         if _private(a.name))
    return found


#: Attributes a namedtuple or the stdlib documents despite the underscore.
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make"}


def _private_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, "obj._name") for every ``obj._name`` in ``tree`` where obj is not ``self`` /
    ``cls`` / ``super()`` (a practical check: the type of obj is not known)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        if node.attr in PUBLIC_UNDERSCORE:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
                and owner.func.id == "super"):
            continue
        found.append((node.lineno, f"{ast.unparse(owner)}.{node.attr}"))
    return found


def _private_attribute_reads() -> list[tuple[str, int, str]]:
    """(file, line, "obj._name") for every private attribute read in mixedppl/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()
        found.extend((rel, line, text) for line, text in _private_reads(tree))
    return found


def _compare_named(found: list[tuple[str, int, str]], allow: list[tuple[str, str]]) -> str:
    have, listed = Counter((f, t) for f, _, t in found), Counter(allow)
    new = [row for row in found if have[row[0], row[2]] > listed[row[0], row[2]]]
    fixed = sorted((listed - have).elements())
    msg = []
    if new:
        msg.append("new (not in the allow-list):\n"
                   + "\n".join(f"{f}:{line}: {t}" for f, line, t in new))
    if fixed:
        msg.append("allowed but no longer there -- remove from the allow-list:\n"
                   + "\n".join(f"{f}: {t}" for f, t in fixed))
    return "\n".join(msg)


def test_no_underscore_name_is_imported_from_another_package():
    rows = _underscore_imports()
    assert not rows, "\n".join(f"{f}:{line}: imports {t}" for f, line, t in rows)


#: ``obj._name`` reads today (file, "obj._name"), once per occurrence: the LMM estimates graph
#: reads the ProfiledLMM it extends (graph/, being reworked for compile time elsewhere).
PRIVATE_ATTRIBUTE_ALLOWED: list[tuple[str, str]] = []


def test_private_attribute_reads_known():
    msg = _compare_named(_private_attribute_reads(), PRIVATE_ATTRIBUTE_ALLOWED)
    assert not msg, msg


def test_the_private_name_checks_see_what_they_describe():
    src = ("x = fit.record._hidden + self._own + cls._own + super()._own + t._replace(a=1)\n"
           "y = obj.__class__\n")
    assert _private_reads(ast.parse(src)) == [(1, "fit.record._hidden")]
    path = PACKAGE / "inference" / "lrt.py"
    node = ast.parse("from ..spec.design import _bits, model_matrix").body[0]
    assert _from_base(node, path) == "mixedppl.spec.design"
    assert _package_of("mixedppl.spec.design") == "mixedppl.spec" != _package_of(
        "mixedppl.inference.lrt")
    assert _package_of("mixedppl.api") == "mixedppl"

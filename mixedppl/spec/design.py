"""Model matrices exactly as R's ``model.matrix()`` builds them, for the right-hand side of a formula.

The formula is parsed with a small R-expression parser (R's operator precedence; ``**`` is ``^``)
and expanded into terms as R's ``terms.formula`` does (``+ - * / : %in% ^``, ``0``/``1``/``-1``,
terms ordered by degree, duplicates removed). Each term is then coded as R's C ``modelmatrix``
codes it: a factor gets contrasts when the term without it appears earlier in the model (the
empty term counts), dummy columns otherwise, and without an intercept the first factor found gets
dummies. Column names are R's: deparsed variables (``I(x^2)``, ``log(z + 1)``) followed by contrast
suffixes (``recipeB``, ``temperature.L``), joined by ``:`` with the first variable varying fastest.

References
----------
R Core Team, ``src/library/stats/src/model.c`` (``termsform``, ``TermCode``, ``modelmatrix``) and
``src/library/stats/R/models.R`` (``model.matrix.default``).

Examples
--------
>>> import pandas as pd
>>> d = model_matrix("0 + f + x", pd.DataFrame({"f": ["b", "a", "b"], "x": [1.0, 2.0, 3.0]}))
>>> d.column_names
['fa', 'fb', 'x']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .frame import as_pandas
from .contrasts import (CONSTANTS, EvalState, Factor, contrast_matrix, evaluate, r_labels,
                        r_number)

__all__ = ["Design", "Node", "model_matrix", "rhs_variables", "deparse", "parse_rhs",
           "term_columns", "term_variables", "new_variable"]

# ------------------------------------------------------------------------------------------------
# Parsing and deparsing R expressions
# ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>`[^`]+`|[A-Za-z._][A-Za-z0-9._]*)
  | (?P<op>%[^%\s]*%|\*\*|==|!=|<=|>=|&&|\|\||[-+*/^:(),=<>!&|~\[\]$@])
  )""", re.X)
_SYNTACTIC = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$")
_BP = {"|": 10, "||": 10, "&": 20, "&&": 20, "==": 40, "!=": 40, "<": 40, ">": 40, "<=": 40,
       ">=": 40, "+": 50, "-": 50, "*": 60, "/": 60, ":": 80}
_TIGHT = {"/", "^", ":", "%%", "%/%"}          # R deparses these without spaces (PP_BINARY2)


@dataclass(eq=False)
class Node:
    """One node of a parsed R expression (identity-hashed: it keys remembered ``scale``/``poly`` state).

    ``kind`` is ``num``, ``str``, ``name``, ``call``, ``bin``, ``un`` or ``paren``; ``value`` is the
    number, string, name, function or operator; ``args`` the children; ``keys`` the argument names.
    """

    kind: str
    value: object = None
    args: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    text: str = ""

    def __str__(self) -> str:
        return deparse(self)


def _tokenize(text: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ModelSpecError(f"cannot parse formula {text!r}: unexpected character "
                                 f"{text[pos:].strip()[0]!r}")
        kind = m.lastgroup
        toks.append((kind, m.group(kind)))
        pos = m.end()
    return toks


class _Parser:
    """Pratt parser for R expressions with R's operator precedence."""

    def __init__(self, text: str):
        self.text, self.toks, self.i = text, _tokenize(text), 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, msg: str):
        raise ModelSpecError(f"cannot parse formula {self.text!r}: {msg}")

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek()[0] != "end":
            self.fail(f"unexpected {self.peek()[1]!r}")
        return node

    @staticmethod
    def binding(kind: str, op: str) -> tuple[int, int] | None:
        if kind != "op":
            return None
        if op.startswith("%"):
            return 70, 70
        if op in ("^", "**"):
            return 100, 99
        return (_BP[op], _BP[op]) if op in _BP else None

    def expr(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            bp = self.binding(*self.peek())
            if bp is None or bp[0] <= min_bp:
                return left
            op = self.next()[1]
            left = Node("bin", "^" if op == "**" else op, [left, self.expr(bp[1])])

    def prefix(self) -> Node:
        kind, val = self.next()
        if kind == "num":
            is_int = val.endswith("L")
            num = float(val.rstrip("L"))
            return Node("num", num, text=f"{int(num)}L" if is_int else r_number(num))
        if kind == "str":
            return Node("str", val[1:-1].encode().decode("unicode_escape"))
        if kind == "name":
            name = val[1:-1] if val.startswith("`") else val
            if self.peek() == ("op", "("):
                self.next()
                return self.call(name)
            return Node("name", name)
        if (kind, val) == ("op", "("):
            inner = self.expr(0)
            if self.next() != ("op", ")"):
                self.fail("missing ')'")
            return Node("paren", None, [inner])
        if kind == "op" and val in ("-", "+", "!"):
            return Node("un", val, [self.expr(30 if val == "!" else 90)])
        self.fail(f"unexpected {val!r}" if val else "unexpected end of formula")

    def call(self, fn: str) -> Node:
        node = Node("call", fn)
        if self.peek() == ("op", ")"):
            self.next()
            return node
        while True:
            key = None
            if self.peek()[0] == "name" and self.peek(1) == ("op", "="):
                key = self.next()[1].strip("`")
                self.next()
            node.args.append(self.expr(0))
            node.keys.append(key)
            tok = self.next()
            if tok == ("op", ")"):
                return node
            if tok != ("op", ","):
                self.fail(f"expected ',' or ')' in {fn}(...)")


def parse_rhs(rhs: str) -> Node:
    """Parse a formula right-hand side (or any R expression) into a :class:`Node` tree."""
    if not isinstance(rhs, str):
        raise ModelSpecError(f"formula must be a string, got {type(rhs).__name__}")
    return _Parser(rhs if rhs.strip() else "1").parse()


def deparse(node: Node) -> str:
    """R's ``deparse`` of an expression: ``x + 1``, ``x^2``, ``x/2``, ``poly(x, 2, raw = TRUE)``."""
    k, a = node.kind, node.args
    if k == "num":
        return node.text
    if k == "str":
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if k == "name":
        if node.value in ("True", "False"):
            return node.value.upper()
        return node.value if _SYNTACTIC.match(node.value) else f"`{node.value}`"
    if k == "paren":
        return f"({deparse(a[0])})"
    if k == "un":
        return node.value + deparse(a[0])
    if k == "bin":
        sep = node.value if node.value in _TIGHT else f" {node.value} "
        return deparse(a[0]) + sep + deparse(a[1])
    parts = [deparse(v) if key is None else f"{key} = {deparse(v)}" for key, v in zip(node.keys, a)]
    return f"{node.value}({', '.join(parts)})"


# ------------------------------------------------------------------------------------------------
# Expanding the formula into terms (R's terms.formula)
# ------------------------------------------------------------------------------------------------

class _Expander:
    """R's ``ExtractVars`` + ``EncodeVars``: variables in order, terms as bit masks, the intercept."""

    def __init__(self):
        self.vars: list[Node] = []
        self.labels: list[str] = []
        self.intercept, self.parity = True, True

    def install(self, node: Node) -> int:
        label = deparse(node)
        if label == ".":
            raise ModelSpecError("'.' (all columns) is not supported in formulas; name the columns")
        if label not in self.labels:
            self.labels.append(label)
            self.vars.append(node)
        return self.labels.index(label)

    def extract(self, node: Node, checkonly: bool) -> None:
        k, op, a = node.kind, node.value, node.args
        if k == "num":
            if op not in (0.0, 1.0):
                raise ModelSpecError(f"invalid term in model formula: {deparse(node)}")
        elif k == "name":
            if not checkonly:
                self.install(node)
        elif k == "paren" or (k == "un" and op == "+"):
            self.extract(a[0], checkonly)
        elif k == "un" and op == "-":
            self.extract(a[0], True)
        elif k == "bin" and op == "-":
            self.extract(a[0], checkonly)
            self.extract(a[1], True)
        elif k == "bin" and op == "^":
            self.extract(a[0], checkonly)
        elif k == "bin" and op in ("+", ":", "*", "/", "%in%"):
            self.extract(a[0], checkonly)
            self.extract(a[1], checkonly)
        elif k == "str":
            raise ModelSpecError(f"invalid term in model formula: {deparse(node)}")
        else:
            self.install(node)

    @staticmethod
    def trim(terms: list[int]) -> list[int]:
        return list(dict.fromkeys(t for t in terms if t))

    def encode(self, node: Node) -> list[int]:
        k, op, a = node.kind, node.value, node.args
        if k == "num":
            self.intercept = self.parity if op == 1.0 else not self.parity
            return []
        if k == "paren" or (k == "un" and op == "+"):
            return self.encode(a[0])
        if k == "un" and op == "-":
            return self.delete(None, a[0])
        if k != "bin" or op not in ("+", "-", ":", "*", "/", "%in%", "^"):
            return [1 << self.install(node)]
        if op == "-":
            return self.delete(a[0], a[1])
        if op == "^":
            return self.power(a[0], a[1])
        left, right = self.encode(a[0]), self.encode(a[1])
        inter = [l | r for l in left for r in right]
        if op == "+":
            return self.trim(left + right)
        if op == ":":
            return self.trim(inter)
        if op == "*":
            return self.trim(left + right + inter)
        if op == "%in%":
            allr = int(np.bitwise_or.reduce(right)) if right else 0
            return self.trim([t | allr for t in left])
        alll = int(np.bitwise_or.reduce(left)) if left else 0      # "/"
        return self.trim(left + [alll | t for t in right])

    def delete(self, left_node: Node | None, right_node: Node) -> list[int]:
        left = self.encode(left_node) if left_node is not None else []
        self.parity = not self.parity
        right = self.encode(right_node)
        self.parity = not self.parity
        return [t for t in left if t not in right]

    def power(self, base: Node, exponent: Node) -> list[int]:
        if exponent.kind != "num" or exponent.value < 2 or exponent.value != int(exponent.value):
            raise ModelSpecError(f"invalid power in formula: ^{deparse(exponent)} (need an integer ≥ 2)")
        left = self.encode(base)
        right = left
        for _ in range(int(exponent.value) - 1):
            right = self.trim([l | r for l in left for r in right])
        return right


def term_variables(t: int) -> list[int]:
    """The variables of a term, a bit set over the plan's variables (bit i: variable i).

    Examples
    --------
    >>> term_variables(0b101)
    [0, 2]
    """
    return [i for i in range(t.bit_length()) if t >> i & 1]


def _term_code(terms: list[int], j: int, i: int) -> int:
    """R's ``TermCode``: 1 (contrasts) if term j without variable i is in an earlier term, else 2."""
    rest = terms[j] & ~(1 << i)
    if rest == 0 or any((rest & ~terms[p]) == 0 for p in range(j)):
        return 1
    return 2


# ------------------------------------------------------------------------------------------------
# Variables, coding and the model matrix
# ------------------------------------------------------------------------------------------------

@dataclass
class _Var:
    """A model variable after its first evaluation: factor levels or numeric column suffixes."""

    label: str
    node: Node
    is_factor: bool = False
    levels: list[str] = field(default_factory=list)
    ordered: bool = False
    colnames: list[str] = field(default_factory=list)
    contrast: tuple[np.ndarray, list[str]] | None = None


def _fit_var(var: _Var, st: EvalState) -> np.ndarray:
    """Evaluate a variable on the training data, fixing its levels; returns codes or columns."""
    value = evaluate(var.node, st)
    n = len(st.data)
    if isinstance(value, Factor) or np.asarray(value).dtype == bool:
        var.is_factor = True
        if isinstance(value, Factor):
            present = set(value.labels)
            var.levels = [l for l in value.levels if l in present]
            var.ordered = value.ordered
        else:
            var.levels = ["FALSE", "TRUE"]
        return _codes(var, value, n)
    if isinstance(value, str):
        raise ModelSpecError(f"{var.label} is a string constant, not a variable")
    arr = np.asarray(value, dtype=float)
    cols = arr if arr.ndim == 2 else (arr[:, None] if arr.ndim == 1 else np.full((n, 1), arr))
    var.colnames = [str(j + 1) for j in range(cols.shape[1])]
    return np.array(cols, dtype=float)


def _codes(var: _Var, value, n: int) -> np.ndarray:
    """Level index of each row (-1 where missing); a level not seen in training is an error."""
    if isinstance(value, Factor):
        labels = value.labels
    else:
        labels = r_labels(np.broadcast_to(np.asarray(value), (n,)))
    index = {l: i for i, l in enumerate(var.levels)}
    unknown = sorted({l for l in labels if l is not None and l not in index})
    if unknown:
        raise ModelSpecError(
            f"new data has level(s) {', '.join(repr(u) for u in unknown)} of {var.label!r} that were "
            f"not in the data the model was fitted to (levels: {', '.join(var.levels)})")
    return np.array([-1 if l is None else index[l] for l in labels], dtype=np.int64)


def new_variable(var: _Var, st: EvalState) -> np.ndarray:
    """Evaluate a variable on new data (``st``) with the training levels / transforms: factor
    codes, or the (n, k) numeric block."""
    value = evaluate(var.node, st)
    n = len(st.data)
    if var.is_factor:
        return _codes(var, value, n)
    if isinstance(value, Factor):
        raise ModelSpecError(f"{var.label!r} was numeric in the fitted data but is categorical "
                             "in the new data")
    arr = np.asarray(value, dtype=float)
    k = len(var.colnames)
    return np.array(np.broadcast_to(arr.reshape(n, k) if arr.ndim else arr, (n, k)))


def _factor_block(var: _Var, codes: np.ndarray, code: int) -> tuple[np.ndarray, list[str]]:
    if code == 1:
        mat, suffixes = var.contrast
    else:
        mat, suffixes = np.eye(len(var.levels)), var.levels
    padded = np.vstack([mat, np.full((1, mat.shape[1]), np.nan)])
    return padded[np.where(codes < 0, len(var.levels), codes)], [var.label + s for s in suffixes]


def term_columns(plan: "_Plan", j: int, values: list, n: int) -> tuple[np.ndarray, list[str]]:
    """Term j's columns of the model matrix and their names: the product of its variables'
    blocks (``values[i]``, from :func:`new_variable`), the first variable varying fastest, as R's
    ``model.matrix``."""
    mat, names = np.ones((n, 1)), [""]
    for i, code in plan.codes[j]:
        var = plan.vars[i]
        if var.is_factor:
            blk, bnames = _factor_block(var, values[i], code)
        else:
            blk = values[i]
            bnames = [var.label] if blk.shape[1] == 1 else [var.label + c for c in var.colnames]
        mat = (blk[:, :, None] * mat[:, None, :]).reshape(n, -1)
        names = [f"{p}:{b}" if p else b for b in bnames for p in names]
    return mat, names


@dataclass
class _Plan:
    """Everything needed to rebuild the matrix on new data."""

    rhs: str
    vars: list[_Var]
    terms: list[int]
    codes: list[list[tuple[int, int]]]
    offsets: list[int]
    intercept: bool
    params: dict

    def _nodes(self) -> list[Node]:
        """Every expression node of the variables, depth first (``params`` is keyed by their id)."""
        out, stack = [], [v.node for v in reversed(self.vars)]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.args))
        return out

    def __getstate__(self) -> dict:
        # ``params`` is keyed by node identity, which does not survive pickling (a spec sent to
        # Dask workers, a saved fit): store node positions instead.
        state = dict(self.__dict__)
        where = {id(n): k for k, n in enumerate(self._nodes())}
        state["params"] = {where[key]: v for key, v in self.params.items() if key in where}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        nodes = self._nodes()
        self.params = {id(nodes[k]): v for k, v in state["params"].items()}


def _assemble(plan: _Plan, values: list, n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    blocks, names, assign = [], [], []
    if plan.intercept:
        blocks.append(np.ones((n, 1)))
        names.append("(Intercept)")
        assign.append(0)
    for j in range(len(plan.terms)):
        mat, nm = term_columns(plan, j, values, n)
        blocks.append(mat)
        names += nm
        assign += [j + 1] * len(nm)
    X = np.hstack(blocks) if blocks else np.zeros((n, 0))
    return np.ascontiguousarray(X, dtype=np.float64), names, np.array(assign, dtype=np.int64)


def _offset(plan: _Plan, values: list, n: int) -> np.ndarray | None:
    if not plan.offsets:
        return None
    return np.sum([values[i][:, 0] for i in plan.offsets], axis=0)


@dataclass(eq=False)
class Design:
    """A model matrix with R's column names, ``assign`` and term labels, rebuildable on new data.

    Attributes
    ----------
    matrix : ndarray (n, p)
    column_names : list of str
    assign : ndarray of int
        Term index of each column (0 = intercept), as R's ``attr(X, "assign")``.
    term_names : list of str
        R's term labels in R's order.
    has_intercept : bool
    offset : ndarray (n,) or None
        Sum of the ``offset(...)`` terms.
    """

    matrix: np.ndarray
    column_names: list[str]
    assign: np.ndarray
    term_names: list[str]
    has_intercept: bool
    offset: np.ndarray | None
    plan: _Plan = field(repr=False)

    def transform(self, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """The same columns for new rows, with the training levels, contrasts and transforms.

        Returns
        -------
        X : ndarray (m, p)
        offset : ndarray (m,) or None
        """
        newdata = as_pandas(newdata, "newdata")
        plan = self.plan
        st = EvalState(newdata, False, plan.params, plan.rhs)
        used = {i for c in plan.codes for i, _ in c} | set(plan.offsets)
        values = [new_variable(v, st) if i in used else None for i, v in enumerate(plan.vars)]
        X, _, _ = _assemble(plan, values, len(newdata))
        return X, _offset(plan, values, len(newdata))


def _expand(rhs: str) -> tuple[_Expander, list[int], list[int]]:
    """Variables, sorted non-offset terms and offset variables of a right-hand side."""
    tree = parse_rhs(rhs)
    if tree.kind == "bin" and tree.value == "~":
        raise ModelSpecError(f"pass only the right-hand side of the formula, got {rhs!r}")
    ex = _Expander()
    ex.extract(tree, False)
    terms = ex.encode(tree)
    is_off = [lab.startswith("offset(") for lab in ex.labels]
    offsets = [i for i, o in enumerate(is_off) if o]
    terms = [t for t in terms if not any(is_off[i] for i in term_variables(t))]
    terms.sort(key=lambda t: bin(t).count("1"))
    return ex, terms, offsets


def _coding(terms: list[int], vars_: list[_Var], intercept: bool) -> list[list[tuple[int, int]]]:
    """R's factor pattern (1 contrasts, 2 dummies), with the no-intercept adjustment."""
    codes = [[(i, _term_code(terms, j, i)) for i in term_variables(t)] for j, t in enumerate(terms)]
    if not intercept:
        for c in codes:
            hit = next((k for k, (i, _) in enumerate(c)
                        if vars_[i].is_factor and len(vars_[i].levels) > 1), None)
            if hit is not None:
                c[hit] = (c[hit][0], 2)
                break
    return codes


def model_matrix(rhs: str, data: pd.DataFrame, *,
                 contrasts: dict[str, str | np.ndarray] | None = None,
                 preset: dict | None = None) -> Design:
    """R's ``model.matrix(~ rhs, data, contrasts.arg = contrasts)`` (unused levels dropped).

    Parameters
    ----------
    rhs : str
        Right-hand side of a formula without random terms, e.g. ``"1 + Days"``,
        ``"recipe * temperature"``, ``"0 + f"``, ``"x + I(x^2) + offset(log(e))"``.
    data : DataFrame
        Rows already cleaned of missing values. Categoricals keep their category order (ordered
        ones get ``contr.poly``); string columns become factors with sorted levels; booleans are
        factors with levels FALSE, TRUE.
    contrasts : dict, optional
        Variable name → ``"contr.treatment"``, ``"contr.sum"``, ``"contr.helmert"``,
        ``"contr.poly"``, ``"contr.SAS"`` or a (levels × k) matrix. Names not in ``rhs`` are ignored.
    preset : dict, optional
        The text of a ``scale()`` / ``poly()`` / ``bs()`` / ``ns()`` call → its parameters, computed
        elsewhere on the whole column (:mod:`mixedppl.spec.stateful`, for a Dask DataFrame);
        ``data`` then only needs the columns, not the rows those parameters come from.

    Returns
    -------
    Design
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    ex, terms, offsets = _expand(rhs)
    st = EvalState(data, True, {}, rhs, preset=preset)
    vars_ = [_Var(lab, node) for lab, node in zip(ex.labels, ex.vars)]
    used = {i for t in terms for i in term_variables(t)} | set(offsets)
    values = [_fit_var(v, st) if i in used else None for i, v in enumerate(vars_)]
    codes = _coding(terms, vars_, ex.intercept)
    for i, v in enumerate(vars_):
        if v.is_factor and any(c == 1 and k == i for term in codes for k, c in term):
            v.contrast = contrast_matrix((contrasts or {}).get(v.label), v.levels, v.ordered, v.label)
    plan = _Plan(rhs, vars_, terms, codes, offsets, ex.intercept, st.params)
    X, names, assign = _assemble(plan, values, len(data))
    labels = [":".join(ex.labels[i] for i in term_variables(t)) for t in terms]
    return Design(X, names, assign, labels, ex.intercept, _offset(plan, values, len(data)), plan)


def rhs_variables(rhs: str) -> list[str]:
    """Data column names that a right-hand side uses, in order of first appearance.

    Examples
    --------
    >>> rhs_variables("x * f + log(z + 1) + scale(w, scale = FALSE) + offset(log(e))")
    ['x', 'f', 'z', 'w', 'e']
    """
    out: list[str] = []

    def walk(node: Node) -> None:
        if node.kind == "name" and node.value not in CONSTANTS and node.value != ".":
            out.append(node.value)
        for child in node.args:
            walk(child)

    walk(parse_rhs(rhs))
    return list(dict.fromkeys(out))

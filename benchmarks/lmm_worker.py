"""Child process for bench_lmm.py: fit one case with one Python tool and print one JSON line.

Usage: ``python benchmarks/lmm_worker.py TOOL CASE REPEATS [MAX_REPEAT_S]``, TOOL one of
mixedppl, statsmodels, pystatistics, interlace.

Timed: the tool's import; the first fit; then ``REPEATS`` more fits (median reported as
``warm_s``) unless the first fit took longer than ``MAX_REPEAT_S`` (then ``warm_s`` is null).
For mixedppl one untimed fit before the repeats asks for the C tier and the worker waits for its
background build (``docs/compile.md``), so ``warm_s`` is the steady state of a session.
Data loading and any design matrices a tool needs as arrays are prepared outside the timers.
``rss_mb`` is this process's peak resident set size (``ru_maxrss``), after all fits.
"""

from __future__ import annotations

import importlib
import json
import resource
import statistics
import sys
import time
import warnings
from typing import Callable

import lmm_cases
from lmm_cases import Case

# Each preparer takes (tool module, case) and returns a no-argument fit function that returns
# (logLik, converged).
Fit = Callable[[], tuple[float, bool | None]]


def prepare_mixedppl(mp, case: Case) -> Fit:
    data = mp.datasets.load(case.dataset) if case.dataset else lmm_cases.load(case)

    def fit():
        res = mp.lmer(case.formula, data=data)
        return float(res.loglik), bool(res.converged)
    return fit


def prepare_statsmodels(smf, case: Case) -> Fit:
    data = lmm_cases.load(case)
    fixed = f"{case.response} ~ 1" + "".join(f" + {c}" for c in case.fixed)
    if len(case.random) == 1:  # one grouping factor: MixedLM's native form
        group, slopes = case.random[0]
        model = smf.mixedlm(fixed, data, groups=lmm_cases.group_labels(data, group),
                            re_formula="~" + (" + ".join(slopes) or "1"))
    elif all(not slopes for _, slopes in case.random):  # crossed intercepts: one big group
        data = data.assign(**{lmm_cases.plain_name(g): lmm_cases.group_labels(data, g)
                              for g, _ in case.random}, _one=1)
        vc = {lmm_cases.plain_name(g): f"0 + C({lmm_cases.plain_name(g)})"
              for g, _ in case.random}
        model = smf.mixedlm(fixed, data, groups="_one", re_formula="0", vc_formula=vc)
    else:
        raise NotImplementedError("crossed random slopes are not expressible in MixedLM")

    def fit():
        res = model.fit(reml=True)
        return float(res.llf), bool(res.converged)
    return fit


def prepare_pystatistics(mixed, case: Case) -> Fit:
    data = lmm_cases.load(case)
    X, _ = lmm_cases.fixed_matrix(case, data)
    y = data[case.response].to_numpy(float)
    groups = {g: lmm_cases.group_labels(data, g) for g, _ in case.random}
    effects = {g: ["1", *slopes] for g, slopes in case.random}
    slope_data = {s: data[s].to_numpy(float) for _, slopes in case.random for s in slopes}

    def fit():
        res = mixed.lmm(y, X, groups=groups, random_effects=effects,
                        random_data=slope_data or None, reml=True, compute_satterthwaite=False)
        return float(res.log_likelihood), bool(res.converged)
    return fit


def prepare_interlace(interlace, case: Case) -> Fit:
    data = lmm_cases.load(case)
    data = data.assign(**{lmm_cases.plain_name(g): lmm_cases.group_labels(data, g)
                          for g, _ in case.random if ":" in g})
    fixed = f"{case.response} ~ 1" + "".join(f" + {c}" for c in case.fixed)
    random = [f"({' + '.join(['1', *slopes])} | {lmm_cases.plain_name(g)})"
              for g, slopes in case.random]

    def fit():
        res = interlace.fit(fixed, data, random=random, method="REML")
        return float(res.llf), bool(res.converged)
    return fit


TOOLS = {  # tool -> (module to import, preparer)
    "mixedppl": ("mixedppl", prepare_mixedppl),
    "statsmodels": ("statsmodels.formula.api", prepare_statsmodels),
    "pystatistics": ("pystatistics.mixed", prepare_pystatistics),
    "interlace": ("interlace", prepare_interlace),
}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str]) -> dict:
    tool, case_name, repeats = argv[0], argv[1], int(argv[2])
    max_repeat_s = float(argv[3]) if len(argv) > 3 else float("inf")
    module_name, prepare = TOOLS[tool]
    warnings.simplefilter("ignore")
    import_s, module = timed(lambda: importlib.import_module(module_name))
    fit = prepare(module, lmm_cases.CASES[case_name])
    first_s, (loglik, converged) = timed(fit)
    warm = []
    if first_s <= max_repeat_s:
        if tool == "mixedppl":
            fit()                                   # the second lookup asks for the C tier
            module.core.compile.wait_for_background()
        for _ in range(repeats):
            t, (loglik, converged) = timed(fit)
            warm.append(t)
    return {"tool": tool, "case": case_name, "import_s": import_s, "first_s": first_s,
            "warm_s": statistics.median(warm) if warm else None, "n_warm": len(warm),
            "loglik": loglik, "converged": converged,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)

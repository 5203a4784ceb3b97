"""Child process for bench_glmm.py: fit one GLMM / CLMM case with mixedppl, print one JSON line.

Usage: ``python benchmarks/glmm_worker.py CASE REPEATS [MAX_REPEAT_S]``, CASE one of
:data:`CASES`.

Timed (wall ``time.perf_counter`` and CPU ``time.process_time`` of this process): the import of
mixedppl; the first fit; then ``REPEATS`` more fits (medians reported as ``warm_s`` / ``cpu_s``)
unless the first fit took longer than ``MAX_REPEAT_S`` (then they are null). Before the repeats
one untimed fit asks for the C tier and the worker waits for its background build
(``c_tier_wait_s``; ``docs/compile.md``), so ``warm_s`` is the steady state of a session, not
fits competing with the C compiler. Loading the dataset is not timed. ``children_cpu_s`` is the CPU time of finished child processes (the C compiler, when
PyTensor compiles on an empty compile dir), which ``process_time`` does not count. ``rss_mb`` is
this process's peak resident set size (``ru_maxrss``), after all fits.

This module only defines :data:`CASES` at import time (``bench_glmm.py`` imports it); mixedppl is
imported inside :func:`main`, under the clock.
"""

from __future__ import annotations

import importlib
import json
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str
    function: str          # mixedppl function: "glmer" or "clmm"
    formula: str
    kwargs: dict = field(default_factory=dict)
    peer: str = ""         # R package of the peer
    peer_call: str = ""    # the R call, for the docs / table notes
    note: str = ""


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
POIS = "TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)"
WINE = "rating ~ temp + contact + (1 | judge)"

CASES: dict[str, Case] = {c.name: c for c in (
    Case("cbpp_laplace", "cbpp", "glmer", CBPP, {"family": "binomial"}, "lme4",
         f"glmer({CBPP}, cbpp, binomial)"),
    Case("cbpp_agq25", "cbpp", "glmer", CBPP, {"family": "binomial", "nAGQ": 25}, "lme4",
         f"glmer({CBPP}, cbpp, binomial, nAGQ = 25)",
         "lme4's logLik() at nAGQ > 1 omits the binomial saturated log-likelihood (−41.9784 on "
         "cbpp; lme4 prints −50.0050); the lme4 value compared here has it added back"),
    Case("grouseticks_poisson", "grouseticks", "glmer", POIS, {"family": "poisson"}, "lme4",
         f"glmer({POIS}, grouseticks, poisson)"),
    Case("grouseticks_nb", "grouseticks", "glmer", "TICKS ~ YEAR + (1 | LOCATION)",
         {"family": "negative_binomial"}, "glmmTMB",
         "glmmTMB(TICKS ~ YEAR + (1 | LOCATION), grouseticks, family = nbinom2)"),
    Case("salamanders_zinb", "salamanders", "glmer", "count ~ mined + (1 | site)",
         {"family": "nbinom2", "ziformula": "~ mined"}, "glmmTMB",
         "glmmTMB(count ~ mined + (1 | site), Salamanders, ziformula = ~mined, "
         "family = nbinom2)"),
    Case("owls_nbinom1", "owls", "glmer",
         "SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest)",
         {"family": "nbinom1"}, "glmmTMB",
         "glmmTMB(SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest), "
         "Owls, family = nbinom1)"),
    Case("wine_laplace", "wine", "clmm", WINE, {}, "ordinal",
         f"clmm({WINE}, data = wine)"),
    Case("wine_agq10", "wine", "clmm", WINE, {"nAGQ": 10}, "ordinal",
         f"clmm({WINE}, data = wine, nAGQ = 10)"),
)}


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv: list[str]) -> dict:
    case = CASES[argv[0]]
    repeats = int(argv[1])
    max_repeat_s = float(argv[2]) if len(argv) > 2 else float("inf")
    warnings.simplefilter("ignore")
    import_s, import_cpu_s, mp = timed(lambda: importlib.import_module("mixedppl"))
    data = mp.datasets.load(case.dataset)
    fit_fn = getattr(mp, case.function)

    def fit():
        res = fit_fn(case.formula, data, **case.kwargs)
        return float(res.loglik), bool(res.converged)

    first_s, first_cpu_s, (loglik, converged) = timed(fit)
    children_cpu_s = sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f)
                         for f in ("ru_utime", "ru_stime"))
    walls, cpus, wait_s = [], [], None
    if first_s <= max_repeat_s:
        t0 = time.perf_counter()
        fit()                                       # the second lookup asks for the C tier
        mp.core.compile.wait_for_background()
        wait_s = time.perf_counter() - t0
        for _ in range(repeats):
            t, c, (loglik, converged) = timed(fit)
            walls.append(t)
            cpus.append(c)
    return {"tool": "mixedppl", "case": case.name, "import_s": import_s,
            "import_cpu_s": import_cpu_s, "first_s": first_s, "first_cpu_s": first_cpu_s,
            "children_cpu_s": children_cpu_s, "c_tier_wait_s": wait_s,
            "warm_s": statistics.median(walls) if walls else None,
            "cpu_s": statistics.median(cpus) if cpus else None, "warm_all_s": walls,
            "n_warm": len(walls), "loglik": loglik, "converged": converged,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)

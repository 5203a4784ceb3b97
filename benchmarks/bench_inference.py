"""Benchmark mixedppl's inference beside R's lme4 / pbkrtest, measured in the same run.

Usage::

    python benchmarks/bench_inference.py [--rows profile,boot,influence,kr,cold] [--repeats 5]
        [--nsim 500] [--boot-repeats 1] [--timeout 900] [--no-r]

Rows (REML fits; the model is fitted before the clock starts, on both sides):

- **profile CI** (sleepstudy ``Reaction ~ Days + (Days | Subject)``, Dyestuff ``Yield ~ 1 +
  (1 | Batch)``, Penicillin ``diameter ~ 1 + (1 | plate) + (1 | sample)``):
  ``fit.confint(method="profile")`` against ``confint(fit, method = "profile")``. The last
  column is the largest relative difference between the two sets of interval ends (lme4
  interpolates a spline through its profile grid, so ~1e-4 is expected).
- **bootstrap CI** (sleepstudy, ``--nsim`` replicates): ``fit.confint(method="boot", nsim=…)``
  against ``confint(fit, method = "boot", nsim = …)``; both serial.
- **GLMM bootstrap CI** (``--rows glmmboot``; cbpp ``cbind(incidence, size - incidence) ~ period +
  (1 | herd)``, binomial, Laplace, ``--nsim`` replicates): ``g.confint(method="boot", nsim=…)``
  against ``confint(g, method = "boot", nsim = …)`` (``bootMer``: lme4's ``refit`` per
  replicate); both serial. Under load compare the CPU columns.
- **influence by subject** (sleepstudy, exact): ``fit.influence(level="Subject")`` (18 refits
  and the five measures) against 18 ``update(fit, data = subset)`` refits in R keeping fixef,
  vcov and VarCorr (HLMdiag is not needed; its ``case_delete`` does the same refits).
- **KR df** (sleepstudy): the Kenward–Roger adjusted covariance and the df of each coefficient
  (``kr_adjusted`` + ``kr_ddf``) against ``pbkrtest::vcovAdj`` + ``Lb_ddf``; skipped on the R side
  when pbkrtest is not installed. The last column is the largest absolute df difference.
- **cold** (``--rows cold``): a new Python process (default PyTensor compile dir, as on a user's
  second run): import, fit and the first ``confint(method="profile")`` on sleepstudy, which
  builds and compiles the profile graph; R's figure beside it is ``Rscript``'s whole run of the
  same (start-up, library, fit, profile).

Times: our *first* call in this process (it compiles the profile graph, first row of a model
structure) and the *warm* median of ``--repeats`` later calls with compiled functions cached in
process, with its CPU time (``time.process_time``); R's worker (``inference_worker.R``) does one
warm-up call and the median of ``--repeats``. ``ratio`` = R warm / ours warm (above 1: mixedppl is
faster). On a shared machine compare numbers from one run only.

The markdown table is printed and written to ``benchmarks/results/inference_latest.md``, the raw
numbers to ``benchmarks/results/inference_latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parent / "mixedppl" / "datasets" / "data"

MODELS = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "Subject"),
    "dyestuff": ("dyestuff", "Yield ~ 1 + (1 | Batch)", "Batch"),
    "penicillin": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "plate,sample"),
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "herd,period"),
}
PROFILE_MODELS = ("sleepstudy", "dyestuff", "penicillin")
GLMMS = ("cbpp",)          # fitted by glmer(..., binomial) on both sides
ROWS = ("profile", "boot", "glmmboot", "influence", "kr", "cold")


# --- R side ------------------------------------------------------------------------------------

def r_available(package: str = "lme4") -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", f'cat(requireNamespace("{package}", quietly=TRUE))'],
                           capture_output=True, text=True)
    return probe.stdout.strip().endswith("TRUE")


def run_r(task: str, model: str, repeats: int, timeout: float, nsim: int | None = None) -> dict:
    """One ``inference_worker.R`` child: its JSON line, or ``{"error": …}``."""
    data, formula, factors = MODELS[model]
    cmd = ["Rscript", str(HERE / "inference_worker.R"), task, str(DATA / f"{data}.csv"),
           formula, factors, str(repeats)] + ([str(nsim)] if nsim else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip() or out.stdout.strip() or "no output").splitlines()[-1]
        return {"error": f"error: {tail[:150]}"}
    return json.loads(lines[-1])


def run_r_cold(timeout: float) -> dict:
    """Wall time of a whole ``Rscript`` run: start-up, lme4, fit and profile CI (sleepstudy)."""
    code = ('suppressMessages(library(lme4)); d <- read.csv("%s"); d$Subject <- factor(d$Subject); '
            'm <- lmer(Reaction ~ Days + (Days | Subject), d); '
            'invisible(suppressMessages(confint(m, method = "profile")))'
            % (DATA / "sleepstudy.csv"))
    t0 = time.perf_counter()
    try:
        out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    if out.returncode != 0:
        return {"error": "error: " + (out.stderr.strip().splitlines() or ["?"])[-1][:150]}
    return {"tool": "lme4", "task": "cold", "first_s": time.perf_counter() - t0}


# --- our side ----------------------------------------------------------------------------------

def timed(fn, repeats: int) -> dict:
    """First call, then the median wall / CPU of ``repeats`` calls; the last result."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = fn()
    first = time.perf_counter() - t0, time.process_time() - c0
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"first_s": first[0], "first_cpu_s": first[1],
            "warm_s": statistics.median(walls) if walls else first[0],
            "cpu_s": statistics.median(cpus) if cpus else first[1],
            "n_warm": repeats, "result": res}


def fitted(model: str):
    import mixedppl as mp
    data, formula, _ = MODELS[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model in GLMMS:
            return mp.glmer(formula, mp.datasets.load(data), family="binomial")
        return mp.lmer(formula, mp.datasets.load(data))


def ours(task: str, model: str, repeats: int, nsim: int) -> dict:
    fit = fitted(model)
    if task == "profile":
        return timed(lambda: fit.confint(method="profile"), repeats)
    if task == "boot":
        fit.confint(method="boot", nsim=10, seed=1, progress=False)      # compile outside the clock
        return timed(lambda: fit.confint(method="boot", nsim=nsim, seed=1, progress=False),
                     repeats)
    if task == "influence":
        return timed(lambda: fit.influence(level="Subject"), repeats)
    if task == "kr":
        from mixedppl.inference.kenward_roger import kr_adjusted, kr_ddf

        def kr():
            adj = kr_adjusted(fit)
            p = fit.spec.p
            return [kr_ddf(adj, np.eye(p)[j:j + 1], q=1)[0] for j in range(p)]
        return timed(kr, repeats)
    raise ValueError(task)


def ours_cold(timeout: float) -> dict:
    """A new process: import, fit, first profile CI (default compile dir)."""
    code = ("import json, time, warnings; t0 = time.perf_counter(); import mixedppl as mp; "
            "t1 = time.perf_counter(); warnings.simplefilter('ignore'); "
            "fit = mp.lmer('Reaction ~ Days + (Days | Subject)', mp.datasets.load('sleepstudy')); "
            "t2 = time.perf_counter(); fit.confint(method='profile'); t3 = time.perf_counter(); "
            "print(json.dumps({'import_s': t1 - t0, 'fit_s': t2 - t1, 'profile_s': t3 - t2}))")
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    if out.returncode != 0:
        return {"error": "error: " + (out.stderr.strip().splitlines() or ["?"])[-1][:150]}
    parts = json.loads(out.stdout.strip().splitlines()[-1])
    return {"first_s": time.perf_counter() - t0, **parts}


# --- table -------------------------------------------------------------------------------------

def fmt_s(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def check_cell(task: str, mine, r: dict) -> str:
    """Agreement with R: profile ends (max relative difference), KR df (max abs difference)."""
    if "error" in r or mine is None:
        return "–"
    if task == "profile":
        ci = mine.to_numpy()
        ref = np.column_stack([r["values"]["lower"], r["values"]["upper"]])
        return f"{np.max(np.abs(ci - ref) / np.maximum(np.abs(ref), 1e-12)):.1e} rel"
    if task == "kr":
        return f"{np.max(np.abs(np.asarray(mine) - np.asarray(r['values']))):.1e} abs"
    return "–"


def row(label: str, task: str, mine: dict, r: dict) -> str:
    r_cell = r.get("error") if "error" in r else (
        f"{fmt_s(r['warm_s'])} (cpu {fmt_s(r.get('cpu_s'))})" if "warm_s" in r else "–")
    ratio = (f"{r['warm_s'] / mine['warm_s']:.1f}×" if "warm_s" in r and "warm_s" in mine
             else "–")
    return (f"| {label} | {fmt_s(mine.get('first_s'))} | {fmt_s(mine.get('warm_s'))} "
            f"(cpu {fmt_s(mine.get('cpu_s'))}) | {r_cell} | {ratio} | "
            f"{check_cell(task, mine.get('result'), r)} |")


def versions() -> str:
    import importlib.metadata as md
    out = [f"mixedppl {md.version('mixedppl')}", f"pytensor {md.version('pytensor')}"]
    if shutil.which("Rscript"):
        probe = subprocess.run(["Rscript", "-e", 'cat(R.version$major, R.version$minor, '
                                'as.character(packageVersion("lme4")), '
                                'tryCatch(as.character(packageVersion("pbkrtest")), '
                                'error = function(e) "none"))'], capture_output=True, text=True)
        v = probe.stdout.split()
        if len(v) == 4:
            out.append(f"R {v[0]}.{v[1]}, lme4 {v[2]}, pbkrtest {v[3]}")
    return ", ".join(out)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--repeats", type=int, default=5, help="warm calls per median (both sides)")
    ap.add_argument("--nsim", type=int, default=500, help="bootstrap replicates")
    ap.add_argument("--boot-repeats", type=int, default=1, help="warm bootstrap runs per median")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per R child")
    ap.add_argument("--no-r", action="store_true", help="skip the R columns")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    have_r = not args.no_r and r_available()
    have_kr = have_r and r_available("pbkrtest")
    no_r = {"error": "n/a (R not run)"}
    plan = []
    if "profile" in rows:
        plan += [(f"profile CI, {m}", "profile", m, args.repeats, None) for m in PROFILE_MODELS]
    if "boot" in rows:
        plan.append((f"bootstrap CI, sleepstudy, nsim={args.nsim}", "boot", "sleepstudy",
                     args.boot_repeats, args.nsim))
    if "glmmboot" in rows:
        plan.append((f"GLMM bootstrap CI (bootMer), cbpp, nsim={args.nsim}", "boot", "cbpp",
                     args.boot_repeats, args.nsim))
    if "influence" in rows:
        plan.append(("influence by Subject (exact), sleepstudy", "influence", "sleepstudy",
                     args.repeats, None))
    if "kr" in rows:
        plan.append(("Kenward–Roger df, sleepstudy", "kr", "sleepstudy", args.repeats, None))
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {versions()}. "
             f"Warm: median of {args.repeats} calls after a first one "
             f"(bootstrap: {args.boot_repeats}), both sides.", "",
             "| task | mixedppl first call | mixedppl warm | lme4 warm | ratio (R/ours) | "
             "agreement with R |", "|---|---|---|---|---|---|"]
    raw = {"args": vars(args), "rows": []}
    print("\n".join(lines), flush=True)
    for label, task, model, repeats, nsim in plan:
        mine = ours(task, model, repeats, args.nsim)
        if task == "kr" and not have_kr:
            r = {"error": "n/a (pbkrtest not installed)"} if have_r else no_r
        else:
            r = run_r(task, model, repeats, args.timeout, nsim) if have_r else no_r
        line = row(label, task, mine, r)
        print(line, flush=True)
        lines.append(line)
        result = mine.pop("result")
        if task == "profile":
            mine["ci"] = {"names": list(result.index), "lower": result.iloc[:, 0].tolist(),
                          "upper": result.iloc[:, 1].tolist()}
        elif task == "kr":
            mine["df"] = [float(v) for v in result]
        raw["rows"].append({"label": label, "task": task, "model": model, "mixedppl": mine,
                            "lme4": r})
    if "cold" in rows:
        mine = ours_cold(args.timeout)
        r = run_r_cold(args.timeout) if have_r else no_r
        detail = (f" (import {fmt_s(mine['import_s'])}, fit {fmt_s(mine['fit_s'])}, profile "
                  f"{fmt_s(mine['profile_s'])})" if "profile_s" in mine else "")
        r_cell = r.get("error") or fmt_s(r["first_s"])
        ratio = (f"{r['first_s'] / mine['first_s']:.2f}×" if "first_s" in r and "first_s" in mine
                 else "–")
        line = (f"| cold: new process, import + fit + profile CI, sleepstudy | "
                f"{mine.get('error') or fmt_s(mine['first_s'])}{detail} | – | "
                f"{r_cell} (whole Rscript run) | {ratio} | – |")
        print(line, flush=True)
        lines.append(line)
        raw["rows"].append({"label": "cold", "task": "cold", "model": "sleepstudy",
                            "mixedppl": mine, "lme4": r})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "inference_latest.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "inference_latest.json").write_text(json.dumps(raw, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

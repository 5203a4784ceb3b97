"""Benchmark ``mp.coxme`` against R's coxme in one run (issue 13).

Usage::

    python benchmarks/bench_cox.py [--cases kidney,sim20k] [--repeats 3] [--no-cold] [--no-r]
        [--tiers numpy,c] [--timeout 900]

Cases (:mod:`cox_cases`): kidney ``Surv(time, status) ~ age + sex + (1 | id)`` (76 rows, 38
clusters, coxme's exact Laplace), the same with Breslow ties, rats ``Surv(time, status) ~ rx +
(1 | litter)`` (300 rows, 100 litters: coxme's sparse rule) and sim20k ``Surv(time, status) ~ x1
+ x2 + (1 | cluster)`` (20,000 simulated rows, 1,000 clusters: sparse), Efron ties but one.

What is measured, every fit in a child process of its own:

- mixedppl **cold**: a new process with an empty PyTensor compile dir (and so an empty mixedppl
  function cache): import and the first fit, wall and CPU (children included);
- mixedppl **warm**, per tier (``MIXEDPPL_TIER``): in a new process on the filled compile dir,
  one fit, then the median wall and CPU of ``--repeats`` fits — the figure compared with coxme;
- **coxme** (``Rscript``): one warm-up fit, then the median of ``--repeats`` fits, the fit call
  only; **ratio** = mixedppl warm / coxme warm (target ≤ 0.5);
- the integrated log-likelihoods, checked against each other (coxme's optimiser is loose:
  ours may be higher, by at most 0.05).

The table is printed and written to ``benchmarks/results/cox_latest.md``, the raw numbers to
``benchmarks/results/cox_latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cox_cases import CASES, CoxCase

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

R_CODE = r"""
suppressMessages(library(coxme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[3]); ties <- args[4]
f <- as.formula(args[2])
fit <- coxme(f, d, ties = ties)                         # warm-up
wall <- c(); cpu <- c()
for (i in seq_len(repeats)) {
  t <- system.time(fit <- coxme(f, d, ties = ties))
  wall <- c(wall, t[["elapsed"]]); cpu <- c(cpu, t[["user.self"]] + t[["sys.self"]])
}
cat(sprintf('{"warm_s": %.6f, "warm_cpu_s": %.6f, "loglik": %.10f, "version": "%s"}\n',
            median(wall), median(cpu), fit$loglik[["Integrated"]],
            as.character(packageVersion("coxme"))))
"""


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def worker(case_name: str, repeats: int) -> None:
    """One child: import, first fit, then ``repeats`` warm fits; prints one JSON line."""
    t0, c0 = time.perf_counter(), _cpu()
    import mixedppl as mp
    case = CASES[case_name]
    data = case.load()
    t_import = time.perf_counter() - t0
    fit = mp.coxme(case.formula, data, ties=case.ties)
    first, first_cpu = time.perf_counter() - t0, _cpu() - c0
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), _cpu()
        fit = mp.coxme(case.formula, data, ties=case.ties)
        walls.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
    obj = fit.record.objective
    print(json.dumps({
        "import_s": t_import, "first_s": first, "first_cpu_s": first_cpu,
        "warm_s": statistics.median(walls) if walls else None,
        "warm_cpu_s": statistics.median(cpus) if cpus else None,
        "loglik": fit.loglik, "converged": fit.converged, "variance":
        fit.variance_components, "n_outer": fit.record.opt.n_evals, "n_newton": obj.n_inner,
        "n_hvp": obj.n_hvp, "maxrss_mb": resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """The child's last JSON line, or ``{"error": ...}``."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE,
                             env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip() or out.stdout.strip() or "no output").splitlines()[-1]
        return {"error": f"error: {tail[:150]}"}
    return json.loads(lines[-1])


def _env(compiledir: str | None, tier: str) -> dict:
    env = {"MIXEDPPL_TIER": tier}
    if compiledir is not None:
        env["PYTENSOR_FLAGS"] = ",".join(
            f for f in (os.environ.get("PYTENSOR_FLAGS"), f"compiledir={compiledir}") if f)
    return env


def run_mixedppl(case: CoxCase, args) -> dict:
    """Cold (empty compile dir, default tier), then warm per tier on the filled dir."""
    compiledir = tempfile.mkdtemp(prefix="cc_cox_bench_") if args.cold else None
    cmd = [sys.executable, __file__, "--worker", case.name]
    out: dict = {}
    try:
        if args.cold:
            out["cold"] = run_child(cmd + ["0"], args.timeout, _env(compiledir, "auto"))
        for tier in args.tiers.split(","):
            out[tier] = run_child(cmd + [str(args.repeats)], args.timeout,
                                  _env(compiledir, tier))
    finally:
        if compiledir:
            shutil.rmtree(compiledir, ignore_errors=True)
    return out


def run_coxme(case: CoxCase, args, csv: Path) -> dict:
    if args.no_r:
        return {"error": "not run (--no-r)"}
    if shutil.which("Rscript") is None:
        return {"error": "n/a (no Rscript)"}
    probe = subprocess.run(["Rscript", "-e", "cat(requireNamespace('coxme', quietly=TRUE))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "TRUE":
        return {"error": "n/a (coxme not installed)"}
    script = csv.parent / "coxme_bench.R"
    script.write_text(R_CODE)
    return run_child(["Rscript", str(script), str(csv), case.formula, str(args.repeats),
                      case.ties], args.timeout)


def _fmt(x, unit="s") -> str:
    return "—" if x is None else f"{x:.3f} {unit}"


def table(rows: dict, args) -> str:
    tiers = args.tiers.split(",")
    head = ["case", "rows", "cold (wall / CPU)"] + [f"warm {t} (wall / CPU)" for t in tiers]
    head += ["coxme warm (wall / CPU)", "ratio (best CPU / coxme CPU)", "logLik ours − coxme"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        mp_, peer = r["mixedppl"], r["coxme"]
        cold = mp_.get("cold", {})
        cells = [name, str(r["n"]), "—" if "error" in cold or not cold else
                 f"{cold['first_s']:.2f} / {cold['first_cpu_s']:.2f} s"]
        best = None
        for t in tiers:
            w = mp_.get(t, {})
            if "error" in w or not w:
                cells.append(w.get("error", "—"))
                continue
            cells.append(f"{w['warm_s']:.3f} / {w['warm_cpu_s']:.3f} s")
            best = w if best is None or w["warm_cpu_s"] < best["warm_cpu_s"] else best
        if "error" in peer:
            cells += [peer["error"], "—", "—"]
        else:
            cells.append(f"{peer['warm_s']:.3f} / {peer['warm_cpu_s']:.3f} s")
            cells.append("—" if best is None else
                         f"{best['warm_cpu_s'] / max(peer['warm_cpu_s'], 1e-3):.2f}")
            cells.append("—" if best is None else f"{best['loglik'] - peer['loglik']:+.2e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "REPEATS"))
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiers", default="numpy,c")
    ap.add_argument("--no-cold", dest="cold", action="store_false")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    load_start = os.getloadavg()[0]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="cox_bench_data_") as tmp:
        for name in args.cases.split(","):
            case = CASES[name]
            csv = Path(tmp) / f"{name}.csv"
            data = case.load()
            data.to_csv(csv, index=False)
            rows[name] = {"n": len(data), "formula": case.formula,
                          "mixedppl": run_mixedppl(case, args),
                          "coxme": run_coxme(case, args, csv),
                          "load": os.getloadavg()[0]}
            print(name, json.dumps(rows[name]), flush=True)
    text = table(rows, args)
    pre = (f"# Cox frailty fits: mixedppl vs R coxme\n\n{platform.platform()}, "
           f"{os.cpu_count()} cores; load average {load_start:.2f} at start, "
           f"{os.getloadavg()[0]:.2f} at end; repeats {args.repeats}. "
           "Produced by `python benchmarks/bench_cox.py` (see its docstring for what each "
           "column measures).\n\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cox_latest.md").write_text(pre + text + "\n")
    (RESULTS / "cox_latest.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()

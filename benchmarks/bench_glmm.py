"""Benchmark mixedppl's GLMM and CLMM fits against lme4, glmmTMB and ordinal, in one run.

Usage::

    python benchmarks/bench_glmm.py [--cases cbpp_laplace,cbpp_agq25,grouseticks_poisson,
        grouseticks_nb,wine_laplace,wine_agq10] [--repeats 3] [--no-cold] [--cold-cases ...]
        [--timeout 900] [--max-repeat-s 60] [--no-r] [--note TEXT]

Cases (``glmm_worker.CASES``; the R call of each is in ``glmm_worker.R``):

- cbpp, binomial, Laplace and nAGQ=25: ``mp.glmer("cbind(incidence, size - incidence) ~ period +
  (1 | herd)", cbpp, family="binomial"[, nAGQ=25])`` against lme4 ``glmer(..., binomial[, nAGQ =
  25])``;
- grouseticks, Poisson: ``TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)``
  against lme4;
- grouseticks, negative binomial (NB2): ``TICKS ~ YEAR + (1 | LOCATION)`` against glmmTMB
  ``nbinom2``;
- Salamanders, zero-inflated NB2 (glmmTMB's example): ``count ~ mined + (1 | site)``,
  ``ziformula="~ mined"``, against glmmTMB ``nbinom2``; Owls, NB1 with an offset:
  ``SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest)`` against glmmTMB
  ``nbinom1``;
- wine CLMM, Laplace and nAGQ=10: ``mp.clmm("rating ~ temp + contact + (1 | judge)", wine[,
  nAGQ=10])`` against ``ordinal::clmm(...)``.

What is measured. Every fit runs in a child process of its own under a time limit:

- mixedppl **cold**: a new process with ``PYTENSOR_FLAGS=compiledir=<new empty temp dir>``: the
  import of mixedppl and the whole first fit (graph building, C compilation, the fit), wall and
  CPU; the CPU includes the C compiler's processes (``RUSAGE_CHILDREN``). Skipped with
  ``--no-cold``; ``--cold-cases`` limits it to some cases.
- mixedppl **new process**: a second new process on the compile dir the cold run filled (the
  state of a user's default compile dir after a first run): the first fit (graph building and
  rewriting, loading the cached C modules, the fit). Without a cold run for a case it uses the
  default compile dir and is marked so (it compiled if that dir lacked the modules: the gcc CPU
  is shown).
- mixedppl **warm**: that process's later fits, compiled functions cached in memory: median wall
  and CPU of ``--repeats``. This is the figure compared with the peer.
- **peer** (``Rscript glmm_worker.R``): one warm-up fit, then the median wall and CPU (user +
  system) of ``--repeats`` fits in that R process; the fit call only.
- **ratio**: peer warm / mixedppl warm (above 1: mixedppl is faster).
- **logLik**: ours, the peer's, and the difference, checked against 1e-3 in every run (lme4's
  nAGQ > 1 binomial logLik is put back on the full-likelihood scale; see ``glmm_worker.R``).
- **load**: the 1-minute load average when the case started; the run's start / end load
  averages are in the preamble. Timings on a shared machine move with its load (compare CPU
  times when the load exceeds the number of cores), and compare numbers from one run only.

The markdown table is printed and written to ``benchmarks/results/glmm_latest.md``, the raw
numbers to ``benchmarks/results/glmm_latest.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glmm_worker import CASES, Case

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parent / "mixedppl" / "datasets" / "data"
LOGLIK_TOL = 1e-3
R_PACKAGES = ("lme4", "glmmTMB", "ordinal", "jsonlite")


# --- running children -----------------------------------------------------------------------

def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run one child; its last JSON line (plus ``process_s``, the child's whole wall time), or
    ``{"error": ...}`` on failure or timeout."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE,
                             env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    process_s = time.perf_counter() - t0
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip() or out.stdout.strip() or "no output").splitlines()[-1]
        return {"error": f"error: {tail[:150]}"}
    return {**json.loads(lines[-1]), "process_s": process_s}


def python_worker(case: Case, repeats: int, args, env=None) -> dict:
    cmd = [sys.executable, str(HERE / "glmm_worker.py"), case.name, str(repeats),
           str(args.max_repeat_s)]
    return run_child(cmd, args.timeout, env)


def with_compiledir(compiledir: str) -> dict[str, str]:
    flags = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS"), f"compiledir={compiledir}")
                     if f)
    return {"PYTENSOR_FLAGS": flags}


def run_mixedppl(case: Case, args, cold: bool) -> dict:
    """Cold run on an empty compile dir, then the new-process + warm run on the filled dir; or,
    without the cold run, the new-process + warm run on the default compile dir."""
    if not cold:
        warm = python_worker(case, args.repeats, args)
        return {"cold": {"error": "not run"}, "warm": warm, "compiledir": "default"}
    compiledir = tempfile.mkdtemp(prefix="cc_glmm_bench_")
    env = with_compiledir(compiledir)
    try:
        cold_res = python_worker(case, 0, args, env)
        if "error" not in cold_res:
            cold_res["n_modules"] = sum(1 for _ in Path(compiledir).rglob("*.so"))
        warm = python_worker(case, args.repeats, args, env)
    finally:
        shutil.rmtree(compiledir, ignore_errors=True)
    return {"cold": cold_res, "warm": warm, "compiledir": "fresh (filled by the cold run)"}


def r_available() -> dict[str, bool]:
    if shutil.which("Rscript") is None:
        return {p: False for p in R_PACKAGES}
    code = "cat(sapply(c(%s), requireNamespace, quietly = TRUE))" % ", ".join(
        f'"{p}"' for p in R_PACKAGES)
    probe = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    flags = probe.stdout.split()
    return {p: len(flags) == len(R_PACKAGES) and flags[i] == "TRUE"
            for i, p in enumerate(R_PACKAGES)}


def run_peer(case: Case, args, available: dict[str, bool]) -> dict:
    if args.no_r:
        return {"error": "not run (--no-r)"}
    missing = [p for p in (case.peer, "jsonlite") if not available.get(p)]
    if missing:
        return {"error": f"n/a ({', '.join(missing)} not installed)"}
    cmd = ["Rscript", str(HERE / "glmm_worker.R"), case.name, str(DATA), str(args.repeats),
           str(args.max_repeat_s)]
    return run_child(cmd, args.timeout)


# --- the table ------------------------------------------------------------------------------

def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def fit_time(res: dict) -> float | None:
    """The time a result stands for: the warm median, else the single (warm-up) fit."""
    return res.get("warm_s") if res.get("warm_s") is not None else res.get("first_s")


def fit_cpu(res: dict) -> float | None:
    return res.get("cpu_s") if res.get("warm_s") is not None else res.get("first_cpu_s")


def cold_cell(cold: dict) -> str:
    if "error" in cold:
        return cold["error"]
    cpu = cold["import_cpu_s"] + cold["first_cpu_s"] + cold["children_cpu_s"]
    return (f"{fmt_s(cold['import_s'] + cold['first_s'])} (import {fmt_s(cold['import_s'])} + "
            f"fit {fmt_s(cold['first_s'])}; cpu {fmt_s(cpu)} incl. gcc "
            f"{fmt_s(cold['children_cpu_s'])}; {cold.get('n_modules', '?')} C modules)")


def new_process_cell(warm: dict, compiledir: str) -> str:
    if "error" in warm:
        return warm["error"]
    cell = f"{fmt_s(warm['first_s'])} (cpu {fmt_s(warm['first_cpu_s'])})"
    if compiledir == "default":
        cell += " [default compile dir"
        cell += (f"; compiled, gcc cpu {fmt_s(warm['children_cpu_s'])}]"
                 if warm["children_cpu_s"] > 1 else "]")
    return cell


def timing_cell(res: dict) -> str:
    if "error" in res:
        return res["error"]
    cell = f"{fmt_s(fit_time(res))} (cpu {fmt_s(fit_cpu(res))})"
    if res.get("warm_s") is None:
        cell += " (1 fit)"
    if res.get("converged") is False:
        cell += " (not converged)"
    return cell


def loglik_cells(ours: dict, peer: dict) -> list[str]:
    ll_ours, ll_peer = ours.get("loglik"), peer.get("loglik")
    cells = [f"{x:.4f}" if x is not None else "–" for x in (ll_ours, ll_peer)]
    if ll_peer is not None and peer.get("loglik_raw") is not None \
            and abs(peer["loglik_raw"] - ll_peer) > 1e-9:
        cells[1] += f" (printed {peer['loglik_raw']:.4f})"
    if ll_ours is None or ll_peer is None:
        return cells + ["–"]
    diff = ll_ours - ll_peer
    ok = "ok" if abs(diff) <= LOGLIK_TOL else f"**differs by more than {LOGLIK_TOL:g}**"
    return cells + [f"{diff:+.1e} ({ok})"]


def table_row(case: Case, res: dict) -> str:
    ours = res["mixedppl"]
    warm, peer = ours["warm"], res["peer"]
    ours_t, peer_t = fit_time(warm) if "error" not in warm else None, \
        fit_time(peer) if "error" not in peer else None
    ratio = f"{peer_t / ours_t:.2g}×" if ours_t and peer_t else "–"
    cells = [case.name, cold_cell(ours["cold"]), new_process_cell(warm, ours["compiledir"]),
             timing_cell(warm), f"{case.peer} {peer.get('version', '')}".strip(),
             timing_cell(peer), ratio, *loglik_cells(warm, peer), f"{res['load_before'][0]:.2f}"]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| case | mixedppl cold: import + first fit | new process: first fit | mixedppl warm "
          "| peer | peer warm | ratio (peer/ours warm) | logLik ours | logLik peer "
          "| Δ logLik (ours − peer) | load (1 min) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def versions(available: dict[str, bool]) -> str:
    found = []
    for dist in ("mixedppl", "pytensor"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    pkgs = [p for p in ("lme4", "glmmTMB", "ordinal") if available.get(p)]
    if pkgs:
        code = "cat(paste(R.version$major, R.version$minor, sep = '.'), %s)" % ", ".join(
            f'as.character(packageVersion("{p}"))' for p in pkgs)
        probe = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
        v = probe.stdout.split()
        if len(v) == len(pkgs) + 1:
            found.append(f"R {v[0]}, " + ", ".join(f"{p} {x}" for p, x in zip(pkgs, v[1:])))
    return ", ".join(found)


def fmt_load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def preamble(args, available, load) -> str:
    text = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {versions(available)}. "
            f"Warm and peer times: median of {args.repeats} fits after a first one, wall "
            f"(CPU in brackets). Load average (1 / 5 / 15 min) at the start: {fmt_load(load)}.")
    return text + (f" {args.note}" if args.note else "")


def notes(raw: dict, load_end) -> list[str]:
    out = ["", f"Load average (1 / 5 / 15 min) at the end: {fmt_load(load_end)}."]
    for name, res in raw["cases"].items():
        case = CASES[name]
        out.append(f"- **{name}**: peer call `{case.peer_call}`."
                   + (f" {case.note}." if case.note else ""))
    wine = raw["cases"].get("wine_laplace")
    if wine and "error" not in wine["mixedppl"]["warm"]:
        t = fit_time(wine["mixedppl"]["warm"])
        out.append(f"- wine CLMM context (the issue): statspai 0.6 s, interlace 1.5 s, target "
                   f"warm ≤ 0.1 s; mixedppl warm here {fmt_s(t)} (cpu "
                   f"{fmt_s(fit_cpu(wine['mixedppl']['warm']))}) — "
                   f"{'meets' if t <= 0.1 else 'does not meet'} the target in this run.")
    return out


# --- main -----------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cold", action="store_true", help="skip the empty-compile-dir runs")
    ap.add_argument("--cold-cases", default=None,
                    help="comma-separated cases to run cold (default: all of --cases)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    ap.add_argument("--max-repeat-s", type=float, default=60,
                    help="no repeats when the first fit takes longer than this")
    ap.add_argument("--no-r", action="store_true", help="skip the R peers")
    ap.add_argument("--note", default="", help="free text appended to the preamble")
    args = ap.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    args.cold_cases = (args.cases if args.cold_cases is None
                       else [c for c in args.cold_cases.split(",") if c])
    unknown = (set(args.cases) | set(args.cold_cases)) - set(CASES)
    if unknown:
        ap.error(f"unknown case: {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    available = r_available() if not args.no_r else {}
    load_start = os.getloadavg()
    lines = [preamble(args, available, load_start), "", HEADER]
    raw = {"meta": {"args": vars(args), "load_start": load_start, "cpus": os.cpu_count(),
                    "preamble": lines[0]}, "cases": {}}
    print("\n".join(lines), flush=True)
    t_run = time.perf_counter()
    for name in args.cases:
        case = CASES[name]
        res = {"load_before": os.getloadavg()}
        res["mixedppl"] = run_mixedppl(case, args,
                                       cold=not args.no_cold and name in args.cold_cases)
        res["peer"] = run_peer(case, args, available)
        res["load_after"] = os.getloadavg()
        raw["cases"][name] = res
        lines.append(table_row(case, res))
        print(lines[-1], flush=True)
    load_end = os.getloadavg()
    raw["meta"].update(load_end=load_end, run_s=time.perf_counter() - t_run)
    tail = notes(raw, load_end)
    print("\n".join(tail), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "glmm_latest.md").write_text("\n".join(lines + tail) + "\n")
    (RESULTS / "glmm_latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

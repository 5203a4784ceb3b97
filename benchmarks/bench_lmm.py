"""Benchmark mixedppl's REML LMM fits against R's lme4 and Python peers, all in one run.

Usage::

    python benchmarks/bench_lmm.py [--cases sleepstudy,penicillin,insteval,synth100k]
        [--peers lme4,statsmodels,pystatistics,interlace] [--repeats 3]
        [--timeout 600] [--statsmodels-timeout 300] [--max-repeat-s 60]

What is measured. Every fit runs in its own child process (``lmm_worker.py``, or
``lmm_worker.R`` for lme4) under a time limit, so a hang or crash only fills one cell:

- mixedppl **cold**: a new process with ``PYTENSOR_FLAGS=compiledir=<new empty temp dir>``: the
  whole first ``mp.lmer`` call (graph building, C compilation, the fit). Import time separately.
- mixedppl **new process**: a second new process on that now-filled compile dir (as a user's
  default compile dir is after a first run): the first ``mp.lmer`` call (graph building and
  rewriting, loading the cached C modules, the fit).
- mixedppl **warm**: the same process's later ``mp.lmer`` calls: median of ``--repeats``.
- **peak RSS**: ``ru_maxrss`` of that new-process/warm child (the Python process itself).
- **peers** (lme4 via ``Rscript``; statsmodels ``MixedLM``; pystatistics ``mixed.lmm``;
  interlace-lme ``interlace.fit``): one warm-up fit, then the median of ``--repeats`` fits in
  the same process, the fit call only (start-up, import and data preparation not timed). When
  the warm-up alone takes longer than ``--max-repeat-s`` that single time is shown, marked
  "(1 fit)". statsmodels runs only where its native forms express the model (one grouping
  factor, or crossed random intercepts as variance components of one all-enclosing group).
- **logLik** of every tool: a peer cell notes "ΔlogLik" when the peer's REML logLik differs from
  lme4's by more than 1e-3 (it stopped short of lme4's optimum).

The markdown table is printed and written to ``benchmarks/results/lmm_latest.md``, the raw
numbers to ``benchmarks/results/lmm_latest.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmm_cases import CASES, Case

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PEERS = ("lme4", "statsmodels", "pystatistics", "interlace")
PY_MODULES = {"statsmodels": "statsmodels", "pystatistics": "pystatistics",
              "interlace": "interlace"}
DISTRIBUTIONS = {"mixedppl": "mixedppl", "pytensor": "pytensor", "statsmodels": "statsmodels",
                 "pystatistics": "pystatistics", "interlace": "interlace-lme"}
STATSMODELS_CASES = ("sleepstudy", "penicillin")
LOGLIK_TOL = 1e-3


# --- running children -----------------------------------------------------------------------

def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run one child; its last JSON line, or ``{"error": ...}`` on failure or timeout."""
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


def python_worker(tool: str, case: Case, repeats: int, args, env=None, timeout=None) -> dict:
    cmd = [sys.executable, str(HERE / "lmm_worker.py"), tool, case.name, str(repeats),
           str(args.max_repeat_s)]
    return run_child(cmd, timeout or args.timeout, env)


def run_mixedppl(case: Case, args) -> dict:
    """Cold run on an empty compile dir, then new-process + warm runs on the filled dir."""
    compiledir = tempfile.mkdtemp(prefix="mixedppl-bench-compiledir-")
    flags = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS"), f"compiledir={compiledir}")
                     if f)
    try:
        cold = python_worker("mixedppl", case, 0, args, env={"PYTENSOR_FLAGS": flags})
        warm = python_worker("mixedppl", case, args.repeats, args, env={"PYTENSOR_FLAGS": flags})
    finally:
        shutil.rmtree(compiledir, ignore_errors=True)
    return {"cold": cold, "warm": warm}


def lme4_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", 'cat(requireNamespace("lme4", quietly=TRUE))'],
                           capture_output=True, text=True)
    return probe.stdout.strip().endswith("TRUE")


def run_lme4(case: Case, args) -> dict:
    cmd = ["Rscript", str(HERE / "lmm_worker.R"), str(case.csv), case.formula,
           ",".join(case.factors), str(args.repeats), str(args.max_repeat_s)]
    return run_child(cmd, args.timeout)


def run_peer(peer: str, case: Case, args, available: dict[str, bool]) -> dict:
    if peer not in args.peers:
        return {"error": "not run"}
    if not available[peer]:
        return {"error": "n/a (not installed)"}
    if peer == "lme4":
        return run_lme4(case, args)
    if peer == "statsmodels":
        if case.name not in STATSMODELS_CASES:
            return {"error": "not run (crossed model too large for MixedLM)"}
        return python_worker(peer, case, args.repeats, args, timeout=args.statsmodels_timeout)
    return python_worker(peer, case, args.repeats, args)


def availability() -> dict[str, bool]:
    found = {p: importlib.util.find_spec(m) is not None for p, m in PY_MODULES.items()}
    return {"lme4": lme4_available(), **found}


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


def peer_cell(res: dict, reference: float | None) -> str:
    if "error" in res:
        return res["error"]
    cell = fmt_s(fit_time(res)) + (" (1 fit)" if res.get("warm_s") is None else "")
    if reference is not None and abs(res["loglik"] - reference) > LOGLIK_TOL:
        cell += f" (ΔlogLik {res['loglik'] - reference:+.3g})"
    if res.get("converged") is False:
        cell += " (not converged)"
    return cell


def ratio_cell(peers: dict[str, dict], ours: float | None) -> str:
    parts = [f"{p} {fit_time(r) / ours:.2g}×" for p, r in peers.items()
             if "error" not in r and ours]
    return ", ".join(parts) or "–"


def table_row(case: Case, res: dict) -> str:
    cold, warm = res["mixedppl"]["cold"], res["mixedppl"]["warm"]
    peers = {p: res[p] for p in PEERS}
    lme4_ll = peers["lme4"].get("loglik")
    ours = warm.get("warm_s")
    cells = [case.name]
    cells.append(cold["error"] if "error" in cold
                 else f"{fmt_s(cold['first_s'])} (+{fmt_s(cold['import_s'])} import)")
    if "error" in warm:
        cells += [warm["error"], "–", "–"]
    else:
        cells += [f"{fmt_s(warm['first_s'])} (+{fmt_s(warm['import_s'])} import)",
                  fmt_s(ours), f"{warm['rss_mb']:.0f} MB"]
    reference = lme4_ll if lme4_ll is not None else warm.get("loglik")
    cells += [peer_cell(peers[p], None if p == "lme4" else reference) for p in PEERS]
    cells.append(ratio_cell(peers, ours))
    ours_ll = warm.get("loglik", cold.get("loglik"))
    ll = [f"{x:.4f}" if x is not None else "–" for x in (ours_ll, lme4_ll)]
    if ours_ll is not None and lme4_ll is not None and abs(ours_ll - lme4_ll) > LOGLIK_TOL:
        ll[0] += " (differs)"
    cells.append(", ".join(ll))
    return "| " + " | ".join(cells) + " |"


HEADER = ("| case | mixedppl cold | new process | warm | peak RSS | lme4 | statsmodels "
          "| pystatistics | interlace | ratio (peer/mixedppl warm) | logLik (ours, lme4) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def versions() -> str:
    found = []
    for label, dist in DISTRIBUTIONS.items():
        try:
            found.append(f"{label} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def preamble(args) -> str:
    return (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {versions()}. "
            f"Warm and peer times: median of {args.repeats} fits after a first one.")


# --- main -----------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per child process")
    ap.add_argument("--statsmodels-timeout", type=float, default=300)
    ap.add_argument("--max-repeat-s", type=float, default=60,
                    help="no repeats when the first fit takes longer than this")
    args = ap.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = set(args.cases) - set(CASES) | set(args.peers) - set(PEERS)
    if unknown:
        ap.error(f"unknown case or peer: {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    available = availability()
    lines, raw = [preamble(args), "", HEADER], {}
    print("\n".join(lines), flush=True)
    for name in args.cases:
        case = CASES[name]
        res = {"mixedppl": run_mixedppl(case, args)}
        for peer in PEERS:
            res[peer] = run_peer(peer, case, args, available)
        raw[name] = res
        lines.append(table_row(case, res))
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lmm_latest.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "lmm_latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

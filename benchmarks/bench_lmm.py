"""Benchmark: mixedppl's LMM fits against R's lme4 and Python peers, in one run.

What is measured (each tool in its own subprocess, so a hang or crash cannot stop the table):

- mixedppl **cold**: a new process with an empty PyTensor compile directory
  (``PYTENSOR_FLAGS=compiledir=<empty temp dir>``): the first ``mp.lmer`` call, i.e. C compilation
  of the graphs + the fit. Import time is reported separately.
- mixedppl **new process**: a new process with the default (warm) compile directory: first
  ``mp.lmer`` call (graph rewriting and linking cached C modules + the fit).
- mixedppl **warm**: later ``mp.lmer`` calls in the same process (compiled function cached
  in-process): median of ``--repeats``.
- **peak RSS** of the warm mixedppl process.
- **lme4**: ``lme4::lmer`` via ``Rscript`` (if R is installed), median of ``--repeats`` after one
  warm-up fit. **statsmodels** ``MixedLM`` (REML; crossed terms as variance components of one
  all-encompassing group), **pystatistics** (``pystatistics.mixed.lmm``) and **interlace-lme**
  (``interlace.fit``): one fit each in a new process (their own start-up not timed), with a
  time limit; "n/a" where not installed (``pip install -r benchmarks/requirements.txt``).

Usage: ``python benchmarks/bench_lmm.py [--cases sleepstudy,penicillin,insteval,synth100k]
[--repeats 3] [--timeout 600]``. Writes the table to ``benchmarks/results/lmm_latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    "insteval": ("y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", "insteval"),
    "synth100k": ("y ~ 1 + x + (1 + x | subject) + (1 | item)", str(HERE / "data" / "synth_crossed_100k.csv")),
}
PEERS = ("lme4", "statsmodels", "pystatistics", "interlace")
FACTORS = {"sleepstudy": ["Subject"], "penicillin": ["plate", "sample"],
           "insteval": ["s", "d", "dept", "service"], "synth100k": ["subject", "item"]}

_MIXEDPPL = textwrap.dedent("""
    import json, resource, statistics, sys, time, warnings
    t0 = time.perf_counter()
    import mixedppl as mp
    import pandas as pd
    t_import = time.perf_counter() - t0
    formula, source, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = pd.read_csv(source) if source.endswith(".csv") else mp.datasets.load(source)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter(); fit = mp.lmer(formula, data); first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fit = mp.lmer(formula, data); warm.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"import": t_import, "first": first, "warm": statistics.median(warm) if warm else None,
                      "loglik": fit.loglik, "rss_mb": rss, "converged": fit.converged}))
""")

_R = textwrap.dedent("""
    suppressMessages(library(lme4))
    args <- commandArgs(TRUE)
    d <- read.csv(args[1]); for (f in strsplit(args[3], ",")[[1]]) d[[f]] <- factor(d[[f]])
    form <- as.formula(args[2]); reps <- as.integer(args[4])
    m <- lmer(form, d)
    times <- sapply(seq_len(reps), function(i) system.time(m <<- lmer(form, d))[["elapsed"]])
    cat(sprintf('{"time": %.6f, "loglik": %.6f}\\n', median(times), as.numeric(logLik(m))))
""")

_STATSMODELS = textwrap.dedent("""
    import json, sys, time, warnings
    import pandas as pd, statsmodels.formula.api as smf
    import mixedppl as mp
    warnings.simplefilter("ignore")
    case = sys.argv[1]
    if case == "sleepstudy":
        d = mp.datasets.load("sleepstudy")
        t0 = time.perf_counter()
        r = smf.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit(reml=True)
    else:
        d = mp.datasets.load("penicillin").assign(one=1)
        t0 = time.perf_counter()
        r = smf.mixedlm("diameter ~ 1", d, groups="one", re_formula="0",
                        vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"}).fit(reml=True)
    print(json.dumps({"time": time.perf_counter() - t0, "loglik": float(r.llf)}))
""")


_PY_PEERS = textwrap.dedent("""
    import json, sys, time, warnings
    import numpy as np, pandas as pd
    import mixedppl as mp
    warnings.simplefilter("ignore")
    peer, case, formula, source = sys.argv[1:5]
    data = pd.read_csv(source) if source.endswith(".csv") else mp.datasets.load(source)
    fixed = formula.split("+ (")[0].strip()
    randoms = ["(" + t.strip() for t in formula.split("+ (")[1:]]
    if peer == "interlace":
        import interlace
        t0 = time.perf_counter()
        r = interlace.fit(fixed, data, random=randoms, method="REML")
        out = {"time": time.perf_counter() - t0, "loglik": float(r.llf)}
    else:
        from pystatistics.mixed import lmm
        spec = mp.Model(formula, data).spec
        groups, re, rd = {}, {}, {}
        for t in spec.terms:
            labels = np.asarray(t.levels, dtype=object)[t.codes]
            key = t.group if t.group not in groups else t.group + "_2"
            groups[key] = labels
            names = ["1" if c == "(Intercept)" else c for c in t.column_names]
            re[key] = names
            for c in t.column_names:
                if c != "(Intercept)":
                    rd[c] = t.z[:, t.column_names.index(c)]
        t0 = time.perf_counter()
        r = lmm(spec.y, spec.X, groups=groups, random_effects=re, random_data=rd or None,
                compute_satterthwaite=False)
        out = {"time": time.perf_counter() - t0, "loglik": float(r.log_likelihood)}
    print(json.dumps(out))
""")


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:120]}
    return json.loads(lines[-1])


def mixedppl_runs(case: str, repeats: int, timeout: float) -> dict:
    formula, source = CASES[case]
    cmd = [sys.executable, "-c", _MIXEDPPL, formula, source]
    cold_dir = tempfile.mkdtemp(prefix="pytensor-cold-")
    try:
        cold = _run(cmd + ["0"], timeout, {"PYTENSOR_FLAGS": f"compiledir={cold_dir}"})
    finally:
        shutil.rmtree(cold_dir, ignore_errors=True)
    _run(cmd + ["0"], timeout)  # make sure the default compile dir holds this structure
    warm = _run(cmd + [str(repeats)], timeout)
    return {"cold": cold, "warm": warm}


def lme4_run(case: str, repeats: int, timeout: float) -> dict:
    if shutil.which("Rscript") is None:
        return {"error": "n/a (R not installed)"}
    formula, source = CASES[case]
    with tempfile.TemporaryDirectory() as tmp:
        csv = source
        if not source.endswith(".csv"):
            import mixedppl as mp
            csv = str(Path(tmp) / f"{case}.csv")
            mp.datasets.load(source).to_csv(csv, index=False)
        script = Path(tmp) / "fit.R"
        script.write_text(_R)
        return _run(["Rscript", str(script), csv, formula, ",".join(FACTORS[case]), str(repeats)],
                    timeout)


def statsmodels_run(case: str, timeout: float) -> dict:
    if case not in ("sleepstudy", "penicillin"):
        return {"error": "not run (crossed model of this size: > 600 s)"}
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        return {"error": "n/a (not installed)"}
    return _run([sys.executable, "-c", _STATSMODELS, case], timeout)


def py_peer_run(peer: str, case: str, timeout: float) -> dict:
    module = {"interlace": "interlace", "pystatistics": "pystatistics"}[peer]
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    if probe.returncode != 0:
        return {"error": "n/a (not installed)"}
    formula, source = CASES[case]
    return _run([sys.executable, "-c", _PY_PEERS, peer, case, formula, source], timeout)


def _fmt(x, digits=2):
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if x >= 0.1 else f"{x * 1000:.0f} ms"


def row(case: str, res: dict) -> str:
    cold, warm = res["mixedppl"]["cold"], res["mixedppl"]["warm"]
    peers = [res[p] for p in PEERS]
    if "error" in warm:
        return f"| {case} | error: {warm['error']} |" + " |" * (4 + 2 * len(PEERS))
    ours = warm["warm"]
    cells = [case, f"{_fmt(cold.get('first'))} (+{_fmt(cold.get('import'))} import)",
             f"{_fmt(warm['first'])} (+{_fmt(warm['import'])} import)", _fmt(ours),
             f"{warm['rss_mb']:.0f} MB"]
    for peer in peers:
        cells.append(peer["error"] if "error" in peer else _fmt(peer["time"]))
        cells.append("" if "error" in peer else f"{peer['time'] / ours:.1f}×")
    logliks = [f"{warm['loglik']:.4f}"] + [f"{p['loglik']:.4f}" if "loglik" in p else "–"
                                           for p in peers]
    cells.append(" / ".join(logliks))
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    header = ("| case | mixedppl cold (empty compile dir) | new process | warm | peak RSS | "
              + " | ".join(f"{p} | {p}/ours" for p in PEERS)
              + " | logLik (ours / " + " / ".join(PEERS) + ") |\n|"
              + "---|" * (6 + 2 * len(PEERS)))
    lines = [header]
    print(header, flush=True)
    for case in args.cases.split(","):
        res = {"mixedppl": mixedppl_runs(case, args.repeats, args.timeout),
               "lme4": lme4_run(case, args.repeats, args.timeout),
               "statsmodels": statsmodels_run(case, args.timeout),
               "pystatistics": py_peer_run("pystatistics", case, args.timeout),
               "interlace": py_peer_run("interlace", case, args.timeout)}
        lines.append(row(case, res))
        print(lines[-1], flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "lmm_latest.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time to first result (issue 12): whole-process timings of mixedppl beside its peers.

Usage::

    python benchmarks/bench_startup.py [--only cold,never_seen,same_process,inference,
        many_modules,concurrent,peers] [--timeout 900] [--modules 3000] [--repeat 5]

mixedppl's sources are byte-compiled first (``__pycache__``, what Python's first import writes;
:func:`_bytecode`). Every row is one or more **new processes** (``python -c ...``), each with its
own compile dir
(``PYTENSOR_FLAGS=compiledir=<temp dir>``; mixedppl's disk cache lives inside it), so runs never
share state with the user's caches. Each row reports the wall time of the whole process (start,
import, data, fit, ``summary()``) and its CPU time (user + sys of the process and its children,
the C compiler included): on a shared machine wall time alone says little.

Rows:

- **cold**: an empty compile dir (a new user's first run): sleepstudy ``lmer``, cbpp ``glmer``,
  wine ``clmm``, each + ``summary()``;
- **new process**: the same again, on the compile dir the cold run filled;
- **never seen**: a structure not fitted before (LMM crossed, GLMM Poisson, CLMM two terms,
  negative binomial GLMM) in a new process whose compile dir holds the three models above;
- **same process**: the first fit of a second structure after another model in one process;
- **inference**: ``summary()`` (Satterthwaite df), ``confint()`` (Wald), ``anova(m0, m1)`` on a
  fitted model: the wall time of each call and the functions it compiled;
- **many modules**: the new-process row with ``--modules`` foreign module folders added to the
  compile dir (PyTensor's module cache reads every folder when it is first used);
- **concurrent**: four processes fitting the four never-seen structures at once into one empty
  compile dir (none may fail), against the first of them (the LMM, the least work) alone and
  against the mean of the four alone (each in its own empty dir); ``--repeat`` rounds of both,
  medians (one round's ratio varies by ±30 % on a shared machine);
- **peers**: statsmodels ``MixedLM`` (sleepstudy, whole process), lme4 through ``Rscript`` when
  it exists (incl. loading lmerTest). Both optional; run first and last (run 1, run 2): the
  same process varied by ±20 % within one run on a shared machine.

mixedppl runs with its default tier ("auto": a first fit on the NumPy tier, the C tier built in
the background, see ``docs/compile.md``); ``MIXEDPPL_TIER`` in the environment overrides it.
The markdown table is printed and written to ``benchmarks/results/startup_latest.md``, the raw
numbers to ``benchmarks/results/startup_latest.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: peers run first and last: on a shared machine the same statsmodels process took 1.5-2.1 s
#: within one run, and each ratio is better read against the nearer of the two
SECTIONS = ("peers", "cold", "never_seen", "same_process", "inference", "many_modules",
            "concurrent", "peers")

FIT = {
    "sleepstudy lmer": 'mp.lmer("Reaction ~ Days + (Days | Subject)", '
                       'mp.datasets.load("sleepstudy"))',
    "cbpp glmer": 'mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", '
                  'mp.datasets.load("cbpp"), family="binomial")',
    "wine clmm": 'mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))',
}
NEVER_SEEN = {
    "Penicillin lmer (crossed)": 'mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", '
                                 'mp.datasets.load("penicillin"))',
    "grouseticks glmer poisson": 'mp.glmer("TICKS ~ YEAR + (1 | BROOD)", '
                                 'mp.datasets.load("grouseticks"), family="poisson")',
    "wine clmm (judge + bottle)": 'mp.clmm("rating ~ temp + (1 | judge) + (1 | bottle)", '
                                  'mp.datasets.load("wine"))',
    "grouseticks glmer NB2": 'mp.glmer("TICKS ~ YEAR + (1 | LOCATION)", '
                             'mp.datasets.load("grouseticks"), family="negative_binomial")',
}

CHILD = """
import time, json, warnings
t0 = time.perf_counter()
warnings.simplefilter("ignore")
import mixedppl as mp
from mixedppl.core import compile as C
t1 = time.perf_counter()
fit = {fit}
t2 = time.perf_counter()
str(fit.summary())
t3 = time.perf_counter()
print("RESULT " + json.dumps(dict(import_s=t1 - t0, fit_s=t2 - t1, summary_s=t3 - t2,
                                  stats=dict(C.cache_stats))))
"""


def _env(compiledir: Path) -> dict[str, str]:
    env = dict(os.environ)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and
             not f.startswith("compiledir")]
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"compiledir={compiledir}"])
    env.pop("MIXEDPPL_CACHE_DIR", None)             # the default: <compiledir>/mixedppl
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(code: str, env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, time.perf_counter()


def _finish(proc: subprocess.Popen, t_start: float, timeout: float) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t_start
    res: dict = {"ok": proc.returncode == 0, "wall_s": wall}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            res.update(json.loads(line[7:]))
    if proc.returncode != 0:
        res["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
    return res


def run_process(code: str, env: dict[str, str], timeout: float) -> dict:
    """One child process: its wall time and CPU time (user + sys, its children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = _finish(*_start(code, env), timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def _fmt(res: dict) -> str:
    if not res.get("ok"):
        return f"failed: {res.get('error', '?')}"
    text = f"{res['wall_s']:.1f} s (CPU {res['cpu_s']:.1f} s)"
    if "fit_s" in res:
        text += f"; fit {res['fit_s']:.2f} s"
    return text


def section_cold(rows: list, dirs: dict, args) -> None:
    warm = Path(tempfile.mkdtemp(prefix="startup_warm_"))
    dirs["warm"] = warm
    for name, fit in FIT.items():
        cold = Path(tempfile.mkdtemp(prefix="startup_cold_"))
        res = run_process(CHILD.format(fit=fit), _env(cold), args.timeout)
        again = run_process(CHILD.format(fit=fit), _env(cold), args.timeout)
        rows.append(("empty compile dir", name, res))
        rows.append(("new process, same compile dir", name, again))
        run_process(CHILD.format(fit=fit), _env(warm), args.timeout)  # fills the shared dir
        shutil.rmtree(cold, ignore_errors=True)


def _warm_dir(dirs: dict, args) -> Path:
    if "warm" not in dirs:
        warm = Path(tempfile.mkdtemp(prefix="startup_warm_"))
        for fit in FIT.values():
            run_process(CHILD.format(fit=fit), _env(warm), args.timeout)
        dirs["warm"] = warm
    return dirs["warm"]


def section_never_seen(rows: list, dirs: dict, args) -> None:
    warm = _warm_dir(dirs, args)
    for name, fit in NEVER_SEEN.items():
        scratch = Path(tempfile.mkdtemp(prefix="startup_seen_"))
        shutil.copytree(warm, scratch, dirs_exist_ok=True, symlinks=True)
        rows.append(("never-seen structure, new process", name,
                     run_process(CHILD.format(fit=fit), _env(scratch), args.timeout)))
        shutil.rmtree(scratch, ignore_errors=True)


SAME_PROCESS = """
import time, json, warnings
warnings.simplefilter("ignore")
import mixedppl as mp
{first}
t = time.perf_counter()
{second}
print("RESULT " + json.dumps(dict(second_fit_s=time.perf_counter() - t)))
"""


def section_same_process(rows: list, dirs: dict, args) -> None:
    warm = _warm_dir(dirs, args)
    pairs = [("sleepstudy, then Penicillin", FIT["sleepstudy lmer"],
              NEVER_SEEN["Penicillin lmer (crossed)"]),
             ("cbpp, then grouseticks NB2", FIT["cbpp glmer"],
              NEVER_SEEN["grouseticks glmer NB2"]),
             ("wine, then wine (judge + bottle)", FIT["wine clmm"],
              NEVER_SEEN["wine clmm (judge + bottle)"])]
    for name, first, second in pairs:
        scratch = Path(tempfile.mkdtemp(prefix="startup_same_"))
        shutil.copytree(warm, scratch, dirs_exist_ok=True, symlinks=True)
        res = run_process(SAME_PROCESS.format(first=first, second="fit = " + second),
                          _env(scratch), args.timeout)
        if res.get("ok"):
            res["fit_s"] = res.pop("second_fit_s")
        rows.append(("second structure, same process (its fit)", name, res))
        shutil.rmtree(scratch, ignore_errors=True)


INFERENCE = """
import time, json, warnings
warnings.simplefilter("ignore")
import mixedppl as mp
from mixedppl.core import compile as C
sleep = mp.datasets.load("sleepstudy")
fit = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
out = {}
def step(name, f):
    before = C.cache_stats["compiled"]
    t = time.perf_counter()
    f()
    out[name] = dict(s=time.perf_counter() - t, compiled=C.cache_stats["compiled"] - before)
step("summary (Satterthwaite)", lambda: str(fit.summary()))
step("confint (Wald)", lambda: fit.confint())
m0 = mp.lmer("Reaction ~ 1 + (Days | Subject)", sleep)
step("anova(m0, m1)", lambda: mp.anova(m0, fit))
print("RESULT " + json.dumps(dict(steps=out)))
"""


def section_inference(rows: list, dirs: dict, args) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="startup_inf_"))
    res = run_process(INFERENCE, _env(scratch), args.timeout)
    for name, step in (res.get("steps") or {}).items():
        rows.append(("inference on a fitted sleepstudy (empty dir)", name,
                     {"ok": True, "text": f"{step['s']:.2f} s, {step['compiled']} compiled"}))
    if not res.get("ok"):
        rows.append(("inference on a fitted sleepstudy (empty dir)", "all", res))
    shutil.rmtree(scratch, ignore_errors=True)


def section_many_modules(rows: list, dirs: dict, args) -> None:
    warm = _warm_dir(dirs, args)
    scratch = Path(tempfile.mkdtemp(prefix="startup_many_"))
    shutil.copytree(warm, scratch, dirs_exist_ok=True, symlinks=True)
    base = run_process(CHILD.format(fit=FIT["sleepstudy lmer"]), _env(scratch), args.timeout)
    for i in range(args.modules):
        d = scratch / f"tmpforeign{i:05d}"
        d.mkdir()
        (d / "key.pkl").write_bytes(b"foreign module")
    many = run_process(CHILD.format(fit=FIT["sleepstudy lmer"]), _env(scratch), args.timeout)
    rows.append(("new process, compile dir as is", "sleepstudy lmer", base))
    rows.append((f"new process, + {args.modules} foreign modules", "sleepstudy lmer", many))
    shutil.rmtree(scratch, ignore_errors=True)


def _at_once(codes: list[str], envs: list[dict], timeout: float) -> dict:
    """Start every child at once; the wall time until the last ends, their CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [_start(code, env) for code, env in zip(codes, envs)]
    results = [_finish(p, t, timeout) for p, t in procs]
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = [r.get("error") for r in results if not r.get("ok")]
    return {"ok": not failed, "wall_s": wall, "error": "; ".join(map(str, failed)),
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "each_wall_s": [r.get("wall_s") for r in results]}


def _concurrent_once(fits: list, timeout: float) -> tuple[list, dict, dict | None, dict | None]:
    """Each of ``fits`` alone in its own empty dir, then all at once into one empty dir; and
    the yardstick: one statsmodels MixedLM process alone, then four at once."""
    alone = []
    for _name, fit in fits:
        alone_dir = Path(tempfile.mkdtemp(prefix="startup_alone_"))
        alone.append(run_process(CHILD.format(fit=fit), _env(alone_dir), timeout))
        shutil.rmtree(alone_dir, ignore_errors=True)
    shared = Path(tempfile.mkdtemp(prefix="startup_conc_"))
    conc = _at_once([CHILD.format(fit=fit) for _name, fit in fits], [_env(shared)] * len(fits),
                    timeout)
    shutil.rmtree(shared, ignore_errors=True)
    if not conc["ok"] or not all(r.get("ok") for r in alone):
        conc["ok"] = False
    if importlib.util.find_spec("statsmodels") is None:
        return alone, conc, None, None
    code = STATSMODELS.format(csv=str(SLEEPSTUDY_CSV))
    peer_alone = run_process(code, dict(os.environ), timeout)
    peer_conc = _at_once([code] * len(fits), [dict(os.environ)] * len(fits), timeout)
    return alone, conc, peer_alone, peer_conc


def section_concurrent(rows: list, dirs: dict, args) -> None:
    """``--repeat`` rounds of (each alone, then the four at once), medians: on a shared 2-core
    machine one round's ratio ranged 1.7-2.9x within ten minutes. The same for four
    statsmodels processes (independent work, nothing shared) measures what the machine's two
    CPUs give four processes at once."""
    fits = list(NEVER_SEEN.items())
    rounds = [_concurrent_once(fits, args.timeout) for _ in range(args.repeat)]
    med = statistics.median
    firsts = [alone[0] for alone, *_ in rounds]
    means = [{"ok": all(r.get("ok") for r in alone),
              "wall_s": statistics.fmean(r.get("wall_s", float("nan")) for r in alone),
              "cpu_s": statistics.fmean(r.get("cpu_s", float("nan")) for r in alone)}
             for alone, *_ in rounds]
    concs = [conc for _, conc, *_ in rounds]

    def median_row(results: list) -> dict:
        return {"ok": all(r.get("ok") for r in results),
                "wall_s": med(r.get("wall_s", float("nan")) for r in results),
                "cpu_s": med(r.get("cpu_s", float("nan")) for r in results),
                "each_round_wall_s": [r.get("wall_s") for r in results],
                "error": "; ".join(str(r["error"]) for r in results if r.get("error"))}

    def ratio_row(together: list, alone: list, what: str) -> dict:
        row = median_row(together)
        if row["ok"] and all(a.get("ok") for a in alone):
            ratios = [t["wall_s"] / a["wall_s"] for t, a in zip(together, alone)]
            row["ratios"] = ratios
            row["text"] = (f"{_fmt(row)}; {med(ratios):.2f}x {what} "
                           f"(median of {len(ratios)} rounds, {min(ratios):.2f}-{max(ratios):.2f}x)")
        return row

    conc = ratio_row(concs, firsts, "the first alone")
    if "ratios" in conc:
        to_mean = [c["wall_s"] / m["wall_s"] for c, m in zip(concs, means)]
        conc["ratio_to_mean"] = to_mean
        conc["text"] += f", {med(to_mean):.2f}x their mean"
    rows.append(("one process alone (empty dir)", fits[0][0], median_row(firsts)))
    rows.append(("each of the four alone (empty dirs), mean", "4 never-seen structures",
                 median_row(means)))
    rows.append(("4 processes at once, one empty compile dir", "4 never-seen structures", conc))
    if rounds[0][2] is not None:
        peer_alone = [r[2] for r in rounds]
        rows.append(("yardstick: statsmodels MixedLM alone", "sleepstudy", median_row(peer_alone)))
        rows.append(("yardstick: 4 statsmodels MixedLM processes at once", "sleepstudy",
                     ratio_row([r[3] for r in rounds], peer_alone, "one alone")))


STATSMODELS = """
import time, json, warnings
warnings.simplefilter("ignore")
import pandas as pd
import statsmodels.formula.api as smf
d = pd.read_csv({csv!r})
m = smf.mixedlm("Reaction ~ Days", d, groups=d["Subject"], re_formula="~Days").fit(reml=True)
str(m.summary())
print("RESULT {{}}")
"""

LME4 = """
suppressMessages({library(lmerTest)})
d <- read.csv("%s")
fit <- lmer(Reaction ~ Days + (Days | Subject), d)
invisible(capture.output(print(summary(fit))))
"""


SLEEPSTUDY_CSV = ROOT / "mixedppl" / "datasets" / "data" / "sleepstudy.csv"


def section_peers(rows: list, dirs: dict, args) -> None:
    runs = dirs.setdefault("_peer_runs", [])           # not a folder: counts the peer sections
    runs.append(None)
    when = f" (run {len(runs)})"
    csv = SLEEPSTUDY_CSV
    if importlib.util.find_spec("statsmodels") is not None:
        res = run_process(STATSMODELS.format(csv=str(csv)), dict(os.environ), args.timeout)
    else:
        res = {"ok": False, "error": "statsmodels not installed"}
    rows.append(("peer: statsmodels MixedLM, whole process" + when, "sleepstudy", res))
    if shutil.which("Rscript") is None:
        rows.append(("peer: lme4 + lmerTest (Rscript), whole process" + when, "sleepstudy",
                     {"ok": False, "error": "Rscript not found"}))
        return
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(["Rscript", "-e", LME4 % csv], capture_output=True, text=True,
                          timeout=args.timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows.append(("peer: lme4 + lmerTest (Rscript), whole process" + when, "sleepstudy",
                 {"ok": proc.returncode == 0, "wall_s": time.perf_counter() - t0,
                  "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                  "error": proc.stderr.strip()[-200:]}))


def _bytecode() -> str:
    """Byte-compile mixedppl's sources once, as Python's first import does (and a non-editable
    ``pip install``): with ``PYTHONDONTWRITEBYTECODE`` set (as in some sandboxes and containers)
    every child would otherwise compile the package's source again, ~0.3 s of its import, which
    no user's second process pays. Says what it did, for the table's footer."""
    import compileall
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    compileall.compile_dir(str(ROOT / "mixedppl"), quiet=1)
    return (f"mixedppl byte-compiled first (PYTHONDONTWRITEBYTECODE={flag!r} in this environment)"
            if flag else "mixedppl byte-compiled first")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--modules", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5, help="rounds of the concurrent section")
    args = ap.parse_args()
    rows: list = []
    dirs: dict = {}
    pyc = _bytecode()
    for name in args.only.split(","):
        t = time.perf_counter()
        globals()[f"section_{name}"](rows, dirs, args)
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr, flush=True)
    for name, d in dirs.items():
        if not name.startswith("_"):
            shutil.rmtree(d, ignore_errors=True)
    lines = ["| what | model | mixedppl / peer |", "|---|---|---|"]
    for what, model, res in rows:
        lines.append(f"| {what} | {model} | {res['text'] if 'text' in res else _fmt(res)} |")
    meta = (f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at the end, tier "
            f"{os.environ.get('MIXEDPPL_TIER', 'auto')}; {pyc}")
    table = "\n".join(lines) + f"\n\n{meta}\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup_latest.md").write_text("# Time to first result\n\n" + table)
    (RESULTS / "startup_latest.json").write_text(json.dumps(
        {"meta": meta, "rows": [{"what": w, "model": m, **r} for w, m, r in rows]}, indent=1))


if __name__ == "__main__":
    main()

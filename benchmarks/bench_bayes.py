"""Time sampling sleepstudy, 4 chains × 1000 draws (1000 tuning steps), with mixedppl's
``fit.sample()`` (marginalised LMM with nutpie, the default; marginalised with PyMC's NUTS; the
explicit non-centred model with PyMC's NUTS) and with bambi, in the same run; optionally
InstEval's ``(1 | s) + (1 | d) + (1 | dept:service)``.

Usage::

    python benchmarks/bench_bayes.py [--draws 1000] [--tune 1000] [--chains 4] [--cores N]
                                     [--no-bambi] [--insteval | --insteval-only]
                                     [--bambi-insteval [--bambi-limit SECONDS]] [--note TEXT]

Timed: the whole call (PyMC model building, compilation, sampling, the conditional draws of b
and the pointwise log-likelihood) from a fitted result for mixedppl, and from ``bmb.Model(...)``
through ``fit()`` for bambi. Every run uses target_accept 0.9 and stores the pointwise
log-likelihood; bambi's model is given mixedppl's default priors (Normal on the fixed effects,
HalfStudentT(3, 2.5 SD(y)) on σ and the group SDs). bambi has no LKJ prior: its random intercept
and slope are independent, so its model has one parameter fewer (no correlation).

``ESS/s`` is the issue's figure of merit: the minimum ``ess_bulk`` over the fixed effects, SDs,
correlations and σ, divided by the whole call's seconds; ``CPU s`` the whole call's CPU seconds
(this process's threads and its children: PyMC's chain processes, the C compiler) and
``ESS/CPU s`` the same figure per CPU second, the fairer comparison on a loaded machine.
``sampling`` is the sampler's own wall
time where it reports one (PyMC's ``sampling_time``), ``steps/draw`` the mean number of
leapfrog steps per post-warmup draw, ``grad µs`` one evaluation of the compiled logp + gradient
(best of 5 × 100, outside the timed call).

The table is printed and written to ``benchmarks/results/bayes_latest.md``, the raw numbers to
``benchmarks/results/bayes_latest.json``. bambi is not a dependency of mixedppl
(``benchmarks/requirements.txt``); when it is not installed its row says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import arviz as az
import numpy as np

import mixedppl as mp

FORMULA = "Reaction ~ Days + (Days | Subject)"
#: bambi's model: independent random intercept and slope (no correlation parameter)
UNCORRELATED = "Reaction ~ Days + (Days || Subject)"
INSTEVAL = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)"
RESULTS = Path(__file__).resolve().parent / "results"


def _grad_us(model) -> float:
    """Best-of-15 time of one compiled logp + gradient evaluation (µs), at the initial point."""
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    ip = model.initial_point()
    x = np.concatenate([np.ravel(ip[v.name]) for v in f._grad_vars]) + 0.1
    f(x)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(100):
            f(x)
        best = min(best, (time.perf_counter() - start) / 100)
    return 1e6 * best


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (PyMC's chain processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _stats(idata, elapsed: float, names: list[str], cpu: float = np.nan) -> dict:
    s = az.summary(idata, var_names=names)
    s = s[s["sd"] > 0]  # the correlation matrices' constant diagonals
    ss = idata.sample_stats
    sampling = float(idata.posterior.attrs.get("sampling_time", np.nan))
    ess = float(s["ess_bulk"].min())
    return {"seconds": round(elapsed, 1), "ess_per_s": round(ess / elapsed, 1),
            "cpu_s": round(cpu, 1), "ess_per_cpu_s": round(ess / cpu, 1),
            "sampling_s": round(sampling, 1),
            "divergences": int(ss["diverging"].sum()),
            "max_r_hat": float(s["r_hat"].max()), "min_ess_bulk": ess,
            "steps_per_draw": round(float(ss["n_steps"].mean()), 1),
            "step_size": round(float(ss["step_size"].mean()), 3)}


def run_mixedppl(args, formula: str = FORMULA, data: str = "sleepstudy", **kw) -> dict:
    fit = mp.lmer(formula, mp.datasets.load(data))
    start, cpu = time.perf_counter(), _cpu()
    post = fit.sample(draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                      random_seed=1, progressbar=False, **kw)
    out = _stats(post.idata, time.perf_counter() - start, post.param_names(), _cpu() - cpu)
    out["sampler"] = post.sampler
    if data == "sleepstudy":
        out["grad_us"] = round(_grad_us(post.model), 1)
    out["posterior_mean"] = {k: np.round(post._draws(k).mean(0), 3).tolist()
                             for k in post.param_names() if not k.startswith("corr_")}
    if data != "sleepstudy":  # the REML estimates beside the posterior means
        out["reml"] = {"beta": np.round(fit.fe_params.to_numpy(), 3).tolist(),
                       "sd": np.round(np.sqrt([float(np.trace(c)) for c in fit.covs]),
                                      3).tolist(), "sigma": round(float(fit.sigma), 3)}
        out["sampled_terms"] = [t.group for t in fit.spec.terms
                                if f"b_{t.group.replace(':', '_')}" in post.model.named_vars]
    return out


def _bambi_priors(bmb, data):
    from mixedppl.bayes.priors import default_priors
    pri = default_priors(mp.Model(FORMULA, data).spec)
    hst = {"nu": 3, "sigma": float(pri["sd"].sigma)}
    return {"Intercept": bmb.Prior("Normal", mu=float(pri["fixed"].mu[0]),
                                   sigma=float(pri["fixed"].sigma[0])),
            "Days": bmb.Prior("Normal", mu=0, sigma=float(pri["fixed"].sigma[1])),
            "sigma": bmb.Prior("HalfStudentT", **hst),
            "1|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfStudentT", **hst)),
            "Days|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfStudentT", **hst))}


def run_bambi(args) -> dict:
    try:
        import bambi as bmb
    except ImportError:
        return {"seconds": "n/a (bambi not installed)"}
    data = mp.datasets.load("sleepstudy")
    formula = FORMULA.replace("(Days | Subject)", "(Days|Subject)")
    priors = _bambi_priors(bmb, data)
    start, cpu = time.perf_counter(), _cpu()
    model = bmb.Model(formula, data, priors=priors)
    idata = model.fit(draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                      random_seed=1, target_accept=0.9, progressbar=False,
                      idata_kwargs={"log_likelihood": True})
    names = ["Intercept", "Days", "1|Subject_sigma", "Days|Subject_sigma", "sigma"]
    out = _stats(idata, time.perf_counter() - start, names, _cpu() - cpu)
    out["version"] = bmb.__version__
    built = bmb.Model(formula, data, priors=priors)
    built.build()
    out["grad_us"] = round(_grad_us(built.backend.model), 1)
    out["posterior_mean"] = {k: np.round(idata.posterior[k].values.mean((0, 1)), 3).tolist()
                             for k in names}
    return out


BAMBI_INSTEVAL = "y ~ 1 + service + (1|s) + (1|d) + (1|dept:service)"


def _bambi_insteval_child(args, progress: str) -> None:
    """Sample InstEval with bambi (its default priors) in this child process, writing one
    progress line per 100 draws of any chain to ``progress`` and the result as its last line."""
    import bambi as bmb
    warnings.simplefilter("ignore")
    data = mp.datasets.load("InstEval")
    start, cpu = time.perf_counter(), _cpu()
    done = {}

    def callback(trace, draw):
        done[draw.chain] = done.get(draw.chain, 0) + 1
        if sum(done.values()) % 100 == 0:
            with open(progress, "a") as fh:
                fh.write(json.dumps({"seconds": round(time.perf_counter() - start, 1),
                                     "iterations": dict(sorted(done.items())),
                                     "tuning": bool(draw.tuning)}) + "\n")

    model = bmb.Model(BAMBI_INSTEVAL, data)
    idata = model.fit(draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                      random_seed=1, target_accept=0.9, progressbar=False, callback=callback)
    names = ["Intercept", "service", "1|s_sigma", "1|d_sigma", "1|dept:service_sigma", "sigma"]
    out = _stats(idata, time.perf_counter() - start, names, _cpu() - cpu)
    out["version"] = bmb.__version__
    with open(progress, "a") as fh:
        fh.write(json.dumps({"result": out}) + "\n")


def run_bambi_insteval(args) -> dict:
    """bambi on InstEval under a wall-clock limit (``--bambi-limit`` seconds, default 30 min):
    its time if it finishes, else how far its chains got (iterations, tuning included)."""
    import subprocess
    import sys
    import tempfile
    try:
        import bambi as bmb
    except ImportError:
        return {"seconds": "n/a (bambi not installed)"}
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
        progress = fh.name
    cmd = [sys.executable, __file__, "--bambi-insteval-child", progress, "--draws",
           str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--cores", str(args.cores)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        proc.wait(timeout=args.bambi_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    elapsed = time.perf_counter() - start
    lines = [json.loads(x) for x in Path(progress).read_text().splitlines()]
    Path(progress).unlink()
    if lines and "result" in lines[-1]:
        return lines[-1]["result"]
    last = lines[-1] if lines else {"iterations": {}, "seconds": None}
    total = args.chains * (args.draws + args.tune)
    got = sum(last["iterations"].values())
    return {"seconds": f"did not finish in {args.bambi_limit / 60:.0f} min",
            "version": bmb.__version__,
            "progress": f"{got} of {total} iterations (tuning included) in "
                        f"{last['seconds']} s of sampling; {elapsed:.0f} s in all",
            "iterations": last["iterations"]}


HEADER = ("| tool | seconds (whole call) | ESS/s | CPU s | ESS/CPU s | min ess_bulk | sampling | "
          "grad µs | steps/draw | step size | divergences | max r_hat |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def _row(tool: str, r: dict) -> str:
    cells = [r.get(k, "") for k in ("seconds", "ess_per_s", "cpu_s", "ess_per_cpu_s",
                                    "min_ess_bulk", "sampling_s",
                                    "grad_us", "steps_per_draw", "step_size", "divergences",
                                    "max_r_hat")]
    return "| " + " | ".join([tool.replace("|", "\\|")] + [str(c) for c in cells]) + " |"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--cores", type=int, default=None,
                   help="parallel chains (default: min(chains, CPUs))")
    p.add_argument("--no-bambi", action="store_true", help="time mixedppl only")
    p.add_argument("--insteval", action="store_true",
                   help="also sample InstEval (1|s) + (1|d) + (1|dept:service), marginalised")
    p.add_argument("--insteval-only", action="store_true",
                   help="sample InstEval only; results to bayes_insteval.{md,json}")
    p.add_argument("--bambi-insteval", action="store_true",
                   help="with --insteval / --insteval-only: also bambi on InstEval, under "
                        "--bambi-limit seconds")
    p.add_argument("--bambi-limit", type=float, default=1800.0)
    p.add_argument("--bambi-insteval-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--note", default="", help="free text appended to the preamble")
    args = p.parse_args(argv)
    args.cores = args.cores or min(args.chains, os.cpu_count() or 1)
    warnings.simplefilter("ignore")
    if args.bambi_insteval_child:
        return _bambi_insteval_child(args, args.bambi_insteval_child)
    import pymc
    import pytensor
    load = os.getloadavg()
    rows = {}
    if not args.insteval_only:
        rows = {"mixedppl (default: marginalised, nutpie)": run_mixedppl(args),
                "mixedppl, marginalised, PyMC NUTS": run_mixedppl(args, sampler="pymc"),
                "mixedppl, explicit b (marginalize=False), PyMC NUTS": run_mixedppl(
                    args, sampler="pymc", marginalize=False),
                "mixedppl, `(Days || Subject)` (bambi's model), default": run_mixedppl(
                    args, UNCORRELATED)}
        if not args.no_bambi:
            rows["bambi, `(Days || Subject)`"] = run_bambi(args)
    if args.insteval or args.insteval_only:
        rows["mixedppl InstEval, default (d sampled, s and dept:service integrated out)"] = \
            run_mixedppl(args, INSTEVAL, "InstEval")
        if args.bambi_insteval:
            rows["bambi InstEval, its default priors, every random effect sampled"] = \
                run_bambi_insteval(args)
    load_end = os.getloadavg()
    bambi_row = rows.get("bambi, `(Days || Subject)`", {})
    bambi_v = next((r["version"] for t, r in rows.items()
                    if t.startswith("bambi") and "version" in r), "not run")
    what = (f"InstEval `{INSTEVAL}`" if args.insteval_only else f"sleepstudy `{FORMULA}`")
    pre = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
           f"{os.cpu_count()} CPUs, Python {platform.python_version()}; mixedppl "
           f"{version('mixedppl')}, pymc {pymc.__version__}, "
           f"pytensor {pytensor.__version__}, bambi {bambi_v}. {what}: "
           f"{args.chains} chains × {args.draws} draws ({args.tune} tuning), {args.cores} in "
           f"parallel, target_accept 0.9. Load average (1 / 5 / 15 min) at the start: "
           f"{' / '.join(f'{x:.2f}' for x in load)}, at the end: "
           f"{' / '.join(f'{x:.2f}' for x in load_end)}. {args.note}").strip()
    lines = [pre, "", HEADER] + [_row(t, r) for t, r in rows.items()]
    for tool, r in rows.items():
        if "progress" in r:
            lines += ["", f"- {tool}: {r['seconds']}; {r['progress']}."]
    if isinstance(bambi_row.get("seconds"), float):
        lines.append("")
        for tool, r in rows.items():
            if not tool.startswith("bambi") and "InstEval" not in tool:
                lines.append(f"- {tool.replace('|', chr(92) + '|')}: ESS/s "
                             f"{r['ess_per_s'] / bambi_row['ess_per_s']:.2f}× bambi's "
                             f"(per CPU second "
                             f"{r['ess_per_cpu_s'] / bambi_row['ess_per_cpu_s']:.2f}×), whole "
                             f"call {bambi_row['seconds'] / r['seconds']:.2f}× faster.")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = "bayes_insteval" if args.insteval_only else "bayes_latest"
    (RESULTS / f"{stem}.md").write_text(text + "\n")
    raw = {"preamble": pre, "args": vars(args), "rows": rows}
    (RESULTS / f"{stem}.json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()

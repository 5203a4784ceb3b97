"""Time sampling sleepstudy ``Reaction ~ Days + (Days | Subject)``, 4 chains × 1000 draws
(1000 tuning steps), with mixedppl's ``fit.sample()`` and with bambi, in the same run.

Usage::

    python benchmarks/bench_bayes.py [--draws 1000] [--tune 1000] [--chains 4] [--cores 4]

Timed: the whole call (PyMC model building, compilation, sampling) from a fitted result for
mixedppl, and from ``bmb.Model(...)`` through ``fit()`` for bambi. Both use PyMC's NUTS with
target_accept 0.9, and the same priors: bambi's model is given mixedppl's default priors
(Normal on the fixed effects, HalfStudentT(3, 2.5 SD(y)) on σ and the group SDs). bambi has no
LKJ prior: its random intercept and slope are independent, so its model has one parameter fewer.
bambi is not a dependency of mixedppl; when it is not installed the row says so.
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz as az

import mixedppl as mp

FORMULA = "Reaction ~ Days + (Days | Subject)"


def _stats(idata, elapsed: float, names: list[str]) -> dict:
    s = az.summary(idata, var_names=names)
    return {"seconds": round(elapsed, 1), "divergences": int(idata.sample_stats["diverging"].sum()),
            "max_r_hat": float(s["r_hat"].max()), "min_ess_bulk": float(s["ess_bulk"].min())}


def run_mixedppl(args) -> dict:
    fit = mp.lmer(FORMULA, mp.datasets.load("sleepstudy"))
    start = time.perf_counter()
    post = fit.sample(draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                      random_seed=1, progressbar=False)
    return _stats(post.idata, time.perf_counter() - start, post.param_names())


def run_bambi(args) -> dict:
    try:
        import bambi as bmb
    except ImportError:
        return {"seconds": "n/a (bambi not installed)"}
    from mixedppl.bayes.pymc import default_priors
    data = mp.datasets.load("sleepstudy")
    pri = default_priors(mp.Model(FORMULA, data).spec)
    hst = {"nu": 3, "sigma": pri["sd"].sigma}
    priors = {"Intercept": bmb.Prior("Normal", mu=pri["fixed"].mu[0], sigma=pri["fixed"].sigma[0]),
              "Days": bmb.Prior("Normal", mu=0, sigma=pri["fixed"].sigma[1]),
              "sigma": bmb.Prior("HalfStudentT", **hst),
              "1|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfStudentT", **hst)),
              "Days|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfStudentT", **hst))}
    start = time.perf_counter()
    model = bmb.Model(FORMULA.replace("(Days | Subject)", "(Days|Subject)"), data, priors=priors)
    idata = model.fit(draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                      random_seed=1, target_accept=0.9, progressbar=False)
    return _stats(idata, time.perf_counter() - start, ["Intercept", "Days", "sigma"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--cores", type=int, default=4)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rows = {"mixedppl": run_mixedppl(args), "bambi": run_bambi(args)}
    print(f"sleepstudy {FORMULA}: {args.chains} chains × {args.draws} draws ({args.tune} tune)")
    print("| tool | seconds | divergences | max r_hat | min ess_bulk |\n|---|---|---|---|---|")
    for tool, r in rows.items():
        print(f"| {tool} | {r['seconds']} | {r.get('divergences', '')} | "
              f"{r.get('max_r_hat', '')} | {r.get('min_ess_bulk', '')} |")


if __name__ == "__main__":
    main()

"""Time ``mp.lmer`` on a Dask DataFrame read from parquet, beside the in-memory pandas fit.

Usage::

    python benchmarks/bench_dask.py [--rows 1e6 1e7] [--workers 2] [--memory-limit 1.5GB]
                                    [--rows-per-file 1e6] [--no-pandas] [--dir /tmp/mixedppl_dask]

Data: synthetic crossed rows ``y = 1 + 0.5 x + u_a + u_b + e`` with 10⁴ levels of ``a`` and 10³ of
``b`` (SDs 1, 0.5, 1), written once as parquet files of ``--rows-per-file`` rows each (one
partition per file) under ``--dir``. The model is ``y ~ x + (1 | a) + (1 | b)`` (REML).

Dask: a ``LocalCluster`` of ``--workers`` worker processes, one thread each, with
``memory_limit``; the fit is the whole ``mp.lmer(formula, dd.read_parquet(dir))`` call, split
into the level / check pass, the cross-product pass (``fit.timing["crossproducts"]``) and the θ
optimisation on the client (``prepare``: the objective's inputs, e.g. the Chebyshev matrices of
:mod:`mixedppl.distributed.crossed`; ``θ fit``: the optimiser; ``estimates``: β̂, modes). CPU:
user + system seconds of the client process and of each worker process during the fit (the
machine may be shared: CPU seconds do not grow with other jobs' load, wall seconds do). Peak memory: ``ru_maxrss`` of the client process and of each worker
process (read on the workers after the fit). pandas: ``pd.read_parquet`` + ``mp.lmer`` in a fresh
subprocess (its own peak RSS), where the rows fit in memory.

The table is printed and written to ``benchmarks/results/dask_latest.md``, the raw numbers to
``benchmarks/results/dask_latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "y ~ x + (1 | a) + (1 | b)"
RESULTS = Path(__file__).resolve().parent / "results"


def write_data(root: Path, rows: int, rows_per_file: int, seed: int = 1) -> Path:
    """Parquet files of the synthetic crossed rows (written once; file k uses seed + k)."""
    out = root / f"rows_{rows}"
    done = out / "_done"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng0 = np.random.default_rng(seed)
    ua, ub = rng0.normal(0, 1.0, 10_000), rng0.normal(0, 0.5, 1_000)
    for k, start in enumerate(range(0, rows, rows_per_file)):
        m = min(rows_per_file, rows - start)
        rng = np.random.default_rng(seed + 1 + k)
        a = rng.integers(0, 10_000, m)
        b = rng.integers(0, 1_000, m)
        x = rng.normal(size=m)
        y = 1 + 0.5 * x + ua[a] + ub[b] + rng.normal(0, 1.0, m)
        pd.DataFrame({"y": y, "x": x, "a": a.astype(np.int32), "b": b.astype(np.int32)}
                     ).to_parquet(out / f"part-{k:05d}.parquet", index=False)
    done.touch()
    return out


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def dask_fit(path: Path, workers: int, memory_limit: str) -> dict:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    import mixedppl as mp

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ddf = dd.read_parquet(str(path))
        worker_cpu0, cpu0 = client.run(_cpu_s), _cpu_s()
        t0 = time.perf_counter()
        fit = mp.lmer(FORMULA, ddf)
        wall = time.perf_counter() - t0
        cpu = _cpu_s() - cpu0
        worker_cpu = {k: v - worker_cpu0[k] for k, v in client.run(_cpu_s).items()}
        worker_rss = client.run(_max_rss_mb)
        prepare = fit.timing.get("prepare", 0.0)
        return {"wall_s": wall, "crossproducts_s": fit.timing["crossproducts"],
                "prepare_s": prepare,
                "optimize_s": fit.timing["optimize"], "compile_s": fit.timing["compile"],
                "estimates_s": fit.timing["estimates"],
                "client_cpu_s": cpu, "worker_cpu_s": sorted(worker_cpu.values()),
                "schur": getattr(fit.objective, "method", "graph"),
                "levels_pass_s": (wall - fit.timing["crossproducts"] - prepare
                                  - fit.timing["total"]),
                "npartitions": ddf.npartitions, "nobs": fit.nobs,
                "client_peak_mb": _max_rss_mb(),
                "worker_peak_mb": sorted(worker_rss.values()),
                "beta": fit.beta.tolist(), "theta": fit.theta.tolist(), "sigma": fit.sigma,
                "loglik": fit.loglik}


PANDAS_CODE = """
import json, resource, sys, time
import pandas as pd, mixedppl as mp
t0 = time.perf_counter()
d = pd.read_parquet(sys.argv[1])
t1 = time.perf_counter()
fit = mp.lmer(sys.argv[2], d)
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "fit_s": t2 - t1, "wall_s": t2 - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "beta": fit.beta.tolist(), "theta": fit.theta.tolist(), "loglik": fit.loglik}))
"""


def pandas_fit(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PANDAS_CODE, str(path), FORMULA],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1.5GB")
    ap.add_argument("--rows-per-file", type=float, default=1e6)
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--pandas-max-rows", type=float, default=1e7)
    ap.add_argument("--dir", default="/tmp/mixedppl_dask")
    args = ap.parse_args(argv)
    runs = []
    for rows in [int(r) for r in args.rows]:
        t0 = time.perf_counter()
        path = write_data(Path(args.dir), rows, int(args.rows_per_file))
        row = {"rows": rows, "write_s": time.perf_counter() - t0, "load_before": os.getloadavg(),
               "dask": dask_fit(path, args.workers, args.memory_limit)}
        if not args.no_pandas and rows <= args.pandas_max_rows:
            row["pandas"] = pandas_fit(path)
        runs.append(row)
        print(json.dumps(row), flush=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "workers": args.workers,
            "load_average_1_5_15": os.getloadavg(),
            "memory_limit": args.memory_limit, "formula": FORMULA,
            "rows_per_partition": int(args.rows_per_file)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dask_latest.json").write_text(json.dumps({"meta": meta, "runs": runs},
                                                         indent=2))
    lines = ["| rows | partitions | θ objective | wall s | levels pass s | cross-products s | "
             "prepare s | θ fit s | estimates s | client CPU s | worker CPU s | client peak MB | "
             "worker peak MB | pandas wall s | pandas peak MB | max |Δβ| |",
             "|" + "---|" * 16]
    for r in runs:
        d, p = r["dask"], r.get("pandas")
        dbeta = (f"{np.max(np.abs(np.subtract(d['beta'], p['beta']))):.1e}" if p else "–")
        pandas = f"{p['wall_s']:.1f} | {p['peak_mb']:.0f} | {dbeta}" if p else "– | – | –"
        lines.append(
            f"| {r['rows']:.0e} | {d['npartitions']} | {d.get('schur', 'graph')} | "
            f"{d['wall_s']:.1f} | {d['levels_pass_s']:.1f} | {d['crossproducts_s']:.1f} | "
            f"{d.get('prepare_s', 0.0):.1f} | {d['optimize_s'] + d['compile_s']:.1f} | "
            f"{d.get('estimates_s', 0.0):.1f} | {d.get('client_cpu_s', float('nan')):.1f} | "
            f"{' / '.join(f'{c:.1f}' for c in d.get('worker_cpu_s', []))} | "
            f"{d['client_peak_mb']:.0f} | "
            f"{' / '.join(f'{m:.0f}' for m in d['worker_peak_mb'])} | {pandas} |")
    table = "\n".join(lines)
    (RESULTS / "dask_latest.md").write_text(
        f"# bench_dask.py\n\n{json.dumps(meta)}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()

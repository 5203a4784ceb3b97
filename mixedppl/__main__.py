"""``python -m mixedppl``: fit the main example (sleepstudy, as lme4's) and print its summary."""

from __future__ import annotations

import sys
import time

import mixedppl as mp


def main(argv: list[str] | None = None) -> int:
    formula = "Reaction ~ Days + (Days | Subject)"
    data = mp.datasets.load("sleepstudy")
    t0 = time.perf_counter()
    fit = mp.lmer(formula, data)
    print(fit.summary())
    print(f"\n(fitted in {time.perf_counter() - t0:.2f} s, including any one-off graph compilation)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

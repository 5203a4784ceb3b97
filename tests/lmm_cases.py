"""The LMM reference cases: R's result file, the bundled dataset, and the call."""

import warnings
from functools import lru_cache

CASES = {
    "lmm_sleepstudy_reml": ("sleepstudy", True),
    "lmm_sleepstudy_ml": ("sleepstudy", False),
    "lmm_sleepstudy_uncorr": ("sleepstudy", True),
    "lmm_dyestuff": ("dyestuff", True),
    "lmm_dyestuff2": ("dyestuff2", True),
    "lmm_penicillin": ("penicillin", True),
    "lmm_pastes": ("pastes", True),
    "lmm_cake": ("cake", True),
    "lmm_instevel": ("insteval", True),
}


@lru_cache(maxsize=None)
def fitted(case):
    """The lmer fit of one reference case (cached: shared by every test module)."""
    import mixedppl as mp
    from conftest import reference
    data, reml = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mp.SingularFitWarning)
        return mp.lmer(reference(case)["formula"], mp.datasets.load(data), reml=reml)

"""The LMM reference cases: R's result file, the bundled dataset, and the call."""

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

"""mixedppl: mixed-effects models with lme4's numbers, from PyTensor graphs that PyMC can sample.

>>> import mixedppl as mp
>>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
>>> print(fit.summary())  # doctest: +SKIP
"""

from .core import gc_pause as _gc_pause

with _gc_pause.paused_gc():  # no collector passes over what the imports build (core/gc_pause.py)
    from .core.lean_import import import_pytensor

    import_pytensor()  # before anything imports PyTensor: without scipy.signal (core/lean_import.py)

    from . import datasets, families, priors
    from .anova import anova
    from .api import Model, lmer
    from .arrays_api import glmm, lmm
    from .core.control import Control, LmerControl
    from .core.exceptions import (ConvergenceWarning, DataWarning, DegenerateGroupsWarning,
                                  IdentifiabilityWarning, ModelSpecError, NonNestedWarning,
                                  RankDeficiencyWarning, SeparationWarning, SingularFitWarning)
    from .core.compile import config
    from .glmm_api import glmer
    from .clmm_api import clmm
    from .coxme_api import coxme
    from .inference.lrt import lrt
    from .bayes.result import BayesResult, compare

__version__ = "0.1.0"

__all__ = ["Model", "lmer", "glmer", "clmm", "coxme", "lmm", "glmm", "families", "anova", "lrt", "datasets", "Control", "LmerControl", "config", "priors",
           "BayesResult", "compare",
           "ModelSpecError", "ConvergenceWarning", "SingularFitWarning", "RankDeficiencyWarning", "DataWarning",
           "SeparationWarning", "DegenerateGroupsWarning", "NonNestedWarning", "IdentifiabilityWarning"]

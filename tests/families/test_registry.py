"""get_family (mixedppl/families/registry.py): names, glmmTMB's aliases, glmer's Gaussian."""

import pytest

from mixedppl.core.exceptions import ModelSpecError
from mixedppl.families import GAUSSIAN, family_names, get_family
from mixedppl.families.glm import FAMILIES


@pytest.mark.parametrize("alias,name", [("nbinom2", "negative_binomial"), ("nbinom1", "nbinom1"),
                                        ("Gamma", "gamma"), ("beta_family", "beta"),
                                        ("normal", "gaussian")])
def test_glmmtmb_spellings(alias, name):
    assert get_family(alias)[0].name == name


def test_gaussian_is_the_lmm_family_unless_laplace():
    assert get_family("gaussian")[0] is GAUSSIAN
    fam, link = get_family("gaussian", "log", laplace=True)
    assert fam is FAMILIES["gaussian"] and link.name == "log" and fam.fit_kind == "glmer"
    with pytest.raises(ModelSpecError, match="link='log' is not available for family"):
        get_family("gaussian", "log")   # lmer's Gaussian has the identity link only


def test_unknown_family_and_link_list_the_choices():
    assert "nbinom1" in family_names() and family_names().count("gaussian") == 1
    with pytest.raises(ModelSpecError, match="choose from .*'nbinom1'"):
        get_family("weibull")
    with pytest.raises(ModelSpecError, match=r"choose from \['log', 'sqrt', 'identity'\]"):
        get_family("poisson", "logit")

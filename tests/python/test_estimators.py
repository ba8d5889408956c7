"""Every estimator of the package keeps scikit-learn's contract: settings in ``__init__``, ``fit(X, y)``,
``get_params``/``set_params``/``clone`` round-trips, defaults written once (in the signature)."""

import argparse
import inspect

import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks as ec

from srnomogram.deep.model import DeepClassifier
from srnomogram.radiomics.models import make_model
from srnomogram.radiomics.selection import CorrelationPruner, MannWhitneySelector
from srnomogram.sr.model import SuperResolver

# Non-default values for each estimator, so that a round-trip that dropped a setting would show.
ESTIMATORS = {
    "DeepClassifier": DeepClassifier(arch="resnet101", image_col="image_sr", weights="none", epochs=3, lr=0.01, seed=7, amp="none"),
    "SuperResolver": SuperResolver(image_col="image_hr", iterations=5, seed=3, degradation="blur"),
    "radiomics LR": make_model("lr", random_state=4, alpha=0.1, C=0.5),
    "radiomics SVM": make_model("svm", random_state=4, r_threshold=0.8),
    "MannWhitneySelector": MannWhitneySelector(alpha=0.01),
    "CorrelationPruner": CorrelationPruner(threshold=0.8),
}
# scikit-learn's checks that need no fitting (the image estimators' X is a manifest or ROI set, not a
# numeric matrix, so the fitting checks do not apply to them; the selectors pass every check in
# tests/python/radiomics/test_selection.py).
CHEAP_CHECKS = [ec.check_parameters_default_constructible, ec.check_no_attributes_set_in_init, ec.check_get_params_invariance,
                ec.check_set_params, ec.check_estimator_cloneable, ec.check_do_not_raise_errors_in_init_or_set_params]


def _flat(v):
    """An estimator as (class name, parameters), recursively (pipeline steps too): comparable across clones."""
    if hasattr(v, "get_params") and not isinstance(v, type):
        return type(v).__name__, {k: _flat(x) for k, x in v.get_params(deep=False).items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_flat(x) for x in v)
    return v


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_clone_and_get_set_params_round_trip(name):
    est = ESTIMATORS[name]
    assert _flat(clone(est)) == _flat(est)
    fresh = type(est)() if name not in ("radiomics LR", "radiomics SVM") else make_model(name[-3:].strip().lower())
    assert _flat(fresh.set_params(**est.get_params(deep=False))) == _flat(est)
    # every setting is an __init__ parameter; fit takes the data only
    params = set(inspect.signature(type(est).__init__).parameters) - {"self"}
    assert params == set(est.get_params(deep=False))
    fit = inspect.signature(type(est).fit).parameters
    named = [k for k, p in fit.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert named == ["self", "X", "y"]  # Pipeline's **params are routed to its steps' fit


@pytest.mark.parametrize("name", ["DeepClassifier", "SuperResolver"])
@pytest.mark.parametrize("check", CHEAP_CHECKS, ids=lambda c: c.__name__)
def test_image_estimators_pass_scikit_learns_parameter_checks(name, check):
    est = type(ESTIMATORS[name])()
    check(name, est)


def test_deep_defaults_are_written_once_the_cli_and_the_study_read_the_signature():
    from srnomogram.deep import _cli
    from srnomogram.study.config import DeepSection

    defaults = DeepClassifier().get_params()
    section = DeepSection()
    for key in ("weights", "epochs", "batch_size", "lr", "device"):
        assert getattr(section, key) == defaults[key]
    parser = argparse.ArgumentParser()
    _cli._add_params(parser)
    assert _cli._params(parser.parse_args([])) == {}  # nothing given: the estimator's defaults apply
    given = _cli._params(parser.parse_args(["--arch", "resnet101", "--image-col", "image_sr", "--epochs", "3", "--deterministic"]))
    assert given == {"arch": "resnet101", "image_col": "image_sr", "epochs": 3, "deterministic": True}
    assert set(given) <= set(defaults)

"""Centre harmonisation: ComBat equal to neuroHarmonize (training centres, and a new centre from its
reference sample), the per-centre standardiser equal to scikit-learn's scalers fitted centre by centre,
frozen state through JSON, and one-line errors."""

from __future__ import annotations

import contextlib
import importlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.preprocessing import RobustScaler, StandardScaler
from sklearn.utils import estimator_checks as ec

from srnomogram.errors import InputError
from srnomogram.radiomics.harmonise import CentreStandardiser, ComBat

TOL = 1e-9  # equality to the reference library, relative to the feature's magnitude
# neuroHarmonize's own np.matrix use
NEUROHARMONIZE_WARNINGS = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


def _scanner(X, centre, seed):
    """Scanner effects: per centre and feature an affine change (shift 0-1.5 SD, scale 0.6-1.8)."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    sd = X.std(axis=0)
    for c in np.unique(centre):
        rows = centre == c
        X[rows] = X[rows].mean(axis=0) + (X[rows] - X[rows].mean(axis=0)) * rng.uniform(0.6, 1.8, X.shape[1]) + rng.uniform(0, 1.5, X.shape[1]) * sd
    return X


def _synthetic(seed=0, sizes=(40, 25, 35), new=(20, 15, 30), p=8):
    """Correlated features (a shared latent factor) of training centres a, b, c and new centres n1.. ."""
    rng = np.random.default_rng(seed)
    sizes = tuple(sizes) + tuple(new)
    names = ["a", "b", "c"][: len(sizes) - len(new)] + [f"n{k + 1}" for k in range(len(new))]
    centre = np.repeat(names, sizes)
    latent = rng.normal(size=(len(centre), 1))
    X = 10 + latent @ rng.normal(size=(1, p)) + rng.normal(size=(len(centre), p)) * rng.uniform(0.5, 3, p)
    return _scanner(X, centre, seed + 1), centre


def _breast_cancer(seed=0):
    """A real-ish case: the Wisconsin breast cancer features (30 image features of 569 lesions, bundled
    with scikit-learn), split at random into centres A, B (training) and C, D (new), with scanner effects."""
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    centre = np.random.default_rng(seed).choice(np.array(["A", "B", "C", "D"]), size=len(X), p=[0.35, 0.3, 0.2, 0.15])
    return _scanner(X, centre, seed + 1), centre


CASES = {
    "synthetic": lambda: (*_synthetic(), ["a", "b", "c"]),
    "breast cancer features": lambda: (*_breast_cancer(), ["A", "B"]),
}


@pytest.fixture
def neuroharmonize(monkeypatch):
    """neuroHarmonize 2.5.2's harmonizationLearn, quiet, with one bug of its new-site path mended.

    With neuroCombat 0.2.12 its new-site branch builds an info dict without 'ref_level', which
    neuroCombat's find_parametric_adjustments and adjust_data_final read: the mend adds
    ``ref_level=None`` (no reference batch, as in the training fit) and changes nothing else.
    """
    pytest.importorskip("neuroHarmonize", reason="neuroHarmonize 2.5.2 (installed --no-deps by setup.sh)")
    learn_module = importlib.import_module("neuroHarmonize.harmonizationLearn")

    def with_ref_level(f, pos):
        def g(*args, **kwargs):
            args = list(args)
            args[pos] = {"ref_level": None, **args[pos]}
            return f(*args, **kwargs)
        return g

    monkeypatch.setattr(learn_module, "find_parametric_adjustments", with_ref_level(learn_module.find_parametric_adjustments, 2))
    monkeypatch.setattr(learn_module, "adjust_data_final", with_ref_level(learn_module.adjust_data_final, 7))

    def learn(X, centre, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its steps
            return learn_module.harmonizationLearn(X, pd.DataFrame({"SITE": centre}), **kwargs)

    return learn


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL * np.abs(want).max())


@NEUROHARMONIZE_WARNINGS
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("eb", [True, False])
def test_combat_on_the_training_centres_equals_neuroharmonize(case, eb, neuroharmonize):
    X, centre, training = CASES[case]()
    rows = np.isin(centre, training)
    model, want = neuroharmonize(X[rows], centre[rows], eb=eb)
    est = ComBat(eb=eb).fit(X[rows], centre=centre[rows])
    _close(est.transform(X[rows], centre=centre[rows]), want)
    _close(est.gamma_, model["gamma_star"])
    _close(est.delta_, model["delta_star"])
    _close(est.grand_mean_, model["stand_mean"][:, 0])
    _close(est.var_pooled_, model["var_pooled"][:, 0])
    assert est.training_centres_ == list(model["SITE_labels"])


@NEUROHARMONIZE_WARNINGS
@pytest.mark.parametrize("case", list(CASES))
def test_combat_brings_in_a_new_centre_from_its_reference_sample_as_neuroharmonize(case, neuroharmonize):
    X, centre, training = CASES[case]()
    rows = np.isin(centre, training)
    model, _ = neuroharmonize(X[rows], centre[rows])
    # neuroHarmonize 2.5.2 learns new sites only when as many new sites as training sites are given at once
    # (its design matrices are otherwise misaligned); each new site is still estimated on its own
    new = ~rows
    assert len(np.unique(centre[new])) == len(training)
    extended, want = neuroharmonize(X[new], centre[new], orig_model=model)
    est = ComBat().fit(X[rows], centre=centre[rows])
    frozen = est.to_dict()
    for c in np.unique(centre[new]):
        est.add_reference(X[centre == c], centre=c)
    _close(est.transform(X[new], centre=centre[new]), want)
    _close(est.gamma_, extended["gamma_star"])
    _close(est.delta_, extended["delta_star"])
    # the training fit is frozen: bringing in new centres changed none of its numbers
    after = est.to_dict()
    for key in ("grand_mean", "var_pooled"):
        assert after[key] == frozen[key]
    assert after["gamma"][: len(training)] == frozen["gamma"] and after["delta"][: len(training)] == frozen["delta"]


def test_combat_without_eb_gives_every_centre_the_grand_mean_and_pooled_sd_exactly():
    # analytic: without shrinkage a centre's own mean and SD (ddof 1) are removed, the training
    # centres' grand mean and pooled SD (ddof 0 over all lesions) put back, a new centre's too
    X, centre = _synthetic()
    rows = np.isin(centre, ["a", "b", "c"])
    est = ComBat(eb=False).fit(X[rows], centre=centre[rows])
    est.add_reference(X[centre == "n1"], "n1")
    grand = X[rows].mean(axis=0)
    pooled = sum(((X[centre == c] - X[centre == c].mean(axis=0)) ** 2).sum(axis=0) for c in "abc") / rows.sum()
    for c in ["a", "b", "c", "n1"]:
        out = est.transform(X[centre == c], centre=c)
        np.testing.assert_allclose(out.mean(axis=0), grand, rtol=1e-12)
        np.testing.assert_allclose(out.std(axis=0, ddof=1), np.sqrt(pooled), rtol=1e-12)


@pytest.mark.parametrize(("method", "scaler"), [("standard", StandardScaler), ("robust", RobustScaler)])
def test_centre_standardiser_is_sklearns_scaler_fitted_on_each_centre_alone(method, scaler):
    X, centre, training = CASES["breast cancer features"]()
    rows = np.isin(centre, training)
    est = CentreStandardiser(method=method).fit(X[rows], centre=centre[rows])
    est.add_reference(X[centre == "C"][:40], "C")  # a reference sample: 40 of C's lesions
    for c in ["A", "B", "C"]:
        fit_on = X[centre == c][:40] if c == "C" else X[centre == c]
        want = scaler().fit(fit_on).transform(X[centre == c])
        np.testing.assert_allclose(est.transform(X[centre == c], centre=c), want, rtol=1e-12, atol=1e-12)


def test_harmonisation_removes_centre_effects_and_restores_a_held_out_centres_auc():
    """The measurement on synthetic multi-centre data (BrEaST has one centre): a classifier of the
    centre from the features drops towards chance, and a label model fitted on the training centres
    scores a shifted held-out centre as well as its own centres again. Labels reach the classifiers only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(3)
    sizes = {"a": 150, "b": 120, "c": 130, "new": 140}
    centre = np.repeat(list(sizes), list(sizes.values()))
    y = rng.integers(0, 2, len(centre))  # same prevalence in every centre
    X = rng.normal(size=(len(centre), 6)) + 0.8 * y[:, None] * np.array([1, -1, 0.5, 0, 0, 0])
    shift = {"a": 0, "b": np.array([1.0, 0, 0.5, 1, 0, 0]), "c": -1.0, "new": np.array([2.5, -2, 1, 2, -1, 0])}
    scale = {"a": 1, "b": 1.5, "c": 0.7, "new": np.array([3, 0.3, 2, 1.5, 1, 0.5])}
    for c in sizes:
        X[centre == c] = X[centre == c] * scale[c] + shift[c]
    train, new = centre != "new", centre == "new"
    reference = np.flatnonzero(new)[:30]  # the new centre's unlabelled reference lesions

    def measure(Z):
        centre_accuracy = cross_val_score(LogisticRegression(max_iter=1000), Z[train], centre[train], cv=3).mean()
        p = LogisticRegression(max_iter=1000).fit(Z[train], y[train]).predict_proba(Z[new])[:, 1]
        return centre_accuracy, roc_auc_score(y[new], p), accuracy_score(y[new], p > 0.5)

    results = {"none": measure(X)}
    for name, est in {"centre": CentreStandardiser(), "combat": ComBat()}.items():
        est.fit(X[train], centre=centre[train]).add_reference(X[reference], "new")
        results[name] = measure(est.transform(X, centre=centre))
    # measured (seed 3): centre accuracy 0.75 -> 0.30 / 0.29, held-out AUC 0.77 -> 0.82 / 0.80,
    # held-out accuracy 0.54 -> 0.75 / 0.75 (none -> centre / combat)
    assert results["none"][0] > 0.7, results  # the centres are told apart by their features
    for name in ("centre", "combat"):
        assert results[name][0] < 0.4, results  # chance is 1/3
        assert results[name][1] > results["none"][1] + 0.02, results
        assert results[name][2] > results["none"][2] + 0.15, results


def _fitted(est, X, centre, names):
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    rows = pd.Series(centre).isin(names).to_numpy()
    return est.fit(df[rows], centre=centre[rows]), df


@pytest.mark.parametrize("est", [ComBat(), ComBat(eb=False, tol=1e-6), CentreStandardiser(), CentreStandardiser(method="robust", min_samples=5)],
                         ids=repr)
def test_state_round_trips_through_json_and_transforms_identically(est):
    X, centre = _synthetic()
    centre = centre.astype(object)
    centre[centre == "b"] = 7  # int and str centre names
    est, df = _fitted(est, X, centre, ["a", 7, "c"])
    est.add_reference(df[centre == "n2"], "n2")
    text = json.dumps(est.to_dict())
    back = type(est).from_dict(json.loads(text))
    assert back.get_params() == est.get_params()
    assert back.training_centres_ == est.training_centres_ == [7, "a", "c"] and back.reference_centres_ == ["n2"]
    some = pd.Series(centre).isin(["a", 7, "n2"]).to_numpy()
    np.testing.assert_array_equal(back.transform(df[some], centre=centre[some]), est.transform(df[some], centre=centre[some]))
    assert list(back.get_feature_names_out()) == list(df.columns)
    with pytest.raises(ValueError, match="feature names"):  # feature names are part of the frozen state
        back.transform(df[some].rename(columns={"f0": "g0"}), centre=centre[some])


def test_a_feature_with_one_value_within_a_training_centre_passes_through_everywhere():
    # as sva::ComBat leaves features with zero variance in a batch: unchanged, and the others
    # harmonised as if it were not there
    X, centre = _synthetic()
    X[:, 2] = np.where(centre == "b", 5.0, X[:, 2])
    rows = np.isin(centre, ["a", "b", "c"])
    for est in (ComBat(), CentreStandardiser()):
        est.fit(X[rows], centre=centre[rows]).add_reference(X[centre == "n1"], "n1")
        out = est.transform(X, centre=np.where(rows, centre, "n1"))
        assert est.passthrough_.tolist() == [j == 2 for j in range(X.shape[1])]
        np.testing.assert_array_equal(out[:, 2], X[:, 2])
        alone = clone(est).fit(np.delete(X[rows], 2, axis=1), centre=centre[rows])
        alone.add_reference(np.delete(X[centre == "n1"], 2, axis=1), "n1")
        np.testing.assert_allclose(np.delete(out, 2, axis=1), alone.transform(np.delete(X, 2, axis=1), centre=np.where(rows, centre, "n1")), rtol=1e-12)


def _train():
    X, centre = _synthetic()
    rows = np.isin(centre, ["a", "b", "c"])
    return X, centre, rows


@pytest.mark.parametrize("cls", [ComBat, CentreStandardiser])
def test_an_unknown_centre_is_named_with_the_remedy(cls):
    X, centre, rows = _train()
    est = cls().fit(X[rows], centre=centre[rows])
    with pytest.raises(InputError) as info:
        est.transform(X[centre == "n1"], centre="n1")
    assert str(info.value) == (f"Centre 'n1' is not one of the centres of this {cls.__name__} ('a', 'b', 'c'); "
                               "give its unlabelled reference sample with add_reference(X_ref, centre='n1') first.")


@pytest.mark.parametrize("cls", [ComBat, CentreStandardiser])
def test_a_reference_sample_too_small_or_without_spread_is_refused(cls):
    X, centre, rows = _train()
    est = cls().fit(X[rows], centre=centre[rows])
    with pytest.raises(InputError) as info:
        est.add_reference(X[centre == "n1"][:9], "n1")
    assert str(info.value) == (f"The reference sample of centre 'n1' has 9 lesions; {cls.__name__} needs at least min_samples=10 "
                               "to estimate a centre's location and scale.")
    ref = X[centre == "n1"].copy()
    ref[:, [1, 4]] = 3.0
    with pytest.raises(InputError, match=r"^The reference sample of centre 'n1' cannot scale 2 feature\(s\) \(x1, x4\): each needs at "
                                         r"least 2 distinct values"):
        est.add_reference(ref, "n1")
    assert est.reference_centres_ == []  # nothing half-added
    with pytest.raises(InputError, match="^Centre 'a' is a training centre of this"):
        est.add_reference(X[centre == "a"], "a")
    est.add_reference(X[centre == "n1"], "n1")
    with pytest.raises(InputError, match="^Centre 'n1' is already given a reference sample"):
        est.add_reference(X[centre == "n1"], "n1")


@pytest.mark.parametrize(
    ("est", "message"),
    [
        (ComBat(eb="yes"), "The 'eb' parameter of ComBat must be a bool. Got 'yes' instead."),
        (ComBat(tol=0), "The 'tol' parameter of ComBat must be a float > 0. Got 0 instead."),
        (ComBat(min_samples=2), "The 'min_samples' parameter of ComBat must be an int >= 3. Got 2 instead."),
        (CentreStandardiser(method="zscore"), "The 'method' parameter of CentreStandardiser must be 'standard' or 'robust'. Got 'zscore' instead."),
        (CentreStandardiser(min_samples=30), "Training centre 'b' has 25 lesions; CentreStandardiser needs at least min_samples=30 per centre. "
                                             "Merge small centres or lower min_samples."),
    ],
)
def test_bad_parameters_are_one_line_naming_parameter_value_and_rule(est, message):
    X, centre, rows = _train()
    with pytest.raises(InputError) as info:
        est.fit(X[rows], centre=centre[rows])
    assert str(info.value) == message


def test_bad_centres_and_too_few_features_for_empirical_bayes_are_refused():
    X, centre, rows = _train()
    with pytest.raises(InputError, match=r"^The 'centre' parameter of ComBat.fit must have one name per row of X \(100\)"):
        ComBat().fit(X[rows], centre=centre[rows][:-1])
    bad = centre[rows].astype(object)
    bad[3] = None
    with pytest.raises(InputError, match=r"^The 'centre' parameter of ComBat.fit must hold centre names \(str or int\). Got None instead."):
        ComBat().fit(X[rows], centre=bad)
    with pytest.raises(InputError, match="needs at least 2 features to harmonise; got 1. Use eb=False."):
        ComBat().fit(X[rows][:, :1], centre=centre[rows])
    assert ComBat(eb=False).fit(X[rows][:, :1], centre=centre[rows]).gamma_.shape == (3, 1)
    # a Pipeline passes the label as the second argument: it can never become the centre
    with pytest.raises(TypeError, match="centre"):
        ComBat().fit(X[rows], centre[rows])


@pytest.mark.parametrize("cls", [ComBat, CentreStandardiser])
def test_from_dict_refuses_what_to_dict_did_not_write(cls):
    X, centre, rows = _train()
    state = cls().fit(X[rows], centre=centre[rows]).to_dict()
    other = CentreStandardiser if cls is ComBat else ComBat
    with pytest.raises(InputError, match=rf"^The 'state' parameter of {other.__name__}.from_dict must be the dict written by"):
        other.from_dict(state)
    broken = {**state, "passthrough": state["passthrough"][:-1]}
    with pytest.raises(InputError, match=rf"^The state of {cls.__name__} has 'passthrough' of shape \(7,\); expected \(8,\)"):
        cls.from_dict(broken)
    with pytest.raises(InputError, match=rf"^The state of {cls.__name__} lacks a field"):
        cls.from_dict({k: v for k, v in state.items() if k != "training_centres"})


@pytest.mark.parametrize("est", [ComBat(eb=False, min_samples=5, tol=1e-3), CentreStandardiser(method="robust", min_samples=4)], ids=repr)
@pytest.mark.parametrize("check", [ec.check_parameters_default_constructible, ec.check_no_attributes_set_in_init, ec.check_get_params_invariance,
                                   ec.check_set_params, ec.check_estimator_cloneable, ec.check_do_not_raise_errors_in_init_or_set_params],
                         ids=lambda c: c.__name__)
def test_harmonisers_pass_scikit_learns_parameter_checks(est, check):
    check(type(est).__name__, est)
    assert clone(est).get_params() == est.get_params()


def test_pandas_output_keeps_the_feature_names():
    X, centre, rows = _train()
    est, df = _fitted(ComBat(), X, centre, ["a", "b", "c"])
    out = est.set_output(transform="pandas").transform(df[rows], centre=centre[rows])
    assert list(out.columns) == list(df.columns) and out.index.equals(df[rows].index)

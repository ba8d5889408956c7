"""Feature selection against scipy and hand-worked cases; scikit-learn's estimator checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.utils.estimator_checks import parametrize_with_checks

from srnomogram.errors import InputError
from srnomogram.radiomics.selection import CorrelationPruner, MannWhitneySelector, mannwhitney_pvalues


@parametrize_with_checks([MannWhitneySelector(), CorrelationPruner()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0, n=80):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    X = rng.normal(size=(n, 6))
    X[:, 0] += 1.2 * y  # strong
    X[:, 1] += 0.6 * y  # moderate
    X[:, 2] = X[:, 0] * 2 + 0.05 * rng.normal(size=n)  # near-copy of 0 (r > 0.99)
    return X, y


def test_pvalues_equal_scipy_column_by_column():
    X, y = _data()
    p = mannwhitney_pvalues(X, y)
    for j in range(X.shape[1]):
        assert p[j] == pytest.approx(mannwhitneyu(X[y == 0, j], X[y == 1, j]).pvalue, rel=1e-12)


def test_selector_keeps_exactly_p_below_alpha():
    X, y = _data()
    sel = MannWhitneySelector(alpha=0.05).fit(X, y)
    p = mannwhitney_pvalues(X, y)
    assert np.array_equal(sel.get_support(), p < 0.05)
    assert sel.transform(X).shape[1] == int((p < 0.05).sum())


def test_pruner_keeps_the_smaller_p_of_a_correlated_pair():
    X, y = _data()
    pr = CorrelationPruner(threshold=0.9).fit(X, y)
    r = np.corrcoef(X, rowvar=False)
    assert abs(r[0, 2]) > 0.9
    p = mannwhitney_pvalues(X, y)
    keep, drop = (0, 2) if p[0] < p[2] else (2, 0)
    assert pr.support_[keep] and not pr.support_[drop]
    assert pr.dropped_[drop] == keep
    # every kept pair is at most 0.9 apart, and the uncorrelated features all survive
    kept = np.flatnonzero(pr.support_)
    assert np.all(np.abs(r[np.ix_(kept, kept)])[~np.eye(len(kept), dtype=bool)] <= 0.9)
    assert set(kept) == {keep, 1, 3, 4, 5}


def test_pruner_is_invariant_to_z_scoring_and_deterministic():
    X, y = _data(3)
    Z = (X - X.mean(0)) / X.std(0)
    a = CorrelationPruner().fit(X, y).support_
    assert np.array_equal(a, CorrelationPruner().fit(Z, y).support_)
    assert np.array_equal(a, CorrelationPruner().fit(X, y).support_)


def test_no_significant_feature_keeps_the_best_or_raises():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(40, 4)), np.r_[np.zeros(20, int), np.ones(20, int)]
    p = mannwhitney_pvalues(X, y)
    assert (p >= 0.05).all()
    with pytest.warns(UserWarning, match="keeping the one with the smallest p"):
        sel = MannWhitneySelector().fit(X, y)
    assert np.flatnonzero(sel.support_).tolist() == [int(np.argmin(p))]
    with pytest.raises(InputError, match="No feature has a Mann–Whitney p < 0.05"):
        MannWhitneySelector(if_empty="raise").fit(X, y)


def test_nan_values_are_left_out_per_feature():
    X, y = _data()
    X[3, 1] = np.nan
    X[50, 4] = np.inf
    p = mannwhitney_pvalues(X, y)
    keep = np.isfinite(X[:, 1])
    assert p[1] == pytest.approx(mannwhitneyu(X[keep & (y == 0), 1], X[keep & (y == 1), 1]).pvalue, rel=1e-12)
    X[:, 5] = np.where(y == 1, np.nan, X[:, 5])  # no finite value among malignant lesions
    assert np.isnan(mannwhitney_pvalues(X, y)[5])
    assert not MannWhitneySelector(alpha=1.0).fit(X, y).support_[5]


def test_bad_parameters_raise():
    X, y = _data()
    with pytest.raises(InputError, match="'alpha' parameter of MannWhitneySelector"):
        MannWhitneySelector(alpha=0).fit(X, y)
    with pytest.raises(InputError, match="'threshold' parameter of CorrelationPruner"):
        CorrelationPruner(threshold=1.5).fit(X, y)
    with pytest.raises(InputError, match="one class"):
        MannWhitneySelector().fit(X, np.zeros(len(y)))

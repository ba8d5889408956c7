"""The paper's feature selection as scikit-learn transformers.

1. :class:`MannWhitneySelector` keeps features whose Mann–Whitney U test between benign and
   malignant lesions of the training set gives p < ``alpha`` (0.05).
2. (z-score: ``sklearn.preprocessing.StandardScaler``, fitted on the training set.)
3. :class:`CorrelationPruner` removes one of every pair of features with Pearson |r| > 0.9,
   keeping the feature with the smaller Mann–Whitney p.

Both learn only in ``fit`` (from the training set) and are deterministic.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InputError, param_error


def mannwhitney_pvalues(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-sided Mann–Whitney U p-value of every column between the two classes of ``y``.

    ``scipy.stats.mannwhitneyu`` with its defaults (``method="auto"``: exact without ties for
    samples of at most 8, otherwise the normal approximation with tie and continuity
    correction). Non-finite values are left out column by column; a column constant over its
    finite values gets p = 1, a column without a finite value in some class p = NaN. With more
    than two classes the Kruskal–Wallis H test (its k-sample form) is used.
    """
    from scipy.stats import kruskal, mannwhitneyu

    X = np.array(X, dtype=float)
    X[~np.isfinite(X)] = np.nan
    y = np.asarray(y)
    classes = np.unique(y)
    p = np.full(X.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        groups = [X[y == c] for c in classes]
        if len(classes) == 2:
            res = mannwhitneyu(groups[0], groups[1], alternative="two-sided", axis=0, nan_policy="omit")
        else:
            res = kruskal(*groups, axis=0, nan_policy="omit")
    p[:] = np.ma.filled(np.ma.asarray(res.pvalue, dtype=float), np.nan)
    enough = np.all([np.isfinite(g).sum(axis=0) > 0 for g in groups], axis=0)
    constant = np.nanmax(np.where(np.isfinite(X), X, -np.inf), axis=0) == np.nanmin(np.where(np.isfinite(X), X, np.inf), axis=0)
    p[enough & constant] = 1.0
    p[~enough] = np.nan
    return p


def _labels(y, func):
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise InputError(f"The 'y' parameter of {func} must hold both classes (benign 0 and malignant 1). Got one class instead.")
    return y


class MannWhitneySelector(SelectorMixin, BaseEstimator):
    """Keep features that differ between the classes: Mann–Whitney U p < ``alpha``.

    Parameters
    ----------
    alpha : float, default 0.05
        Significance level (the paper: 0.05).
    if_empty : {"best", "raise"}, default "best"
        When no feature reaches ``alpha``: keep the single feature with the smallest p (with a
        warning), or raise :class:`~srnomogram.errors.InputError`.

    Attributes
    ----------
    pvalues_ : ndarray of shape (n_features_in_,)
        Two-sided p-values on the training data (see :func:`mannwhitney_pvalues`; NaN/inf values
        are left out per feature, a feature without finite values in a class is never selected).

    Notes
    -----
    ``transform`` passes the selected columns through unchanged, NaN included, as
    scikit-learn's selectors do; :func:`~srnomogram.radiomics.models.fit_or_sr_models` drops
    features with non-finite values before fitting (or raises, on request).
    support_ : ndarray of bool
        Selected features.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(self, alpha=0.05, if_empty="best"):
        self.alpha = alpha
        self.if_empty = if_empty

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        return tags

    def fit(self, X, y):
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float, np.floating)) or not 0 < self.alpha <= 1:
            raise param_error("alpha", "MannWhitneySelector", "a float in (0, 1]", self.alpha)
        if self.if_empty not in ("best", "raise"):
            raise param_error("if_empty", "MannWhitneySelector", "'best' or 'raise'", self.if_empty)
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=float)
        yb = _labels(y, "MannWhitneySelector.fit")
        self.pvalues_ = mannwhitney_pvalues(X, yb)
        if np.isnan(self.pvalues_).all():
            raise InputError("No feature has finite values in both classes of the training data; nothing can be selected. Check the extraction or the labels.")
        support = np.nan_to_num(self.pvalues_, nan=np.inf) < self.alpha
        if not support.any():
            if self.if_empty == "raise":
                raise InputError(f"No feature has a Mann–Whitney p < {self.alpha} on the training data (smallest p = {np.nanmin(self.pvalues_):.3g}). Raise 'alpha' or use if_empty='best'.")
            best = int(np.nanargmin(self.pvalues_))
            warnings.warn(f"No feature has a Mann–Whitney p < {self.alpha}; keeping the one with the smallest p ({self.pvalues_[best]:.3g}).", UserWarning, stacklevel=2)
            support[best] = True
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

class CorrelationPruner(SelectorMixin, BaseEstimator):
    """Drop one feature of every pair with Pearson |r| > ``threshold``, keeping the smaller p.

    Features are visited in order of increasing Mann–Whitney p on the training data (ties by
    column order); a feature is kept when its |r| with every feature kept before it is at most
    ``threshold``. The rule is deterministic and, for a pair, keeps the feature with the
    smaller p, as the paper describes. A z-scoring step before it does not change r or p.

    Parameters
    ----------
    threshold : float, default 0.9

    Attributes
    ----------
    pvalues_ : ndarray
        Mann–Whitney p-values used for the order.
    correlation_ : ndarray of shape (n_features_in_, n_features_in_)
        Pearson correlation matrix on the training data.
    support_ : ndarray of bool
    dropped_ : dict
        Dropped feature index -> index of the kept feature it correlates with.
    """

    def __init__(self, threshold=0.9):
        self.threshold = threshold

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def fit(self, X, y):
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float, np.floating)) or not 0 < self.threshold <= 1:
            raise param_error("threshold", "CorrelationPruner", "a float in (0, 1]", self.threshold)
        X, y = validate_data(self, X, y, dtype=float)
        yb = _labels(y, "CorrelationPruner.fit")
        self.pvalues_ = mannwhitney_pvalues(X, yb)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(X, rowvar=False) if X.shape[1] > 1 else np.ones((1, 1))
        r = np.atleast_2d(np.nan_to_num(r, nan=0.0))  # a constant column correlates with nothing
        self.correlation_ = r
        order = np.lexsort((np.arange(X.shape[1]), np.nan_to_num(self.pvalues_, nan=np.inf)))
        kept, dropped = [], {}
        for j in order:
            partners = [k for k in kept if abs(r[j, k]) > self.threshold]
            if partners:
                dropped[int(j)] = int(partners[0])
            else:
                kept.append(int(j))
        support = np.zeros(X.shape[1], dtype=bool)
        support[kept] = True
        self.support_ = support
        self.dropped_ = dropped
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

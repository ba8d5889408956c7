"""Harmonisation of radiomics features across centres (scanners), label-free and frozen after fitting.

Two scikit-learn style transformers; both learn from the training centres in ``fit`` and bring in a
**new** centre from an unlabelled *reference sample* of that centre's own lesions
(:meth:`~CentreStandardiser.add_reference`) while everything learned from the training centres stays
frozen. Neither ever sees a label: a held-out centre's labels cannot reach the fit.

* :class:`CentreStandardiser` — every centre's features are standardised by that centre's own
  location and scale (mean and SD as ``sklearn.preprocessing.StandardScaler``, or median and IQR as
  ``RobustScaler``).
* :class:`ComBat` — ComBat with parametric empirical Bayes (Johnson, Li & Rabinovic 2007,
  *Biostatistics* 8:118; for imaging features Fortin et al. 2018, *NeuroImage* 167:104), without
  covariates. A new centre is brought in as neuroHarmonize's ``harmonizationLearn(data, covars,
  orig_model=model)`` does (Pomponio et al. 2020, *NeuroImage* 208:116450): the training centres'
  grand mean and pooled variance stay frozen, and the new centre's location/scale effects and their
  empirical Bayes priors come from its reference sample alone.

Why an implementation here and not a wrapper of neuroHarmonize 2.5.2 (the maintained reference): it
pins ``numpy<2`` and ``pandas<3`` (this package runs on both), imports nibabel and statsmodels at import time, prints
to stdout, seeds NumPy's global generator, and saves its model with pickle; its new-site path is
undocumented and, in 2.5.2 with neuroCombat 0.2.12, fails unless mended (a missing ``ref_level`` key;
design matrices aligned only when as many new sites as training sites are given; ``harmonizationApply``
on the extended model raises). neuroCombat 0.2.12's ``neuroCombatFromTraining`` cannot bring in a new
centre at all. The numerics below follow neuroCombat's, step for step (including the convergence rule of the empirical Bayes iteration, as in
R's ``sva::ComBat``), and the tests prove them equal to neuroHarmonize (fit on training centres; a new
centre from its reference sample) to 1e-9 (measured: 3e-16 of the largest value).

Covariates are deliberately not offered: the label must never be one (a held-out centre's labels are
unknown when it is harmonised, so using them leaks), and no other covariate is used in the study.

The fitted state is plain numbers: :meth:`to_dict` gives JSON-able state and :meth:`from_dict` rebuilds
the estimator from it (no pickle), so a study can freeze it in its application record.

Rules shared by both (``min_samples`` is 10 by default):

* every training centre and every reference sample needs at least ``min_samples`` lesions;
* a feature with a single value within some training centre (or, for the robust scale, an IQR of 0)
  cannot be scaled there: it is passed through unchanged in every centre (``passthrough_``), as
  ``sva::ComBat`` leaves features with zero variance in a batch;
* a reference sample needs at least 2 distinct values (non-zero scale) in every other feature, else it
  is refused with the features named.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InputError, param_error

__all__ = ["CentreStandardiser", "ComBat", "STATE_VERSION"]

STATE_VERSION = 1  # of the dict written by to_dict


def _centre_name(v, func):
    """A centre name as a plain ``str`` or ``int`` (numpy scalars unwrapped); anything else is refused."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (str, numbers.Integral)):
        raise InputError(f"The 'centre' parameter of {func} must hold centre names (str or int). Got {v!r} instead.")
    return v if isinstance(v, str) else int(v)


def _centres(centre, n, func):
    """``centre`` as an object array of ``n`` names: one name per row of X, or a single name for all."""
    if isinstance(centre, (str, numbers.Integral, np.generic)) and not isinstance(centre, bool):
        return np.array([_centre_name(centre, func)] * n, dtype=object)
    arr = np.asarray(centre, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"The 'centre' parameter of {func} must have one name per row of X ({n}). Got shape {arr.shape} instead.")
    canon = {u: _centre_name(u, func) for u in pd.unique(arr)}
    if any(canon[u] is not u for u in canon):  # numpy scalars unwrapped, so that states are plain JSON
        arr = np.array([canon[v] for v in arr], dtype=object)
    return arr


def _codes(centre, names):
    """Row index of each lesion's centre in ``names`` (-1 where unknown)."""
    return pd.Index(names, dtype=object).get_indexer(centre) if len(names) else np.full(len(centre), -1)


def _distinct(X):
    """Per feature: does ``X`` hold at least two distinct values?"""
    return np.ptp(X, axis=0) > 0 if X.shape[0] else np.zeros(X.shape[1], dtype=bool)


def _names(features, idx, limit=5):
    shown = [str(features[j]) for j in idx[:limit]]
    return ", ".join(shown) + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def _state_array(state, key, shape, cls):
    try:
        a = np.asarray(state[key], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"The state of {cls} lacks a numeric {key!r}; give the dict written by {cls}.to_dict().") from None
    if a.shape != shape:
        raise InputError(f"The state of {cls} has {key!r} of shape {a.shape}; expected {shape}. Give the dict written by {cls}.to_dict().")
    return a


class _CentreHarmoniser(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Shared machinery: centre bookkeeping, the ``min_samples`` rule, pass-through features, state."""

    _PARAMS: dict  # name -> (allowed words, check)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    def _check_params(self):
        name = type(self).__name__
        ms = self.min_samples
        if isinstance(ms, bool) or not isinstance(ms, numbers.Integral) or ms < 3:
            raise param_error("min_samples", name, "an int >= 3", ms)
        for key, (words, ok) in self._PARAMS.items():
            if not ok(getattr(self, key)):
                raise param_error(key, name, words, getattr(self, key))

    # -- subclass hooks ------------------------------------------------------------------------------
    def _scales_zero(self, Xc):
        """Per feature: can this centre's values not be scaled (one value, or zero IQR)?"""
        return ~_distinct(Xc)

    def _check_features(self, q):
        """Refuse before any state changes when ``q`` harmonised features are too few (ComBat's EB)."""

    def _fit_training(self, X, groups):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_reference(self, Xr):  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self, X, rows):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, centre):
        """Learn the training centres' parameters.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_lesions, n_features)
            Radiomics features of the training centres' lesions (finite values).
        y : None
            Ignored (label-free; present so that a Pipeline's ``y`` never lands in ``centre``).
        centre : array-like of shape (n_lesions,) or a single name
            Each lesion's centre (str or int names).
        """
        name = type(self).__name__
        self._check_params()
        X = validate_data(self, X, dtype=float, reset=True)
        centre = _centres(centre, X.shape[0], f"{name}.fit")
        order = sorted(set(centre.tolist()), key=lambda c: (isinstance(c, str), c))  # ints, then strs
        codes = _codes(centre, order)
        counts = np.bincount(codes, minlength=len(order))
        small = [(c, int(k)) for c, k in zip(order, counts) if k < self.min_samples]
        if small:
            c, k = small[0]
            raise InputError(f"Training centre {c!r} has {k} lesions; {name} needs at least min_samples={self.min_samples} per centre. "
                             "Merge small centres or lower min_samples.")
        groups = [np.flatnonzero(codes == k) for k in range(len(order))]
        zero = np.zeros(X.shape[1], dtype=bool)
        for g in groups:
            zero |= self._scales_zero(X[g])
        self._check_features(int((~zero).sum()))
        self.passthrough_ = zero
        self.training_centres_ = list(order)
        self.reference_centres_ = []
        self._fit_training(X[:, ~zero], groups)
        return self

    def add_reference(self, X, centre):
        """Bring in a new centre from its unlabelled reference sample; the training fit stays frozen.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_reference, n_features)
            Features of the new centre's reference lesions (no labels are used or wanted).
        centre : str or int
            The new centre's name (not a training centre, not already given a reference).

        Returns
        -------
        self
        """
        check_is_fitted(self, "training_centres_")
        name = type(self).__name__
        centre = _centre_name(centre, f"{name}.add_reference")
        known = self.training_centres_ + self.reference_centres_
        if centre in known:
            what = "a training centre" if centre in self.training_centres_ else "already given a reference sample"
            raise InputError(f"Centre {centre!r} is {what} of this {name}; a reference sample is for a new centre. "
                             "Give it another name, or refit.")
        X = validate_data(self, X, dtype=float, reset=False)
        if X.shape[0] < self.min_samples:
            raise InputError(f"The reference sample of centre {centre!r} has {X.shape[0]} lesions; {name} needs at least "
                             f"min_samples={self.min_samples} to estimate a centre's location and scale.")
        bad = np.flatnonzero(self._scales_zero(X) & ~self.passthrough_)
        if bad.size:
            raise InputError(f"The reference sample of centre {centre!r} cannot scale {bad.size} feature(s) ({_names(self._feature_labels(), bad)}): "
                             "each needs at least 2 distinct values (a non-zero scale). Give a larger or more varied reference sample.")
        self._check_features(int((~self.passthrough_).sum()))
        self._fit_reference(X[:, ~self.passthrough_])
        self.reference_centres_.append(centre)
        return self

    def transform(self, X, *, centre):
        """Harmonise ``X`` with the frozen parameters of each row's centre.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_lesions, n_features)
        centre : array-like of shape (n_lesions,) or a single name
            Training centres, or centres given a reference sample with :meth:`add_reference`.
        """
        check_is_fitted(self, "training_centres_")
        name = type(self).__name__
        X = validate_data(self, X, dtype=float, reset=False)
        centre = _centres(centre, X.shape[0], f"{name}.transform")
        known = self.training_centres_ + self.reference_centres_
        rows = _codes(centre, known)
        if (rows < 0).any():
            c = centre[np.flatnonzero(rows < 0)[0]]
            raise InputError(f"Centre {c!r} is not one of the centres of this {name} ({', '.join(map(repr, known))}); "
                             f"give its unlabelled reference sample with add_reference(X_ref, centre={c!r}) first.")
        out = X.copy()
        keep = ~self.passthrough_
        out[:, keep] = self._apply(X[:, keep], rows)
        return out

    def fit_transform(self, X, y=None, *, centre):
        """``fit(X, centre=centre).transform(X, centre=centre)``."""
        return self.fit(X, centre=centre).transform(X, centre=centre)

    def _feature_labels(self):
        return getattr(self, "feature_names_in_", [f"x{j}" for j in range(self.n_features_in_)])

    # -- state -----------------------------------------------------------------------------------------
    _STATE: tuple = ()  # (attribute, per "centre" or "feature")

    def to_dict(self) -> dict:
        """Fitted state as plain JSON-able data (lists, numbers, strings); :meth:`from_dict` reads it back."""
        check_is_fitted(self, "training_centres_")
        out = {
            "estimator": type(self).__name__, "version": STATE_VERSION, "params": self.get_params(),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else [str(f) for f in self.feature_names_in_],
            "training_centres": list(self.training_centres_), "reference_centres": list(self.reference_centres_),
            "passthrough": self.passthrough_.tolist(),
        }
        for attr, _ in self._STATE:
            out[attr] = np.asarray(getattr(self, attr + "_")).tolist()
        return out

    @classmethod
    def from_dict(cls, state: dict):
        """Rebuild a fitted estimator from :meth:`to_dict`'s output (e.g. read back from JSON)."""
        name = cls.__name__
        if not isinstance(state, dict) or state.get("estimator") != name:
            got = state.get("estimator") if isinstance(state, dict) else type(state).__name__
            raise InputError(f"The 'state' parameter of {name}.from_dict must be the dict written by {name}.to_dict(). Got {got!r} instead.")
        if state.get("version") != STATE_VERSION:
            raise InputError(f"The state of {name} has version {state.get('version')!r}; this srnomogram reads version {STATE_VERSION}.")
        try:
            est = cls(**state["params"])
            p = int(state["n_features_in"])
            names = state.get("feature_names_in")
            training, reference = list(state["training_centres"]), list(state["reference_centres"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"The state of {name} lacks a field or has one of the wrong type; give the dict written by "
                             f"{name}.to_dict().") from None
        est._check_params()
        est.n_features_in_ = p
        if names is not None:
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est.training_centres_ = [_centre_name(c, f"{name}.from_dict") for c in training]
        est.reference_centres_ = [_centre_name(c, f"{name}.from_dict") for c in reference]
        est.passthrough_ = _state_array(state, "passthrough", (p,), name).astype(bool)
        n_c, q = len(est.training_centres_) + len(est.reference_centres_), int((~est.passthrough_).sum())
        for attr, per in cls._STATE:
            setattr(est, attr + "_", _state_array(state, attr, (n_c, q) if per == "centre" else (q,), name))
        return est


class CentreStandardiser(_CentreHarmoniser):
    """Standardise each centre's features by that centre's own location and scale.

    ``method="standard"``: (x − mean) / SD, as ``sklearn.preprocessing.StandardScaler`` fitted on the
    centre alone (SD with ddof=0). ``method="robust"``: (x − median) / IQR, as ``RobustScaler`` with
    its defaults (25th–75th percentile, linear interpolation). Label-free; nothing is pooled across
    centres, so a new centre's parameters come from its reference sample alone.

    Parameters
    ----------
    method : {"standard", "robust"}, default "standard"
    min_samples : int, default 10
        Fewest lesions of a training centre or of a reference sample.

    Attributes
    ----------
    training_centres_, reference_centres_ : list of str or int
        Centres in the order of the rows of ``location_`` and ``scale_``.
    location_, scale_ : ndarray of shape (n_centres, n_harmonised_features)
        Each centre's location and scale of the features not passed through.
    passthrough_ : ndarray of bool of shape (n_features_in_,)
        Features left unchanged (single value, or zero IQR, within some training centre).
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    _PARAMS = {"method": ("'standard' or 'robust'", lambda v: v in ("standard", "robust"))}
    _STATE = (("location", "centre"), ("scale", "centre"))

    def __init__(self, method="standard", min_samples=10):
        self.method = method
        self.min_samples = min_samples

    def _scales_zero(self, Xc):
        zero = ~_distinct(Xc)
        if self.method == "robust":
            q1, q3 = np.percentile(Xc, [25, 75], axis=0)
            zero |= (q3 - q1) == 0
        return zero

    def _estimate(self, Xc):
        if self.method == "robust":
            q1, med, q3 = np.percentile(Xc, [25, 50, 75], axis=0)
            return med, q3 - q1
        return Xc.mean(axis=0), Xc.std(axis=0)

    def _fit_training(self, X, groups):
        est = [self._estimate(X[g]) for g in groups]
        self.location_ = np.array([e[0] for e in est]).reshape(len(groups), X.shape[1])
        self.scale_ = np.array([e[1] for e in est]).reshape(len(groups), X.shape[1])

    def _fit_reference(self, Xr):
        loc, scale = self._estimate(Xr)
        self.location_ = np.vstack([self.location_, loc])
        self.scale_ = np.vstack([self.scale_, scale])

    def _apply(self, X, rows):
        return (X - self.location_[rows]) / self.scale_[rows]


# ComBat's empirical Bayes, as neuroCombat 0.2.12 (neuroCombat.py: aprior, bprior, postmean, postvar,
# it_sol) and sva::ComBat write it; vectorised over features, one centre at a time.
def _aprior(d):
    m, s2 = d.mean(), d.var(ddof=1)
    return (2 * s2 + m**2) / s2


def _bprior(d):
    m, s2 = d.mean(), d.var(ddof=1)
    return (m * s2 + m**3) / s2


def _eb_adjust(s, tol, max_iter):
    """Parametric EB location/scale of one centre from its standardised data ``s`` (n, p)."""
    n = s.shape[0]
    g_hat, d_hat = s.mean(axis=0), s.var(axis=0, ddof=1)
    g_bar, t2 = g_hat.mean(), g_hat.var(ddof=1)
    a, b = _aprior(d_hat), _bprior(d_hat)
    g_old, d_old = g_hat, d_hat
    for _ in range(max_iter):
        g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
        sum2 = ((s - g_new) ** 2).sum(axis=0)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        # the reference's stopping rule, kept as it is (relative to g_old, not |g_old|) so that the
        # iteration stops where neuroCombat's and sva's do
        with np.errstate(divide="ignore", invalid="ignore"):
            change = max((np.abs(g_new - g_old) / g_old).max(), (np.abs(d_new - d_old) / d_old).max())
        g_old, d_old = g_new, d_new
        if not change > tol:
            break
    else:
        warnings.warn(f"ComBat's empirical Bayes iteration did not converge in {max_iter} iterations (change {change:.3g}).",
                      ConvergenceWarning, stacklevel=3)
    return g_new, d_new


class ComBat(_CentreHarmoniser):
    """ComBat harmonisation with empirical Bayes; new centres from unlabelled reference samples.

    ``fit`` is neuroHarmonize's ``harmonizationLearn(data, covars)`` with only the centre in ``covars``
    (``eb=True``: parametric empirical Bayes; ``eb=False``: the centres' own location/scale estimates).
    ``transform`` on training centres is ``harmonizationApply``. :meth:`add_reference` is
    ``harmonizationLearn(reference, covars, orig_model=model)`` for one new site: the grand mean and
    pooled variance of the training centres stay frozen; the new centre's location effect
    ``gamma`` and scale effect ``delta`` are estimated from its reference sample, with empirical
    Bayes priors from that sample's own features (no training centre's effects are refitted).

    A lesion's harmonised value is ``(x − m − sqrt(v)·gamma_c) / sqrt(delta_c) + m`` with ``m`` the
    grand mean and ``v`` the pooled within-centre variance (ddof 0) of the training centres.

    Parameters
    ----------
    eb : bool, default True
        Empirical Bayes shrinkage of the centre effects across features (needs >= 2 features).
    min_samples : int, default 10
        Fewest lesions of a training centre or of a reference sample.
    tol : float, default 1e-4
        Relative change at which the empirical Bayes iteration stops (neuroCombat's and sva's ``conv``).

    Attributes
    ----------
    training_centres_, reference_centres_ : list of str or int
    grand_mean_, var_pooled_ : ndarray of shape (n_harmonised_features,)
        Training centres' grand mean (centre means weighted by size) and pooled within-centre variance.
    gamma_, delta_ : ndarray of shape (n_centres, n_harmonised_features)
        Each centre's additive (in pooled SD units) and multiplicative (variance ratio) effect.
    passthrough_ : ndarray of bool of shape (n_features_in_,)
        Features left unchanged (a single value within some training centre), as ``sva::ComBat``.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    _PARAMS = {"eb": ("a bool", lambda v: isinstance(v, (bool, np.bool_))),
               "tol": ("a float > 0", lambda v: not isinstance(v, bool) and isinstance(v, numbers.Real) and v > 0)}
    _STATE = (("grand_mean", "feature"), ("var_pooled", "feature"), ("gamma", "centre"), ("delta", "centre"))
    _MAX_ITER = 10_000

    def __init__(self, eb=True, min_samples=10, tol=1e-4):
        self.eb = eb
        self.min_samples = min_samples
        self.tol = tol

    def _check_features(self, q):
        if self.eb and q < 2:
            raise InputError(f"ComBat's empirical Bayes pools the centre effects over features and needs at least 2 features to harmonise; "
                             f"got {q}. Use eb=False.")

    def _centre_effects(self, s):
        if self.eb:
            return _eb_adjust(s, self.tol, self._MAX_ITER)
        return s.mean(axis=0), s.var(axis=0, ddof=1)

    def _fit_training(self, X, groups):
        n = X.shape[0]
        means = np.array([X[g].mean(axis=0) for g in groups]).reshape(len(groups), X.shape[1])
        sizes = np.array([len(g) for g in groups], dtype=float)
        self.grand_mean_ = (sizes / n) @ means
        resid = np.empty_like(X)
        for k, g in enumerate(groups):
            resid[g] = X[g] - means[k]
        self.var_pooled_ = (resid**2).sum(axis=0) / n
        s = (X - self.grand_mean_) / np.sqrt(self.var_pooled_)
        effects = [self._centre_effects(s[g]) for g in groups]
        self.gamma_ = np.array([e[0] for e in effects]).reshape(len(groups), X.shape[1])
        self.delta_ = np.array([e[1] for e in effects]).reshape(len(groups), X.shape[1])

    def _fit_reference(self, Xr):
        g, d = self._centre_effects((Xr - self.grand_mean_) / np.sqrt(self.var_pooled_))
        self.gamma_ = np.vstack([self.gamma_, g])
        self.delta_ = np.vstack([self.delta_, d])

    def _apply(self, X, rows):
        sd = np.sqrt(self.var_pooled_)
        s = (X - self.grand_mean_) / sd
        return (s - self.gamma_[rows]) / np.sqrt(self.delta_[rows]) * sd + self.grand_mean_

"""Discrimination and classification metrics of the paper's Table 2, as pROC computes them.

* :func:`roc_auc_ci` — AUC with DeLong's confidence interval (``pROC::ci.auc(method = "delong")``),
* :func:`compare_auc_delong` — paired DeLong test of two scores (``pROC::roc.test(method = "delong")``),
* :func:`paired_auc_difference` — their paired AUC difference with its DeLong CI,
* with ``groups`` (the patient of each lesion) and a patient with several lesions, the three use the
  clustered DeLong variance of Obuchowski (1997), patients as clusters (:func:`auc_ci_method`),
* :func:`youden_threshold` — the Youden-optimal cut-off (``pROC::coords(x = "best")``),
* :func:`threshold_metrics` — accuracy, sensitivity, specificity, PPV, NPV at a cut-off,
* :func:`table2_rows` — the rows of Table 2 for one model: train and test, the test cohort
  classified with the Youden cut-off of the cross-fitted training scores,
* :func:`model_aucs` and :func:`choose_best` — the AUCs of every model (apparent training,
  cross-validated training, test) and the rule that picks the model giving the deep-learning score.

Conventions, shared with the R package (``R/roc.R``) so both sides give the same numbers:

* ``y`` is 0/1 (1 = malignant, the "case" of pROC), a higher score means more likely malignant
  (pROC ``direction = "<"``); ``direction="auto"`` picks the direction as pROC does (``">"`` when
  the controls' median exceeds the cases').
* A lesion is called positive when ``score >= threshold``.
* Candidate thresholds lie midway between consecutive distinct scores (pROC's thresholds);
  among thresholds with equal Youden index the lowest is taken (R: ``youden_threshold()``).
* The CI is clipped to [0, 1] as pROC clips it.

References: DeLong ER, DeLong DM, Clarke-Pearson DL (1988), Biometrics 44:837-845; Sun X, Xu W
(2014), IEEE Signal Process Lett 21:1389-1393 (placements); Obuchowski NA (1997), Nonparametric analysis
of clustered ROC curve data, Biometrics 53:567-578 (clustered variance); Robin X et al. (2011), pROC, BMC
Bioinformatics 12:77; Youden WJ (1950), Cancer 3:32-35.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError, param_error

__all__ = [
    "roc_auc", "roc_auc_ci", "compare_auc_delong", "paired_auc_difference", "youden_threshold", "threshold_metrics", "table2_rows",
    "model_aucs", "choose_best", "BEST_MODEL_RULES", "auc_ci_method", "DELONG", "CLUSTERED_DELONG",
]

#: The ``method`` of an AUC interval: plain DeLong (lesions independent) or clustered (patients as clusters).
DELONG = "DeLong"
CLUSTERED_DELONG = "clustered DeLong (Obuchowski 1997), patients as clusters"


def _check(y, score, func, score_name="score"):
    y = np.asarray(y)
    s = np.asarray(score, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise InputError(f"The 'y' and {score_name!r} parameters of {func} must be 1-D. Got shapes {y.shape} and {s.shape} instead.")
    if len(y) != len(s):
        raise InputError(f"The 'y' and {score_name!r} parameters of {func} must have the same length. Got {len(y)} and {len(s)} instead.")
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise param_error("y", func, "0/1 labels", y[:5].tolist()) from None
    if np.isnan(yf).any() or not np.isin(yf, (0.0, 1.0)).all():
        raise param_error("y", func, "0/1 labels without missing values", sorted(set(y.tolist()))[:5])
    if not np.isfinite(s).all():
        raise InputError(f"The {score_name!r} parameter of {func} must be finite. Got {int((~np.isfinite(s)).sum())} NaN/inf value(s) instead; drop those lesions or impute the score.")
    yi = yf.astype(int)
    if yi.sum() == 0 or yi.sum() == len(yi):
        raise InputError(f"The 'y' parameter of {func} must hold both classes (0 and 1). Got only {int(yi[0])} instead.")
    return yi, s


def _direction(y, s, direction, func):
    if direction not in ("<", ">", "auto"):
        raise param_error("direction", func, "one of '<', '>', 'auto'", direction)
    if direction == "auto":
        direction = ">" if np.median(s[y == 0]) > np.median(s[y == 1]) else "<"
    return s if direction == "<" else -s


def _placements(y, s):
    """DeLong placements: V10 per case, V01 per control (ties count 1/2)."""
    cases, controls = s[y == 1], s[y == 0]
    sc, sx = np.sort(controls), np.sort(cases)
    v10 = (np.searchsorted(sc, cases, "left") + 0.5 * (np.searchsorted(sc, cases, "right") - np.searchsorted(sc, cases, "left"))) / len(controls)
    v01 = ((len(cases) - np.searchsorted(sx, controls, "right")) + 0.5 * (np.searchsorted(sx, controls, "right") - np.searchsorted(sx, controls, "left"))) / len(cases)
    return v10, v01


def _clusters(groups, n, func):
    """Cluster codes 0..I-1 of ``groups`` (the patient of each lesion), or ``None`` when there are no
    groups or every patient has one lesion (then the clustered variance is plain DeLong's)."""
    if groups is None:
        return None
    g = pd.Series(np.asarray(groups, dtype=object).ravel())
    if len(g) != n:
        raise InputError(f"The 'groups' parameter of {func} must give one patient per lesion ({n}). Got {len(g)} value(s) instead.")
    if g.isna().any():
        raise InputError(f"The 'groups' parameter of {func} is missing for lesion {int(np.flatnonzero(g.isna())[0])}; "
                         "give every lesion its patient (a lesion without one is its own patient).")
    codes, _ = pd.factorize(g.astype(str), sort=False)
    return codes if len(np.unique(codes)) < n else None


def auc_ci_method(groups) -> str:
    """How :func:`roc_auc_ci` and :func:`paired_auc_difference` compute their interval for ``groups``:
    :data:`CLUSTERED_DELONG` when some patient has several lesions, else :data:`DELONG`."""
    if groups is None:
        return DELONG
    g = pd.Series(np.asarray(groups, dtype=object).ravel()).astype(str)
    return CLUSTERED_DELONG if g.duplicated().any() else DELONG


def _delong_cov(y, scores, codes=None):
    """AUCs of the columns of ``scores`` (already oriented) and their DeLong covariance matrix.

    ``codes=None``: lesions independent, ``S10/M + S01/N`` with the sample covariances of the
    placements (DeLong 1988). With cluster codes: Obuchowski (1997), the placements summed per
    cluster, ``V10(X_i.)`` and ``V01(Y_i.)``, centred at ``m_i θ`` and ``n_i θ`` (``m_i``, ``n_i`` the
    cluster's cases and controls):
    ``S10 = I10 / ((I10 - 1) M) Σ_i (V10(X_i.) - m_i θ)(...)'``, ``S01`` likewise over the ``I01``
    clusters with controls, ``S11 = I / (I - 1) Σ_i (V10(X_i.) - m_i θ)(V01(Y_i.) - n_i θ)'`` and
    ``cov = S10 / M + S01 / N + (S11 + S11') / (M N)``. NaN with fewer than two cases or controls
    (two clusters holding them, clustered).
    """
    pl = [_placements(y, s) for s in scores]
    v10 = np.vstack([p[0] for p in pl])  # scores x cases
    v01 = np.vstack([p[1] for p in pl])  # scores x controls
    auc = v10.mean(axis=1)
    k, m_tot, n_tot = len(scores), v10.shape[1], v01.shape[1]
    if codes is None:
        if min(m_tot, n_tot) < 2:
            return auc, np.full((k, k), np.nan)
        return auc, np.atleast_2d(np.cov(v10)) / m_tot + np.atleast_2d(np.cov(v01)) / n_tot
    n_cl = int(codes.max()) + 1
    ca, co = codes[y == 1], codes[y == 0]
    m_i = np.bincount(ca, minlength=n_cl)
    n_i = np.bincount(co, minlength=n_cl)
    i10, i01 = int((m_i > 0).sum()), int((n_i > 0).sum())
    if min(i10, i01) < 2:
        return auc, np.full((k, k), np.nan)
    dx = np.vstack([np.bincount(ca, weights=v, minlength=n_cl) for v in v10]) - np.outer(auc, m_i)  # scores x clusters
    dy = np.vstack([np.bincount(co, weights=v, minlength=n_cl) for v in v01]) - np.outer(auc, n_i)
    s10 = i10 / ((i10 - 1) * m_tot) * (dx @ dx.T)
    s01 = i01 / ((i01 - 1) * n_tot) * (dy @ dy.T)
    s11 = n_cl / (n_cl - 1) * (dx @ dy.T)
    return auc, s10 / m_tot + s01 / n_tot + (s11 + s11.T) / (m_tot * n_tot)


def roc_auc(y, score, direction: str = "<") -> float:
    """Area under the ROC curve (Mann–Whitney form; ties count 1/2)."""
    y, s = _check(y, score, "roc_auc")
    s = _direction(y, s, direction, "roc_auc")
    v10, _ = _placements(y, s)
    return float(np.mean(v10))


def roc_auc_ci(y, score, alpha: float = 0.05, direction: str = "<", groups=None) -> tuple[float, float, float]:
    """AUC with its DeLong confidence interval (clustered by patient when ``groups`` says so).

    Parameters
    ----------
    y : array-like of 0/1
        Outcome, 1 = malignant.
    score : array-like of float
        Predicted probability or score, higher = more likely malignant.
    alpha : float
        1 - confidence level (0.05 gives the 95% CI).
    direction : {"<", ">", "auto"}
        As pROC's ``direction``; ``"<"``: controls score lower than cases.
    groups : array-like, optional
        The patient of each lesion. When a patient has several lesions the variance is
        Obuchowski's (1997) clustered DeLong variance, patients as clusters
        (``S10/M + S01/N + 2 S11/(M N)``, see :func:`_delong_cov`); without ``groups`` or with one
        lesion per patient, DeLong's (the numbers of ``groups=None`` exactly).

    Returns
    -------
    (auc, lower, upper) : tuple of float
        Equal to ``pROC::auc`` and ``pROC::ci.auc(method = "delong")`` (normal interval
        ``auc ± z * sqrt(S10/n_cases + S01/n_controls)`` clipped to [0, 1]); clustered, R's
        ``roc_auc(cluster = )``.

    References
    ----------
    Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data. Biometrics 53:567-578.
    """
    from scipy.stats import norm

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise param_error("alpha", "roc_auc_ci", "a float in (0, 1)", alpha)
    y, s = _check(y, score, "roc_auc_ci")
    s = _direction(y, s, direction, "roc_auc_ci")
    codes = _clusters(groups, len(y), "roc_auc_ci")
    if codes is None:  # DeLong, as pROC
        v10, v01 = _placements(y, s)
        auc = float(np.mean(v10))
        var = np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01) if min(len(v10), len(v01)) > 1 else np.nan
    else:
        a, cov = _delong_cov(y, [s], codes)
        auc, var = float(a[0]), cov[0, 0]
    z = norm.ppf(1 - alpha / 2)
    half = z * np.sqrt(var)
    lo, hi = auc - half, auc + half
    return auc, float(min(max(lo, 0.0), 1.0)), float(min(max(hi, 0.0), 1.0))


def _paired_delong(y, score1, score2, direction, func, groups=None):
    """AUC1, AUC2 and the DeLong variance of AUC1 - AUC2 (var1 + var2 - 2 cov) on the same lesions
    (Obuchowski's clustered (co)variances when a patient of ``groups`` has several lesions)."""
    y, s1 = _check(y, score1, func, "score1")
    _, s2 = _check(y, score2, func, "score2")
    s1 = _direction(y, s1, direction, func)
    s2 = _direction(y, s2, direction, func)
    codes = _clusters(groups, len(y), func)
    if codes is not None:
        auc, cov = _delong_cov(y, [s1, s2], codes)
        return float(auc[0]), float(auc[1]), float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    a10, a01 = _placements(y, s1)
    b10, b01 = _placements(y, s2)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    cov = s10 / len(a10) + s01 / len(a01)
    return float(np.mean(a10)), float(np.mean(b10)), float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])


def compare_auc_delong(y, score1, score2, direction: str = "<", groups=None) -> tuple[float, float]:
    """Paired DeLong test of two scores on the same lesions (clustered by patient with ``groups``,
    as :func:`paired_auc_difference`).

    Returns
    -------
    (z, p) : tuple of float
        ``z = (AUC1 - AUC2) / sqrt(var1 + var2 - 2 cov)`` with the DeLong covariance, two-sided
        ``p``; equal to ``pROC::roc.test(method = "delong", paired = TRUE)``'s statistic and
        p-value.
    """
    from scipy.stats import norm

    auc1, auc2, var = _paired_delong(y, score1, score2, direction, "compare_auc_delong", groups)
    if not var > 0:
        return float("nan"), float("nan")
    z = (auc1 - auc2) / np.sqrt(var)
    return float(z), float(2 * norm.sf(abs(z)))


def paired_auc_difference(y, score1, score2, alpha: float = 0.05, direction: str = "<", groups=None) -> dict:
    """Paired difference AUC1 - AUC2 of two scores on the same lesions, with its DeLong CI and test.

    Parameters
    ----------
    y : array-like of 0/1
        Outcome, 1 = malignant.
    score1, score2 : array-like of float
        Two scores of the same lesions (e.g. the nomogram's and the clinical model's risks).
    alpha : float
        1 - confidence level (0.05 gives the 95% CI).
    direction : {"<", ">", "auto"}
        As :func:`roc_auc_ci`, applied to both scores.
    groups : array-like, optional
        The patient of each lesion: with a patient of several lesions, the variances and the
        covariance are Obuchowski's (1997) clustered ones (``cov = S10^{12}/M + S01^{12}/N +
        (S11^{12} + S11^{21})/(M N)``); otherwise DeLong's, as ``groups=None``.

    Returns
    -------
    dict
        ``auc1``, ``auc2``, ``estimate`` (AUC1 - AUC2), ``se`` (``sqrt(var1 + var2 - 2 cov)``, the
        DeLong variances and covariance, ``pROC::var`` and ``pROC::cov``), ``lower``, ``upper``
        (``estimate ± z_{1-alpha/2} se``, not clipped; pROC's ``roc.test(method = "delong",
        paired = TRUE)$conf.int``), ``statistic`` (z) and ``p_value`` (two-sided, as
        :func:`compare_auc_delong`), ``conf_level``. Without spread (two identical scores) the
        interval, z and p are NaN.

    References
    ----------
    DeLong ER, DeLong DM, Clarke-Pearson DL (1988), Biometrics 44:837-845. Obuchowski NA (1997),
    Biometrics 53:567-578.
    """
    from scipy.stats import norm

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise param_error("alpha", "paired_auc_difference", "a float in (0, 1)", alpha)
    auc1, auc2, var = _paired_delong(y, score1, score2, direction, "paired_auc_difference", groups)
    diff = auc1 - auc2
    out = {"auc1": auc1, "auc2": auc2, "estimate": diff, "se": np.nan, "lower": np.nan, "upper": np.nan,
           "statistic": np.nan, "p_value": np.nan, "conf_level": 1 - alpha}
    if var > 0:
        se = float(np.sqrt(var))
        half = norm.ppf(1 - alpha / 2) * se
        out.update(se=se, lower=diff - half, upper=diff + half, statistic=diff / se, p_value=float(2 * norm.sf(abs(diff / se))))
    return out


def _roc_thresholds(s):
    u = np.unique(s)
    return np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])


def youden_threshold(y, score) -> float:
    """Youden-optimal cut-off: maximises sensitivity + specificity - 1.

    Candidates are pROC's thresholds (midpoints between consecutive distinct scores, excluding
    ±inf); among equal maxima the lowest threshold is returned, as R's ``youden_threshold()``
    does with ``pROC::roc()``'s thresholds. Lesions with ``score >= threshold`` are positive.
    """
    y, s = _check(y, score, "youden_threshold")
    th = _roc_thresholds(s)[1:-1]
    if len(th) == 0:  # a constant score: the only finite cut-off keeps everyone on one side
        return float(s[0])
    cases, controls = np.sort(s[y == 1]), np.sort(s[y == 0])
    sens = (len(cases) - np.searchsorted(cases, th, "left")) / len(cases)
    spec = np.searchsorted(controls, th, "left") / len(controls)
    j = sens + spec
    return float(th[np.flatnonzero(j == j.max())[0]])


def threshold_metrics(y, score, threshold) -> dict:
    """Accuracy, sensitivity, specificity, PPV and NPV with ``score >= threshold`` positive.

    Returns
    -------
    dict
        ``threshold``, ``accuracy``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``
        (NaN where the denominator is 0), ``tp``, ``fp``, ``tn``, ``fn``, ``n``.
    """
    y = np.asarray(y)
    s = np.asarray(score, dtype=float)
    if len(y) != len(s) or len(y) == 0:
        raise InputError(f"The 'y' and 'score' parameters of threshold_metrics must have the same non-zero length. Got {len(y)} and {len(s)} instead.")
    if not np.isin(y, (0, 1)).all():
        raise param_error("y", "threshold_metrics", "0/1 labels", sorted(set(np.asarray(y).tolist()))[:5])
    if not np.isfinite(s).all():
        raise InputError("The 'score' parameter of threshold_metrics must be finite; drop or impute NaN/inf scores.")
    t = float(threshold)
    if not np.isfinite(t):
        raise param_error("threshold", "threshold_metrics", "a finite number", threshold)
    pos = s >= t
    y = y.astype(int)
    tp = int(np.sum(pos & (y == 1)))
    fp = int(np.sum(pos & (y == 0)))
    tn = int(np.sum(~pos & (y == 0)))
    fn = int(np.sum(~pos & (y == 1)))

    def ratio(a, b):
        return a / b if b > 0 else float("nan")

    return {
        "threshold": t,
        "accuracy": ratio(tp + tn, len(y)),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": int(len(y)),
    }


def table2_rows(name, y_train, s_train, y_test, s_test, alpha: float = 0.05, s_train_cv=None, groups_train=None,
                groups_test=None) -> pd.DataFrame:
    """The paper's Table 2 rows for one model: AUC (DeLong CI) and threshold metrics, train and test.

    The cut-off is the training cohort's Youden cut-off, taken from the cross-fitted
    (out-of-fold) training scores ``s_train_cv`` (:func:`srnomogram.validation.cross_fit`): scores
    of models that never saw the lesion, so the cut-off and the training accuracy, sensitivity,
    specificity, PPV and NPV are cross-validated, not apparent. The test cohort is classified with
    that frozen cut-off. Without out-of-fold scores (``s_train_cv=None``, e.g. the paper's recipe
    ``train_score: fitted`` with a model that has none), the cut-off and the training metrics fall
    back to the full-fit (apparent) training scores, and the rows say so (``threshold_from``).

    The training AUC (``auc``) is the full fit's, apparent; ``s_train_cv`` adds the
    cross-validated training AUC with its DeLong CI (``cv_auc``, ``cv_auc_lower``,
    ``cv_auc_upper``; missing on the test row).

    ``groups_train`` and ``groups_test`` (the patient of each lesion) make every AUC interval of a
    set where a patient has several lesions Obuchowski's clustered DeLong interval
    (:func:`roc_auc_ci`); the rows then gain ``auc_method`` (:func:`auc_ci_method` of the row's set).

    Returns
    -------
    pandas.DataFrame
        Two rows (``set`` = train, test) with columns ``model``, ``set``, ``auc``, ``auc_lower``,
        ``auc_upper``, ``auc_estimate`` (``"apparent"`` on train, ``"held-out"`` on test),
        [``cv_auc``, ``cv_auc_lower``, ``cv_auc_upper``,] ``accuracy``, ``sensitivity``,
        ``specificity``, ``ppv``, ``npv``, ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``, ``n``,
        ``estimate`` (how the row's threshold metrics were obtained: ``"cross-validated"`` or
        ``"apparent"`` on train, ``"held-out"`` on test) and ``threshold_from``
        (``"cross-validated"`` or ``"apparent"`` training scores).
    """
    has_cv = s_train_cv is not None and not np.isnan(np.asarray(s_train_cv, dtype=float)).any()
    s_cut = s_train_cv if has_cv else s_train
    source = "cross-validated" if has_cv else "apparent"
    threshold = youden_threshold(y_train, s_cut)
    cv = roc_auc_ci(y_train, s_train_cv, alpha=alpha, groups=groups_train) if has_cv else None
    clustered = CLUSTERED_DELONG in (auc_ci_method(groups_train), auc_ci_method(groups_test))
    rows = []
    for split, y, s, s_cls, g in (("train", y_train, s_train, s_cut, groups_train), ("test", y_test, s_test, s_test, groups_test)):
        auc, lo, hi = roc_auc_ci(y, s, alpha=alpha, groups=g)
        m = threshold_metrics(y, s_cls, threshold)
        row = {"model": str(name), "set": split, "auc": auc, "auc_lower": lo, "auc_upper": hi,
               "auc_estimate": "apparent" if split == "train" else "held-out"}
        if cv is not None:
            row.update(zip(("cv_auc", "cv_auc_lower", "cv_auc_upper"), cv if split == "train" else (np.nan,) * 3))
        rows.append({**row, **{k: m[k] for k in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "threshold", "tp", "fp", "tn", "fn", "n")},
                     "estimate": source if split == "train" else "held-out", "threshold_from": source,
                     **({"auc_method": auc_ci_method(g)} if clustered else {})})
    return pd.DataFrame(rows)


BEST_MODEL_RULES = ("cv_auc", "test_auc", "train_auc", "test_auc_cnn")
#: The rules by which the test set chooses the model (the paper's): their test AUCs are optimistic.
TEST_SET_RULES = ("test_auc", "test_auc_cnn")
_RULE_KEY = {"cv_auc": "cv_auc", "test_auc": "test_auc", "train_auc": "train_auc", "test_auc_cnn": "test_auc"}


def model_aucs(scores: pd.DataFrame, models, oof: pd.DataFrame | None = None) -> pd.DataFrame:
    """AUC of every model: apparent training, cross-validated training (when ``oof`` has it) and test.

    Parameters
    ----------
    scores : DataFrame
        ``split`` (train/test), ``label`` and one score column per model (the models fitted on
        the whole training set).
    models : list of str
        Score columns.
    oof : DataFrame, optional
        Same rows and columns, the training rows holding out-of-fold scores.

    Returns
    -------
    DataFrame with columns ``model``, ``train_auc``, ``cv_auc`` (NaN without ``oof``), ``test_auc``.
    """
    tr, te = (scores["split"] == "train").to_numpy(), (scores["split"] == "test").to_numpy()
    y = scores["label"].to_numpy()
    rows = []
    for m in models:
        cv = np.nan
        if oof is not None and m in oof.columns:
            cv = roc_auc(y[tr], oof[m].to_numpy()[tr])
        rows.append({"model": m, "train_auc": roc_auc(y[tr], scores[m].to_numpy()[tr]), "cv_auc": cv,
                     "test_auc": roc_auc(y[te], scores[m].to_numpy()[te])})
    return pd.DataFrame(rows, columns=["model", "train_auc", "cv_auc", "test_auc"])


def choose_best(scores: pd.DataFrame, models, rule: str = "cv_auc", oof: pd.DataFrame | None = None) -> tuple[str, pd.DataFrame]:
    """Pick the model whose score becomes the deep-learning score; return it and :func:`model_aucs`.

    Rules:

    * ``cv_auc`` (default): the highest cross-validated training AUC (out-of-fold scores in
      ``oof``); the test set chooses nothing.
    * ``test_auc``: the paper's rule, the highest test-set AUC among all models. The test set then
      chose the model, so the test AUCs of that model and of the nomogram built on it are
      optimistic.
    * ``train_auc``: the highest apparent (in-sample) training AUC.
    * ``test_auc_cnn``: the highest test AUC among the CNNs only (as ``test_auc``, optimistic).

    Ties go to the higher apparent training AUC (under ``train_auc``: the higher test AUC), then
    to the earlier model in Table 2's order.
    """
    from .errors import ConfigError

    if rule not in BEST_MODEL_RULES:
        raise ConfigError(f"nomogram.best_model_rule must be one of {', '.join(map(repr, BEST_MODEL_RULES))}. Got {rule!r} instead.")
    table = model_aucs(scores, models, oof)
    pool = table
    if rule == "test_auc_cnn":
        from .names import RADIOMICS_METHODS, parse_model_id  # the CNNs: every model whose method is no radiomics classifier

        pool = table[[parse_model_id(m)[1] not in RADIOMICS_METHODS for m in table["model"]]]
        if pool.empty:
            raise ConfigError("nomogram.best_model_rule 'test_auc_cnn' needs deep.enabled: true.")
    key = _RULE_KEY[rule]
    if key == "cv_auc" and pool["cv_auc"].isna().any():
        missing = pool.loc[pool["cv_auc"].isna(), "model"].tolist()
        raise ConfigError(f"nomogram.best_model_rule 'cv_auc' needs out-of-fold scores of every model; {missing[0]!r} has none.")
    other = "test_auc" if key == "train_auc" else "train_auc"
    order = pool.assign(_o=range(len(pool))).sort_values([key, other, "_o"], ascending=[False, False, True])
    return str(order["model"].iloc[0]), table


def score_check(model, y_train, s_train_cv, alpha: float = 0.05, groups=None) -> dict:
    """Does the chosen model's cross-validated training score discriminate? (the score check)

    The deep-learning score enters the nomogram as a fixed covariate, so neither the nomogram's
    apparent AUC nor Harrell's optimism correction (``rms::validate`` refits the nomogram, not the
    image model) can tell a score with signal from one without. Its out-of-fold training AUC can:
    under null labels out-of-fold scores are even anti-correlated with the labels (leaving a lesion
    out shifts its fold-mates' label balance against it), and a nomogram will happily fit that with
    a negative coefficient. The check flags ``no_signal`` when the DeLong interval of the
    cross-validated AUC reaches 0.5 (lower bound ≤ 0.5).

    Parameters
    ----------
    model : str
        Name of the chosen model (reported, not used).
    y_train : array-like of 0/1
        Training labels.
    s_train_cv : array-like of float or None
        Out-of-fold training scores of the model; ``None`` when the study has none.
    alpha : float
        1 - confidence level of the interval (the study's ``nomogram.alpha``).
    groups : array-like, optional
        The patient of each training lesion: with a patient of several lesions the interval is
        Obuchowski's clustered DeLong interval (:func:`roc_auc_ci`), and the result says so in
        ``method``.

    Returns
    -------
    dict
        ``model``, ``cv_auc``, ``cv_auc_lower``, ``cv_auc_upper``, ``conf_level``, ``no_signal``
        (``None``, with NaN AUCs, when there are no out-of-fold scores); clustered, also ``method``
        (:data:`CLUSTERED_DELONG`).
    """
    out = {"model": str(model), "cv_auc": np.nan, "cv_auc_lower": np.nan, "cv_auc_upper": np.nan,
           "conf_level": 1 - alpha, "no_signal": None}
    if auc_ci_method(groups) == CLUSTERED_DELONG:
        out["method"] = CLUSTERED_DELONG
    if s_train_cv is None or np.isnan(np.asarray(s_train_cv, dtype=float)).any():
        return out
    auc, lo, hi = roc_auc_ci(y_train, s_train_cv, alpha=alpha, groups=groups)
    out.update(cv_auc=auc, cv_auc_lower=lo, cv_auc_upper=hi, no_signal=bool(lo <= 0.5))
    return out

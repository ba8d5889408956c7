"""Folds and cross-fitting of any estimator: out-of-fold scores, shared by every model.

A score that feeds a second model (the nomogram) must not be fitted to the lesions it scores: a
CNN that memorises its training images gives training scores near 0 and 1, the nomogram's
coefficient for the score is then fitted to memorised values, and a bootstrap of the nomogram
(``rms::calibrate``, ``rms::validate``), which holds the score fixed, cannot see it. Here the
training score of each lesion comes from a model fitted on the other folds (cross-fitting; Chernozhukov
et al. 2018, *Econometrics Journal* 21:C1; Harrell, *Regression Modeling Strategies*, 2nd ed.,
§5.3). Test (and external) scores come from the model refitted on the whole training set.

The folds are stratified k-fold folds (scikit-learn's ``StratifiedKFold`` with shuffling), derived
from the study seed, and the same for every model of a study. When the cohort has patient ids
(:func:`~srnomogram.data.manifest.patient_ids`) they are stratified *group* k-fold folds
(``StratifiedGroupKFold``): a patient's lesions share one fold, so that no lesion is scored by a
model that saw its twin view or its sibling lesion. Each fold is one unit of work: with a
``cache``, a fold's held-out scores are written atomically as soon as it finishes, so a killed run
resumes at the fold it was in.

>>> folds = stratified_folds(y_train, n_splits=5, seed=0)            # doctest: +SKIP
>>> oof = cross_fit(make_model("lr"), X_train, y_train, folds)        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, param_error

__all__ = ["stratified_folds", "training_folds", "folds_of", "cross_fit", "FoldCache", "null_auc_se"]

logger = logging.getLogger(__name__)


def stratified_folds(y, n_splits: int = 5, seed: int = 0, groups=None) -> np.ndarray:
    """Fold number (0 … k−1) of every row: stratified k-fold with shuffling, seeded, by group if given.

    Parameters
    ----------
    y : array-like of {0, 1}
        Labels of the training lesions.
    n_splits : int, default 5
        Number of folds k; lowered to the size of the smaller class when that is smaller
        (each fold then still holds both classes in its training part). With ``groups`` the
        class sizes are counted in groups, a group being malignant when any of its rows is.
    seed : int
        ``random_state`` of :class:`sklearn.model_selection.StratifiedKFold` (or
        ``StratifiedGroupKFold``).
    groups : array-like, optional
        Patient of each row (:func:`~srnomogram.data.manifest.patient_ids`): the rows of a group
        share one fold (:class:`sklearn.model_selection.StratifiedGroupKFold`, ``shuffle=True``).
        ``None``: every row is its own group, through ``StratifiedKFold``.

    Raises
    ------
    InputError
        Fewer than 2 lesions (patients, with ``groups``) in a class (no fold could hold it out
        and still train on it).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise param_error("n_splits", "stratified_folds", "an int >= 2", n_splits)
    y = np.asarray(y)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(y):
            raise InputError(f"groups has {len(groups)} entries but y has {len(y)} labels; give one patient id per lesion.")
        unit = "patients"
        counts = np.unique(pd.Series(y).groupby(groups).max().to_numpy(), return_counts=True)[1]
    else:
        unit = "lesions"
        counts = np.unique(y, return_counts=True)[1]
    if counts.size < 2 or counts.min() < 2:
        raise InputError(
            f"Cross-fitting needs at least 2 benign and 2 malignant training {unit}; the training set has "
            f"class counts {counts.tolist()}. Add lesions or set nomogram.train_score: fitted."
        )
    k = int(min(n_splits, counts.min()))
    if k < n_splits:
        logger.warning("validation.folds=%d lowered to %d: the smaller class has only %d training %s.", n_splits, k, k, unit)
    out = np.empty(len(y), dtype=np.int64)
    if groups is None:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=int(seed)).split(np.zeros(len(y)), y)
    else:
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed)).split(np.zeros(len(y)), y, groups)
    for f, (_, test) in enumerate(splits):
        out[test] = f
    return out


def training_folds(cohort: pd.DataFrame, n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Cross-fitting folds of a cohort's training lesions, the same for every model of a study.

    Parameters
    ----------
    cohort : pandas.DataFrame
        ``case_id``, ``label`` and ``split`` (``"train"``/``"test"``) per lesion; with a
        ``patient_id`` column the folds are grouped by patient (all of a patient's lesions in
        one fold); without it they are the lesion folds of ``StratifiedKFold``.
    n_splits, seed : int
        As :func:`stratified_folds`.

    Returns
    -------
    pandas.DataFrame
        ``case_id`` (str) and ``fold`` (0 … k−1), one row per training lesion, in cohort order.
    """
    from .data.manifest import patient_ids

    train = cohort[cohort["split"] == "train"]
    groups = patient_ids(train).to_numpy() if "patient_id" in train.columns else None
    folds = stratified_folds(train["label"].to_numpy(), n_splits=n_splits, seed=seed, groups=groups)
    return pd.DataFrame({"case_id": train["case_id"].astype(str).to_numpy(), "fold": folds})


def folds_of(folds: pd.DataFrame, case_ids) -> np.ndarray:
    """Fold number of each of ``case_ids`` from a :func:`training_folds` table.

    Raises
    ------
    InputError
        A case id the table does not hold (a lesion that is not in the training set).
    """
    f = folds.assign(case_id=folds["case_id"].astype(str)).set_index("case_id")["fold"]
    ids = pd.Index([str(i) for i in case_ids])
    missing = ids.difference(f.index)
    if len(missing):
        raise InputError(f"The folds table has no fold for case {missing[0]!r}; folds are made for the training lesions only.")
    return f.reindex(ids).to_numpy(dtype=np.int64)


class FoldCache:
    """Held-out scores of finished folds, one CSV per fold, keyed by what determines them.

    Parameters
    ----------
    folder : path-like
        Where the fold files live (outside the stage's temporary folder, so that they survive a
        killed run).
    key : str
        Hash of everything the scores depend on (settings, inputs, folds); a fold file is reused
        only under the same key.
    """

    def __init__(self, folder, key: str):
        self.folder, self.key = Path(folder), str(key)

    def _path(self, fold: int) -> Path:
        return self.folder / f"fold{fold}-{self.key[:20]}.csv"

    def get(self, fold: int, ids) -> np.ndarray | None:
        p = self._path(fold)
        if not p.is_file():
            return None
        try:
            df = pd.read_csv(p, dtype={"case_id": str})
            s = df.set_index("case_id")["score"].reindex([str(i) for i in ids])
        except (ValueError, KeyError, OSError):
            return None
        return None if s.isna().any() else s.to_numpy(dtype=float)

    def put(self, fold: int, ids, scores) -> None:
        from .utils import write_csv_atomic

        self.folder.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(pd.DataFrame({"case_id": [str(i) for i in ids], "score": np.asarray(scores, dtype=float)}), self._path(fold))

    def clear_other_keys(self) -> None:
        """Drop fold files of older settings (kept until a stage finishes, for a resume)."""
        for p in self.folder.glob("fold*-*.csv"):
            if not p.name.endswith(f"-{self.key[:20]}.csv"):
                p.unlink(missing_ok=True)


def _take(X, idx):
    if hasattr(X, "subset"):  # srnomogram.deep.data.RoiSet
        return X.subset(idx)
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[idx]
    return np.asarray(X)[idx]


def cross_fit(estimator, X, y, folds, *, ids=None, cache: FoldCache | None = None, label: str = "", fit_params=None) -> np.ndarray:
    """Out-of-fold malignant probabilities: row i scored by a clone of ``estimator`` fitted without i's fold.

    Parameters
    ----------
    estimator : scikit-learn style classifier
        Cloned for each fold (``sklearn.base.clone``), fitted with ``fit(X_fold, y_fold)``, scored
        with ``predict_proba(X_out)[:, 1]``. Works for scikit-learn pipelines and for
        :class:`~srnomogram.deep.DeepClassifier` on a :class:`~srnomogram.deep.data.RoiSet`.
    X : DataFrame, ndarray or RoiSet
        The training lesions (rows in the order of ``y`` and ``folds``).
    y : array-like of {0, 1}
    folds : array-like of int
        Fold of each row (:func:`stratified_folds`).
    ids : sequence of str, optional
        Case ids (needed with ``cache``).
    cache : FoldCache, optional
        Reuse finished folds and write each new fold as soon as it is done.
    label : str
        Name shown in the log ("fold 2 of 5").
    fit_params : dict, optional
        Arrays with one entry per row, passed to each fold's ``fit`` restricted to its rows, e.g.
        ``{"model__groups": patients}`` (the SVM's inner folds by patient). A ``cache`` must be keyed
        by them too.

    Returns
    -------
    ndarray of float, shape (n,)
    """
    from sklearn.base import clone

    y = np.asarray(y)
    folds = np.asarray(folds)
    if len(folds) != len(y):
        raise InputError(f"folds has {len(folds)} entries but y has {len(y)} labels.")
    if cache is not None and ids is None:
        raise InputError("cross_fit with a cache needs the case ids (ids=...).")
    out = np.full(len(y), np.nan)
    k = int(folds.max()) + 1
    for f in range(k):
        held = np.flatnonzero(folds == f)
        fit_rows = np.flatnonzero(folds != f)
        held_ids = None if ids is None else [ids[i] for i in held]
        if cache is not None:
            got = cache.get(f, held_ids)
            if got is not None:
                out[held] = got
                logger.info("%sfold %d of %d: reused.", f"{label}: " if label else "", f + 1, k)
                continue
        t0 = time.perf_counter()
        model = clone(estimator).fit(_take(X, fit_rows), y[fit_rows], **{k: np.asarray(v)[fit_rows] for k, v in (fit_params or {}).items()})
        out[held] = np.asarray(model.predict_proba(_take(X, held)), dtype=float)[:, 1]
        if cache is not None:
            cache.put(f, held_ids, out[held])
        logger.info("%sfold %d of %d: done in %.1f s.", f"{label}: " if label else "", f + 1, k, time.perf_counter() - t0)
    return out


def null_auc_se(n1: int, n0: int) -> float:
    """Standard error of the AUC when the score carries no information (AUC = 0.5).

    The Mann–Whitney statistic's null variance (Hanley & McNeil 1982, *Radiology* 143:29, with
    A = 0.5): ``sqrt((n1 + n0 + 1) / (12 n1 n0))``.
    """
    return float(np.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0)))

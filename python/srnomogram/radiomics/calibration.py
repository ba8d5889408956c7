"""The SVM's Platt scaling, with an inner cross-validation that fits the data it is fitted on.

``SVC(probability=True)`` (deprecated in scikit-learn 1.9) and ``CalibratedClassifierCV(cv=5)`` both
cross-validate inside the training data with 5 folds and fail when a class has fewer than 5 lesions:
a small cohort, or a cross-fitting fold of one, whose outer folds :func:`srnomogram.validation.stratified_folds`
had already lowered. :class:`PlattCalibratedCV` lowers the inner folds the same way.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV

from ..errors import InputError, param_error

__all__ = ["PlattCalibratedCV", "inner_folds"]

logger = logging.getLogger(__name__)


def inner_folds(y, cv: int = 5, groups=None, what: str = "The SVM's Platt calibration") -> tuple[int, np.ndarray | None]:
    """The number of inner folds for labels ``y``: ``cv``, or the size of the smaller class when smaller.

    Parameters
    ----------
    y : array-like of {0, 1}
        Training labels.
    cv : int
        The most folds (>= 2).
    groups : array-like, optional
        Patient of each row. When a patient has several rows, classes are counted in patients (a
        patient is malignant when any of its rows is) and the rows of a patient share a fold.
    what : str
        What cross-validates, for the error message.

    Returns
    -------
    (int, list or None)
        ``k``, and the folds as ``(train, test)`` index pairs of
        :class:`sklearn.model_selection.StratifiedGroupKFold` when patients have several rows (None:
        every row is its own patient, and ``StratifiedKFold(k)`` applies).

    Raises
    ------
    InputError
        Fewer than 2 of a class (rows, or patients): no fold could hold one out and still fit on it.
    """
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise param_error("cv", "PlattCalibratedCV", "an int >= 2 (the most inner folds)", cv)
    y = np.asarray(y)
    grouped = groups is not None and pd.Series(np.asarray(groups)).duplicated().any()
    unit = "patients" if grouped else "lesions"
    per_unit = pd.Series(y).groupby(np.asarray(groups)).max().to_numpy() if grouped else y
    classes, counts = np.unique(per_unit, return_counts=True)
    have = {str(c): int(n) for c, n in zip(classes, counts)}
    if len(classes) < 2 or counts.min() < 2:
        raise InputError(
            f"{what} cross-validates inside its training data and needs at least 2 benign and 2 malignant training "
            f"{unit}; it got {have.get('0', 0)} benign and {have.get('1', 0)} malignant. Add lesions of the smaller "
            "class, or fit the logistic regression alone (radiomics models: [lr])."
        )
    k = int(min(cv, counts.min()))
    if k < cv:
        logger.info("%s: %d inner folds instead of %d (the smaller class has %d training %s).", what, k, cv, int(counts.min()), unit)
    if not grouped:
        return k, None
    from sklearn.model_selection import StratifiedGroupKFold

    return k, list(StratifiedGroupKFold(n_splits=k).split(np.zeros(len(y)), y, np.asarray(groups)))


class PlattCalibratedCV(CalibratedClassifierCV):
    """``CalibratedClassifierCV`` whose inner cross-validation adapts to the data it is fitted on.

    Parameters are those of :class:`sklearn.calibration.CalibratedClassifierCV`; ``cv`` must be an
    int, the most folds (5 by default). ``fit`` lowers it to the number of training lesions of the
    smaller class (:func:`inner_folds`), so that a small training set is still calibrated on every
    lesion. With at least ``cv`` lesions of each class the folds are ``StratifiedKFold(cv)``, as
    ``CalibratedClassifierCV(cv=5)`` makes them, and so are the numbers. ``fit(..., groups=)`` (the
    patient of each lesion) keeps a patient's lesions in one inner fold. ``n_splits_``: the folds used.
    """

    def fit(self, X, y, sample_weight=None, groups=None, **fit_params):
        """Fit the SVM and its Platt calibration on ``k = min(cv, smaller class)`` inner folds; returns self."""
        cv = self.cv
        k, splits = inner_folds(y, cv, groups)
        try:  # the folds chosen for this fit; the parameter stays as the user set it
            self.cv = k if splits is None else splits
            super().fit(X, y, sample_weight=sample_weight, **fit_params)
        finally:
            self.cv = cv
        self.n_splits_ = k
        return self

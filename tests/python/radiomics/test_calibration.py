"""The SVM's Platt scaling: scikit-learn's CalibratedClassifierCV, with inner folds that fit small classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.svm import SVC

from srnomogram.errors import InputError
from srnomogram.radiomics.calibration import PlattCalibratedCV, inner_folds


def _data(n_benign, n_malignant, seed=0, p=4):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n_benign, int), np.ones(n_malignant, int)]
    X = rng.normal(size=(len(y), p)) + np.outer(y, np.linspace(1.5, 0.5, p))
    return X, y


def _svc():
    return SVC(kernel="linear", C=1.0, random_state=0)


def test_with_five_of_each_class_it_is_calibratedclassifiercv_cv5_exactly():
    X, y = _data(60, 40)
    ours = PlattCalibratedCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    ref = CalibratedClassifierCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    np.testing.assert_array_equal(ours.predict_proba(X), ref.predict_proba(X))
    assert ours.n_splits_ == 5 and ours.cv == 5  # the parameter is left as set


@pytest.mark.parametrize("n_malignant", [3, 2])
def test_three_or_two_malignant_lesions_are_calibrated_on_that_many_folds(n_malignant):
    X, y = _data(20, n_malignant, seed=n_malignant)
    with pytest.raises(ValueError, match="Requesting 5-fold"):  # what make_model("svm") did before
        CalibratedClassifierCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    ours = PlattCalibratedCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    ref = CalibratedClassifierCV(_svc(), method="sigmoid", cv=n_malignant, ensemble=False).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=0)
    assert ours.n_splits_ == n_malignant and ours.cv == 5


def test_one_malignant_lesion_is_refused_saying_how_many_of_each_class_are_needed():
    X, y = _data(20, 1)
    with pytest.raises(InputError, match=r"needs at least 2 benign and 2 malignant training lesions; it got 20 benign and 1 "
                                         r"malignant\. Add lesions") as err:
        PlattCalibratedCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="it got 0 benign and 5 malignant"):
        inner_folds(np.ones(5, int))


def test_patient_groups_keep_a_patients_lesions_in_one_inner_fold_and_count_patients():
    X, y = _data(16, 8, seed=3)
    groups = np.repeat(np.arange(12), 2)  # 12 patients of 2 lesions: 8 benign, 4 malignant patients
    k, splits = inner_folds(y, 5, groups)
    assert k == 4  # 8 malignant lesions, but 4 malignant patients
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
    ours = PlattCalibratedCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y, groups=groups)
    ref_cv = list(StratifiedGroupKFold(n_splits=4).split(X, y, groups))
    ref = CalibratedClassifierCV(_svc(), method="sigmoid", cv=ref_cv, ensemble=False).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=0)
    # one lesion per patient is the lesion case: StratifiedKFold, numbers unchanged
    single = PlattCalibratedCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y, groups=np.arange(len(y)))
    plain = CalibratedClassifierCV(_svc(), method="sigmoid", cv=5, ensemble=False).fit(X, y)
    np.testing.assert_array_equal(single.predict_proba(X), plain.predict_proba(X))


def test_cv_must_be_an_int_of_at_least_two():
    X, y = _data(10, 10)
    with pytest.raises(InputError, match="'cv' parameter of PlattCalibratedCV must be an int >= 2"):
        PlattCalibratedCV(_svc(), cv=1).fit(X, y)

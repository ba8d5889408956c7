"""The radiomics pipelines against a hand-built scipy/numpy/scikit-learn computation."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from srnomogram.errors import InputError
from srnomogram.metrics import roc_auc
from srnomogram.radiomics.models import fit_or_sr_models, make_model, model_report, write_board
from srnomogram.radiomics.selection import mannwhitney_pvalues


def _features(seed=0, n=120, p=12):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, p))
    X[:, :4] += np.outer(y, [1.0, 0.8, 0.5, 0.3])
    X[:, 4] = 3 * X[:, 0] + 0.1 * rng.normal(size=n)  # correlated with feature 0
    cols = [f"original_glcm_F{i}" for i in range(p)]
    ids = [f"case{i:03d}" for i in range(n)]
    return pd.DataFrame(X, index=pd.Index(ids, name="case_id"), columns=cols), pd.Series(y, index=ids)


def test_lr_pipeline_equals_hand_built_selection_and_sklearn_lr():
    X, y = _features()
    model = make_model("lr").fit(X, y)
    # by hand: Mann–Whitney p < 0.05, z-score, |r| <= 0.9 greedy by p, then LogisticRegression
    p = mannwhitney_pvalues(X.to_numpy(), y.to_numpy())
    sel = np.flatnonzero(p < 0.05)
    Z = (X.to_numpy()[:, sel] - X.to_numpy()[:, sel].mean(0)) / X.to_numpy()[:, sel].std(0)
    r = np.corrcoef(Z, rowvar=False)
    kept = []
    for j in np.argsort(p[sel], kind="stable"):
        if all(abs(r[j, k]) <= 0.9 for k in kept):
            kept.append(j)
    kept = sorted(kept)
    ref = LogisticRegression(max_iter=10000).fit(Z[:, kept], y)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], ref.predict_proba(Z[:, kept])[:, 1], rtol=1e-6, atol=1e-9)
    report = model_report(model)
    assert list(report["feature"][:-1]) == list(X.columns[sel][kept])
    np.testing.assert_allclose(report["coefficient"][:-1], ref.coef_.ravel(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["lr", "svm"])
def test_models_are_sklearn_pipelines_that_pickle(kind):
    X, y = _features(1)
    model = make_model(kind, random_state=3)
    assert isinstance(model, Pipeline) and "select__alpha" in model.get_params()
    model.fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    assert roc_auc(y, model.predict_proba(X)[:, 1]) > 0.8
    # the same seed gives the same numbers
    np.testing.assert_array_equal(model.predict_proba(X), make_model(kind, random_state=3).fit(X, y).predict_proba(X))


def test_fit_or_sr_models_scores_table2_and_board(tmp_path):
    from srnomogram.board import read_pin

    X, y = _features(2)
    X_sr, _ = _features(3)
    split = pd.Series(np.where(np.arange(len(y)) % 5 == 0, "test", "train"), index=y.index)
    X_sr.iloc[5, 7] = np.nan  # a NaN feature is dropped with a warning
    with pytest.warns(UserWarning, match="SR: 1 feature"):
        res = fit_or_sr_models(y, split, X, X_sr)
    assert set(res["models"]) == {"or_lr", "or_svm", "sr_lr", "sr_svm"}
    scores = res["scores"]
    assert list(scores.columns) == ["case_id", "split", "label", "or_lr", "or_svm", "sr_lr", "sr_svm"]
    assert scores["case_id"].tolist() == list(y.index) and res["scores_oof"] is None
    t2 = res["table2"]
    assert len(t2) == 8
    row = t2[(t2.model == "or_lr") & (t2.set == "test")].iloc[0]
    assert row["label"] == "OR_LR"
    test = (split == "test").to_numpy()
    assert row["auc"] == pytest.approx(roc_auc(y[test], scores["or_lr"][test]))
    assert "original_glcm_F7" not in set(res["report"].query("model == 'sr_lr'")["feature"])
    assert "original_glcm_F7" not in res["features"]["sr_lr"] and len(res["features"]["or_lr"]) == X.shape[1]
    with pytest.raises(InputError, match="NaN/inf for case 'case005'"):
        fit_or_sr_models(y, split, X, X_sr, nonfinite="raise")
    versions = write_board(tmp_path / "board", res, features={"or": X}, metadata={"seed": 0})
    assert set(versions) == {"radiomics_features_or", "radiomics_scores", "radiomics_selected",
                             "scores_or_lr", "scores_or_svm", "scores_sr_lr", "scores_sr_svm"}
    pd.testing.assert_frame_equal(read_pin(tmp_path / "board", "radiomics_scores"), scores)
    one = read_pin(tmp_path / "board", "scores_sr_svm")
    assert list(one.columns) == ["case_id", "split", "label", "score"]
    np.testing.assert_array_equal(one["score"], scores["sr_svm"])
    assert read_pin(tmp_path / "board", "radiomics_features_or")["case_id"].tolist() == list(X.index)


def test_cross_fitted_scores_equal_sklearns_cross_val_predict_over_the_same_folds():
    from sklearn.model_selection import PredefinedSplit, cross_val_predict

    from srnomogram.validation import training_folds

    X, y = _features(4)
    split = pd.Series(np.where(np.arange(len(y)) % 4 == 0, "test", "train"), index=y.index)
    cohort = pd.DataFrame({"case_id": y.index, "split": split.to_numpy(), "label": y.to_numpy()})
    folds = training_folds(cohort, n_splits=3, seed=1)
    res = fit_or_sr_models(y, split, X, random_state=2, kinds=("lr",), folds=folds)
    tr = (split == "train").to_numpy()
    ref = cross_val_predict(make_model("lr", random_state=2), X[tr], y[tr], cv=PredefinedSplit(folds["fold"].to_numpy()), method="predict_proba")[:, 1]
    np.testing.assert_allclose(res["scores_oof"].loc[tr, "or_lr"], ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(res["scores_oof"].loc[~tr, "or_lr"], res["scores"].loc[~tr, "or_lr"])  # test rows: the full model
    assert res["timing"]["folds"] == 3


def test_bad_arguments():
    X, y = _features()
    with pytest.raises(InputError, match="'kind' parameter of make_model"):
        make_model("rf")
    with pytest.raises(InputError, match="lack 1 case"):
        fit_or_sr_models(y, pd.Series("train", index=y.index), X.iloc[1:])


def test_the_svm_of_a_small_study_is_fitted_and_cross_fitted_with_fewer_inner_folds():
    """8 malignant training lesions in 5 outer folds leave about 6 per fold's training part; 4 leave 3:
    the SVM's 5 inner folds used to crash the study after the outer folds were lowered."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from srnomogram.validation import training_folds

    X, y = _features(5, n=40)
    y[:] = 0
    y.iloc[:6] = 1  # 6 malignant lesions, 4 in training
    X.iloc[:6, :4] += 2.0
    split = pd.Series(np.where(np.arange(len(y)) % 3 == 0, "test", "train"), index=y.index)
    cohort = pd.DataFrame({"case_id": y.index, "split": split.to_numpy(), "label": y.to_numpy()})
    folds = training_folds(cohort, n_splits=5, seed=0)  # lowered to 4 folds: 4 malignant training lesions
    res = fit_or_sr_models(y, split, X, random_state=0, kinds=("svm",), folds=folds)
    tr = (split == "train").to_numpy()
    model = res["models"]["or_svm"]
    assert int(y[tr].sum()) == 4 and model.named_steps["model"].n_splits_ == 4
    # the same fit as scikit-learn's CalibratedClassifierCV with 4 folds after the same selection
    head = model[:-1]
    ref = CalibratedClassifierCV(SVC(kernel="linear", C=1.0, random_state=0), method="sigmoid", cv=4, ensemble=False)
    ref.fit(head.transform(X[tr]), y[tr])
    np.testing.assert_allclose(res["scores"]["or_svm"], ref.predict_proba(head.transform(X))[:, 1], rtol=0, atol=1e-12)
    oof = res["scores_oof"].loc[tr, "or_svm"]
    assert oof.notna().all() and ((oof > 0) & (oof < 1)).all()


def test_an_svm_with_one_malignant_training_lesion_is_refused_in_one_line():
    X, y = _features(6, n=30)
    y[:] = 0
    y.iloc[:2] = 1
    X.iloc[:2, :4] += 3.0
    split = pd.Series(["train"] * 20 + ["test"] * 10, index=y.index)
    split.iloc[1] = "test"  # one malignant lesion left in training, with 18 benign
    with pytest.raises(InputError, match="needs at least 2 benign and 2 malignant training lesions; it got 18 benign and 1 malignant"):
        fit_or_sr_models(y, split, X, random_state=0, kinds=("svm",))


def test_the_svms_inner_folds_follow_the_patients_given_as_groups():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.svm import SVC

    X, y = _features(7, n=60)
    split = pd.Series(np.where(np.arange(60) < 48, "train", "test"), index=y.index)
    patients = pd.Series([f"p{i // 2}" for i in range(60)], index=y.index)  # two lesions per patient
    res = fit_or_sr_models(y, split, X, random_state=0, kinds=("svm",), groups=patients)
    tr = (split == "train").to_numpy()
    head = res["models"]["or_svm"][:-1]
    g = patients.to_numpy()[tr]
    per_patient = pd.Series(y.to_numpy()[tr]).groupby(g).max()
    k = min(5, int(per_patient.value_counts().min()))
    cv = list(StratifiedGroupKFold(n_splits=k).split(X[tr], y[tr], g))
    ref = CalibratedClassifierCV(SVC(kernel="linear", C=1.0, random_state=0), method="sigmoid", cv=cv, ensemble=False)
    ref.fit(head.transform(X[tr]), y[tr])
    np.testing.assert_allclose(res["scores"]["or_svm"], ref.predict_proba(head.transform(X))[:, 1], rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="no patient for case 'case059'"):
        fit_or_sr_models(y, split, X, kinds=("svm",), groups=patients.iloc[:-1])

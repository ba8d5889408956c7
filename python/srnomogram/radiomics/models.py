"""The paper's radiomics models: selection pipeline + logistic regression or SVM, for OR and SR features.

``make_model("lr")`` / ``make_model("svm")`` return a scikit-learn ``Pipeline``::

    MannWhitneySelector(alpha=0.05)   # Mann–Whitney U p < 0.05 on the training set
    StandardScaler()                  # z-score fitted on the training set
    CorrelationPruner(threshold=0.9)  # Pearson |r| > 0.9: keep the feature with the smaller p
    LogisticRegression | SVC(kernel="linear") with Platt-scaled probabilities

:func:`fit_or_sr_models` fits OR_LR, OR_SVM (original-image features) and SR_LR, SR_SVM
(super-resolved) on a train/test split, cross-fits them over given folds, and returns scores, Table 2
rows and a report of the selected features and coefficients; :func:`write_board` pins them for the R
side. The study's ``radiomics_models`` stage and ``srnomogram radiomics fit`` both call it and write
the same pins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import names
from ..errors import InputError, param_error

KINDS = tuple(names.RADIOMICS_METHODS)  # ("lr", "svm")



def make_model(kind: str = "lr", random_state=0, alpha: float = 0.05, r_threshold: float = 0.9, C: float = 1.0, svm_kernel: str = "linear"):
    """The paper's radiomics pipeline with a logistic regression or SVM at the end.

    Parameters
    ----------
    kind : {"lr", "svm"}
        Final classifier: ``LogisticRegression(C=C, max_iter=10000)`` (L2, lbfgs) or
        :class:`~srnomogram.radiomics.calibration.PlattCalibratedCV` ``(SVC(kernel=svm_kernel, C=C),
        method="sigmoid", cv=5, ensemble=False)`` (Platt-scaled probabilities, as ``SVC(probability=True)``),
        a ``CalibratedClassifierCV`` whose 5 inner folds are lowered to the smaller class's training
        lesions when it has fewer (a class needs 2).
    random_state : int
        Seed of the SVM's probability calibration (and of the LR solver, which is deterministic).
    alpha : float
        Mann–Whitney significance level (0.05).
    r_threshold : float
        Pearson |r| above which one of two features is dropped (0.9).
    C : float
        Inverse regularisation strength of LR / SVM.
    svm_kernel : str
        SVC kernel; "linear" (default) reports coefficients.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``select``, ``scale``, ``prune``, ``model``; picklable; ``predict_proba(X)[:, 1]``
        is the malignancy score.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from .calibration import PlattCalibratedCV
    from .selection import CorrelationPruner, MannWhitneySelector

    if kind not in KINDS:
        raise param_error("kind", "make_model", "'lr' or 'svm'", kind)
    if kind == "lr":
        clf = LogisticRegression(C=C, max_iter=10000, random_state=random_state)
    else:
        # Platt scaling on 5-fold cross-validated decision values (fewer for a small class), then one SVM
        # on all training data (what SVC(probability=True) did, which scikit-learn 1.9 deprecates)
        clf = PlattCalibratedCV(SVC(kernel=svm_kernel, C=C, random_state=random_state), method="sigmoid", cv=5, ensemble=False)
    return Pipeline(
        [
            ("select", MannWhitneySelector(alpha=alpha)),
            ("scale", StandardScaler()),
            ("prune", CorrelationPruner(threshold=r_threshold)),
            ("model", clf),
        ]
    )


def model_report(pipeline, feature_names=None) -> pd.DataFrame:
    """Selected features of a fitted pipeline with their Mann–Whitney p and model coefficient.

    Returns
    -------
    pandas.DataFrame
        One row per feature kept after pruning: ``feature``, ``p_value`` (training Mann–Whitney),
        ``coefficient`` (per z-scored feature; NaN for a non-linear SVM), then one row
        ``feature = "(intercept)"``.
    """
    select, prune, clf = pipeline.named_steps["select"], pipeline.named_steps["prune"], pipeline.named_steps["model"]
    names = np.asarray(feature_names if feature_names is not None else getattr(select, "feature_names_in_", [f"x{i}" for i in range(select.n_features_in_)]))
    after_select = names[select.support_]
    kept = after_select[prune.support_]
    p = select.pvalues_[select.support_][prune.support_]
    if hasattr(clf, "calibrated_classifiers_"):  # the SVM: its decision function, before Platt scaling
        clf = clf.calibrated_classifiers_[0].estimator
    linear = getattr(clf, "kernel", "linear") == "linear"
    coef = np.asarray(clf.coef_).ravel() if linear and hasattr(clf, "coef_") else np.full(len(kept), np.nan)
    intercept = float(np.ravel(clf.intercept_)[0]) if linear and hasattr(clf, "intercept_") else np.nan
    rows = pd.DataFrame({"feature": kept, "p_value": p, "coefficient": coef})
    return pd.concat([rows, pd.DataFrame([{"feature": "(intercept)", "p_value": np.nan, "coefficient": intercept}])], ignore_index=True)


def _aligned(features: pd.DataFrame, labels: pd.Series, name: str) -> pd.DataFrame:
    missing = labels.index.difference(features.index)
    if len(missing):
        raise InputError(f"{name} features lack {len(missing)} case(s) of the manifest (e.g. {list(missing[:3])}). Extract features for every lesion.")
    return features.loc[labels.index]


def _finite_columns(X: pd.DataFrame, name: str, nonfinite: str) -> pd.DataFrame:
    import warnings

    values = X.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if not bad.any():
        return X
    cols = list(X.columns[bad.any(axis=0)])
    if nonfinite == "raise":
        i, j = np.argwhere(bad)[0]
        raise InputError(f"{name} feature {X.columns[j]!r} is NaN/inf for case {X.index[i]!r} ({len(cols)} feature(s) affected). Use nonfinite='drop' to leave such features out, or fix the extraction.")
    warnings.warn(f"{name}: {len(cols)} feature(s) with NaN/inf values left out: {', '.join(cols[:5])}{' ...' if len(cols) > 5 else ''}", UserWarning, stacklevel=3)
    return X.drop(columns=cols)


def fit_or_sr_models(labels, split, features_or: pd.DataFrame, features_sr: pd.DataFrame | None = None, random_state: int = 0, nonfinite: str = "drop",
                     kinds=KINDS, folds: pd.DataFrame | None = None, groups=None, **model_kwargs) -> dict:
    """Fit OR_LR, OR_SVM (and SR_LR, SR_SVM) on the training lesions; score every lesion; cross-fit.

    The one implementation behind the study's ``radiomics_models`` stage and ``srnomogram
    radiomics fit``, so both write the same scores.

    Parameters
    ----------
    labels : pandas.Series
        0/1 label indexed by case_id.
    split : pandas.Series
        ``"train"``/``"test"`` indexed by case_id.
    features_or, features_sr : pandas.DataFrame
        Features indexed by case_id (e.g. from :func:`~srnomogram.radiomics.extract` with
        ``image_col="image"`` and ``"image_sr"``); ``features_sr`` may be None.
    random_state : int
        Seed of the models.
    nonfinite : {"drop", "raise"}
        Features with a NaN/inf value for any lesion (PyRadiomics returns NaN for some texture
        features of degenerate ROIs) are left out with a warning, or raise ``InputError``.
    kinds : sequence of {"lr", "svm"}
        The classifiers to fit on each feature set.
    folds : pandas.DataFrame, optional
        Cross-fitting folds of the training lesions (``case_id``, ``fold``:
        :func:`~srnomogram.validation.training_folds`). When given, ``scores_oof`` holds each
        training lesion's score from the model fitted without its fold.
    groups : pandas.Series, optional
        The patient of each case, indexed by case_id (:func:`~srnomogram.data.manifest.patient_ids`):
        the SVM's inner calibration folds then keep a patient's lesions together and count classes
        in patients (:class:`~srnomogram.radiomics.calibration.PlattCalibratedCV`).
    **model_kwargs
        Passed to :func:`make_model`.

    Returns
    -------
    dict
        ``models`` (model id, e.g. ``or_lr`` -> fitted Pipeline), ``features`` (model id -> the
        feature columns it was fitted on), ``scores`` (DataFrame: ``case_id``, ``split``,
        ``label`` and one column per model id: the ``radiomics_scores`` pin), ``scores_oof``
        (the same with out-of-fold training rows and the fitted model's test rows; None without
        ``folds``), ``table2`` (:func:`~srnomogram.metrics.table2_rows` of every model, named
        ``OR_LR``, ...), ``report`` (:func:`model_report` of every model with a ``model`` id
        column and its display ``label`` first: the ``radiomics_selected`` pin) and ``timing`` (seconds of the full fits and
        of cross-fitting).
    """
    import time

    from ..metrics import table2_rows
    from ..validation import cross_fit, folds_of

    if nonfinite not in ("drop", "raise"):
        raise param_error("nonfinite", "fit_or_sr_models", "'drop' or 'raise'", nonfinite)
    labels = pd.Series(labels).astype(int)
    labels.index = labels.index.astype(str)
    split = pd.Series(split).astype(str)
    split.index = split.index.astype(str)
    split = split.reindex(labels.index)
    if split.isna().any() or not split.isin(["train", "test"]).all():
        raise InputError("The 'split' parameter of fit_or_sr_models must give 'train' or 'test' for every labelled case.")
    train = (split == "train").to_numpy()
    fold = None if folds is None else folds_of(folds, labels.index[train])
    sets = {"or": features_or}
    if features_sr is not None:
        sets["sr"] = features_sr
    for key, X in sets.items():
        X = X.copy()
        X.index = X.index.astype(str)
        sets[key] = _finite_columns(_aligned(X, labels, key.upper()), key.upper(), nonfinite).astype(float)
    patients = None
    if groups is not None:
        groups = pd.Series(groups)
        groups.index = groups.index.astype(str)
        patients = groups.reindex(labels.index)
        if patients.isna().any():
            raise InputError(f"The 'groups' parameter of fit_or_sr_models has no patient for case {patients.index[patients.isna()][0]!r}; "
                             "give one per labelled case (patient_ids of the manifest).")
        patients = patients.astype(str).to_numpy()[train]
    base = pd.DataFrame({"case_id": labels.index.to_numpy(), "split": split.to_numpy(), "label": labels.to_numpy()})
    models, features, scores, oof, tables, reports = {}, {}, base.copy(), base.copy(), [], []
    timing = {"full_fit_s": 0.0, "cross_fit_s": 0.0, "folds": None if fold is None else int(fold.max()) + 1}
    y = labels.to_numpy()
    for images, X in sets.items():
        for kind in kinds:
            m = names.model_id(images, kind)
            t0 = time.perf_counter()
            # the SVM's inner calibration folds by patient; LR has no inner folds
            fit_kw = {"model__groups": patients} if kind == "svm" and patients is not None else {}
            model = make_model(kind, random_state=random_state, **model_kwargs).fit(X[train], y[train], **fit_kw)
            s = model.predict_proba(X)[:, 1]
            t1 = time.perf_counter()
            models[m], features[m], scores[m] = model, [str(c) for c in X.columns], s
            if fold is not None:
                oof[m] = s.copy()
                oof.loc[train, m] = cross_fit(make_model(kind, random_state=random_state, **model_kwargs), X[train].reset_index(drop=True), y[train], fold,
                                              label=m, fit_params=fit_kw)
            timing["full_fit_s"] += t1 - t0
            timing["cross_fit_s"] += time.perf_counter() - t1
            t2 = table2_rows(m, y[train], s[train], y[~train], s[~train])  # keyed by the model id
            t2.insert(1, "label", names.label(m, style="paper"))  # OR_LR, ..., as the paper's Table 2
            tables.append(t2)
            report = model_report(model)
            report.insert(0, "model", m)
            report.insert(1, "label", names.label(m))
            reports.append(report)
    return {"models": models, "features": features, "scores": scores, "scores_oof": oof if fold is not None else None,
            "table2": pd.concat(tables, ignore_index=True), "report": pd.concat(reports, ignore_index=True), "timing": timing}


def write_board(board_dir, result: dict | None = None, features: dict | None = None, metadata: dict | None = None) -> dict:
    """Pin radiomics outputs on a board, under the names and schemas the study uses.

    Pins written: ``radiomics_features_or`` / ``radiomics_features_sr`` (from ``features``,
    keys ``"or"``/``"sr"``; ``case_id`` a column), and from a :func:`fit_or_sr_models` result
    ``radiomics_scores`` (``case_id``, ``split``, ``label``, one column per model id),
    ``radiomics_selected`` (:func:`model_report` rows with ``model`` and ``label`` columns) and one
    ``scores_<model_id>`` per model (:func:`srnomogram.board.model_scores`).

    Returns
    -------
    dict
        Pin name -> version written.
    """
    from ..board import write_pin

    meta = dict(metadata or {})
    versions = {}
    for key, df in (features or {}).items():
        name = f"radiomics_features_{key.lower()}"
        versions[name] = write_pin(board_dir, name, feature_table(df), metadata={**meta, "n_features": int(df.shape[1])}, title=FEATURES_TITLE.format(key.upper()))
    if result is not None:
        for name, df in result_pins(result).items():
            versions[name] = write_pin(board_dir, name, df, metadata=meta, title=PIN_TITLES.get(name, name.replace("_", " ")))
    return versions


FEATURES_TITLE = "PyRadiomics features ({} images)"
PIN_TITLES = {"radiomics_scores": "Radiomics model scores (predict_proba) per lesion",
              "radiomics_selected": "Selected features, Mann-Whitney p and coefficients of the radiomics models"}


def feature_table(features: pd.DataFrame) -> pd.DataFrame:
    """A feature table in the ``radiomics_features_<images>`` pin schema: ``case_id`` column, then the features."""
    if "case_id" in features.columns:
        return features.reset_index(drop=True)
    out = features.rename_axis("case_id").reset_index()
    return out.astype({"case_id": str})


def result_pins(result: dict) -> dict:
    """The pins of a :func:`fit_or_sr_models` result: name -> DataFrame (``radiomics_scores``,
    ``radiomics_selected``, ``scores_<model_id>``)."""
    from ..board import model_scores, scores_pin_name

    pins = {"radiomics_scores": result["scores"], "radiomics_selected": result["report"]}
    for m in result["models"]:
        pins[scores_pin_name(m)] = model_scores(result["scores"], m)
    return pins

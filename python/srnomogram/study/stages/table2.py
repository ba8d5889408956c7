"""The ``table2`` stage: Table 2 of the image models, the choice of the model behind the deep-learning
score and the check of its signal; in apply mode, every model's score and the deep-learning score."""

from __future__ import annotations

import logging

import pandas as pd

from ...errors import ConfigError, InputError
from ... import names
from ..freeze import load_cohort
from ._common import _applied_cohort, _ci_text, with_labels

logger = logging.getLogger(__name__)


def run_table2(ctx):
    """Table 2: AUC (95% CI, DeLong; apparent and cross-validated on train), sensitivity, ... of the models; best model's score.

    When a patient has several lesions in a set (BUS-BRA's two views), that set's AUC intervals and
    the score check's are the clustered DeLong intervals, patients as clusters (``auc_method``)."""
    from ... import metrics
    from ...data.manifest import patient_ids

    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"])
    scores = cohort[["case_id", "split", "label"]].copy()
    oof = scores.copy()
    for name, res in ctx.inputs.items():
        for t in ("radiomics_scores", "deep_scores"):
            if (res.path / f"{t}.csv").exists():
                scores = scores.merge(res.table(t).drop(columns=["split", "label"]), on="case_id", how="left")
            if (res.path / f"{t}_oof.csv").exists():
                oof = oof.merge(res.table(f"{t}_oof").drop(columns=["split", "label"]), on="case_id", how="left")
    models = [m for m in names.model_ids() if m in scores.columns]
    if not models:
        raise ConfigError("The study has no models: enable radiomics and/or deep.")
    tr, te = (scores["split"] == "train").to_numpy(), (scores["split"] == "test").to_numpy()
    y = scores["label"].to_numpy()
    patients = patient_ids(cohort).to_numpy()  # scores keep the cohort's rows and order
    rows = [
        metrics.table2_rows(m, y[tr], scores[m].to_numpy()[tr], y[te], scores[m].to_numpy()[te],
                            alpha=cfg.nomogram.alpha, s_train_cv=oof[m].to_numpy()[tr] if m in oof.columns else None,
                            groups_train=patients[tr], groups_test=patients[te])
        for m in models
    ]
    table2 = pd.concat(rows, ignore_index=True)
    table2.insert(1, "label", table2["model"].map(names.label))  # joined by the id, printed by the label
    best, aucs = metrics.choose_best(scores, models, cfg.nomogram.best_model_rule, oof=oof)
    scores["deep_score"] = scores[best]
    scores["deep_score_fitted"] = scores[best]
    if cfg.nomogram.train_score == "cross_fitted":
        # training rows: out-of-fold scores (a model that never saw the lesion); test rows: the full model's
        scores["deep_score"] = oof[best].to_numpy()
    if scores.loc[scores["split"] == "train", "deep_score"].nunique() < 2:
        raise InputError(
            f"The best model ({names.label(best)}) gives one constant score on the training set, so it cannot "
            "enter the nomogram; train longer (deep.epochs) or enable radiomics."
        )
    check = metrics.score_check(best, y[tr], oof[best].to_numpy()[tr] if best in oof.columns else None,
                                alpha=cfg.nomogram.alpha, groups=patients[tr])
    if check["no_signal"] is not False:
        _score_check_failed(cfg, best, check)
    ctx.write_table("scores", scores)
    ctx.write_table("scores_oof", oof)
    ctx.write_table("table2", table2)
    ctx.write_table("model_aucs", with_labels(aucs))
    ctx.write_table("score_check", pd.DataFrame([{"model": best, "label": names.label(best), **check}]))
    ctx.write_json("best_model", {"model": best, "label": names.label(best), "rule": cfg.nomogram.best_model_rule,
                                  "train_score": cfg.nomogram.train_score, "folds": int(cfg.validation.folds),
                                  "score_check": check})


def no_signal_message(label, check) -> str:
    """One line saying that the deep-learning score's model shows no cross-validated discrimination."""
    if check.get("no_signal") is None:
        return (f"The deep-learning score ({label}) could not be checked: its model has no out-of-fold training "
                "scores, so there is no cross-validated evidence that it discriminates; the nomogram's gain over "
                "the clinical model should not be trusted.")
    return (f"The deep-learning score ({label}) shows no cross-validated evidence of discrimination: its "
            f"cross-validated training AUC is {check['cv_auc']:.3f} "
            f"({_ci_text(check['cv_auc_lower'], check['cv_auc_upper'], check['conf_level'])}, lower bound <= 0.5); "
            "the nomogram's gain over the clinical model should not be trusted.")


def _score_check_failed(cfg, best, check):
    """Warn (``nomogram.require_signal: false``) or stop the study (``true``) on a score without signal."""
    label = names.label(best)
    if not cfg.nomogram.require_signal:
        logger.warning(no_signal_message(label, check))
        return
    if check["no_signal"] is None:
        raise InputError(
            f"nomogram.require_signal is true, but the chosen model {label} ({best}) has no out-of-fold training "
            "scores to check its signal; use nomogram.best_model_rule: cv_auc with cross-fitted models, or set "
            "nomogram.require_signal: false."
        )
    raise InputError(
        f"nomogram.require_signal is true and the chosen model {label} ({best}) has cross-validated training AUC "
        f"{check['cv_auc']:.3f} ({_ci_text(check['cv_auc_lower'], check['cv_auc_upper'], check['conf_level'])}, "
        "lower bound <= 0.5): its score shows no evidence of discrimination; improve or add image models "
        "(deep.epochs, deep.archs, radiomics), or set nomogram.require_signal: false to fit the nomogram with a warning."
    )


def _model_labels(result) -> pd.DataFrame:
    """The ``model_labels`` pin: ``model`` id and display ``label`` of every model of Table 2 (first, in
    its order), then of every other registered model, the clinical model and the nomogram
    (:func:`srnomogram.names.labels`); R's figures take their legends from it, by id, never by position."""
    ids = list(dict.fromkeys([*result.table("model_aucs")["model"], *names.labels()]))
    return pd.DataFrame({"model": ids, "label": [names.label(m) for m in ids]})


def apply_table2(ctx):
    """Apply mode of ``table2``: every image model's score, and the deep-learning score (the model Table 2 chose)."""
    run = ctx.config
    app = run.study.app
    cohort = _applied_cohort(ctx.inputs["split"])
    scores = cohort[[c for c in ("case_id", "patient_id", "label") if c in cohort.columns]].copy()
    found = {}
    for res in ctx.inputs.values():
        for t in ("radiomics_scores", "deep_scores"):
            if (res.path / f"{t}.csv").exists():
                found.update(res.table(t).set_index("case_id").to_dict("series"))
    ids = cohort["case_id"].astype(str)
    for key in app["models"]:  # the frozen application's order
        scores[key] = found[key].loc[ids].to_numpy()
    best = app["best_model"]["model"]
    scores["deep_score"] = scores[best].to_numpy()  # the chosen model's score: the nomogram's input
    ctx.write_table("scores", scores)

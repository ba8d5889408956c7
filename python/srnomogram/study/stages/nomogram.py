"""The ``clinical`` stage (Table 1, Table S2) and the ``nomogram`` stage (the clinical model and the
deep-learning nomogram: out-of-fold cut-offs, held-out validation of the test set, added value, ROC,
calibration, internal validation, Hosmer–Lemeshow, decision curves); in apply mode, the two models' risks
and points from the frozen design, the score distributions and the run's warnings."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import InputError
from ... import names
from ..cache import Pin, record
from ..freeze import load_cohort
from ._common import _applied_cohort, _ci_text, with_labels

logger = logging.getLogger(__name__)


def _analysis_frame(ctx):
    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"], cfg.cohort.schema)  # categorical factors: R factors, reference first
    scores = ctx.inputs["table2"].table("scores")[["case_id", "deep_score"]]
    cols = ["case_id", *(["patient_id"] if "patient_id" in cohort.columns else []), "split", "label", *cfg.cohort.schema.names]
    return cohort[cols].merge(scores, on="case_id", how="left")


DEEP_SCORE_OR_UNIT = 0.1  # Table S2 reports the deep-learning score's odds ratio per 0.1


def run_clinical(ctx):
    """Table 1 (characteristics by label, train and test) and Table S2 (uni/multivariate logistic)."""
    from ... import stats

    cfg = ctx.config
    data = _analysis_frame(ctx)
    factors = cfg.cohort.schema.names
    labelled = data.assign(group=np.where(data["label"] == 1, cfg.cohort.label_names[1], cfg.cohort.label_names[0]))
    t1 = stats.baseline_table(labelled[["group", "split", *factors]], group="group", vars=factors, split="split")
    ctx.write_table("table1", t1)
    train = data[data["split"] == "train"]
    # the deep-learning score is a 0-1 probability: its odds ratio per unit would be for a jump from
    # certainly benign to certainly malignant, so Table S2 gives it per 0.1 (the `unit` column)
    s2 = stats.logistic_table(
        train[["label", *factors, "deep_score"]], outcome="label", vars=[*factors, "deep_score"],
        per={"deep_score": DEEP_SCORE_OR_UNIT}, conf_level=1 - cfg.nomogram.alpha,
    )
    ctx.write_table("table_s2", s2)


def _formula(cfg, with_score):
    rhs = [*cfg.cohort.schema.names] + (["deep_score"] if with_score else [])
    return "label ~ " + " + ".join(rhs)


def fit_clinical_models(cfg, train: pd.DataFrame) -> dict:
    """The clinical model (the clinical factors) and the deep-learning nomogram (the factors and
    ``deep_score``), ``rms::lrm`` through :func:`srnomogram.stats.fit_nomogram`, fitted on ``train``:
    the nomogram stage's fits, which repeated splits reuse rather than refit beside it."""
    from ... import stats

    return {"clinical": stats.fit_nomogram(_formula(cfg, False), train), "nomogram": stats.fit_nomogram(_formula(cfg, True), train)}


def run_nomogram(ctx):
    """Clinical model and deep-learning nomogram: out-of-fold cut-offs (:func:`nomogram_thresholds`),
    held-out validation of the test set (:func:`heldout_validation`), added value (:func:`added_value`),
    ROC (DeLong on test), calibration (bootstrap on train; held-out curve with a bootstrap band on test)
    and internal validation (B bootstraps), HL, DCA (with bootstrap bands); every interval at
    ``1 - nomogram.alpha``. Training-set estimates are labelled apparent (``estimate``)."""
    from ... import metrics, stats
    from ...data.manifest import patient_ids  # every bootstrap below resamples patients

    cfg = ctx.config
    level = 1 - cfg.nomogram.alpha
    data = _analysis_frame(ctx)
    train, test = data[data["split"] == "train"].reset_index(drop=True), data[data["split"] == "test"].reset_index(drop=True)
    fits = fit_clinical_models(cfg, train)
    preds = data[["case_id", "split", "label"]].copy()
    for name, fit in fits.items():
        for part in (train, test):
            p = stats.predict(fit, newdata=part)
            preds.loc[preds["case_id"].isin(part["case_id"]), f"risk_{name}"] = p
    # out-of-fold training risks (the study's cross-fitting folds): what the cut-offs are chosen on
    folds = ctx.inputs["split"].table("folds")
    fitted_by = {}
    for name in fits:
        oof = cross_fit_nomogram(_formula(cfg, name == "nomogram"), train, folds)
        preds[f"risk_{name}_oof"] = preds["case_id"].map(dict(zip(train["case_id"], oof["risk"])))
        glm_folds = sorted(oof.loc[oof["fitted_by"] != "rms::lrm", "fold"].unique().tolist())
        fitted_by[name] = ("rms::lrm" if not glm_folds else
                           f"rms::lrm; stats::glm for fold(s) {', '.join(map(str, glm_folds))} (the other folds separate the outcome)")
        if glm_folds:
            logger.warning("%s: the training folds other than %s separate the outcome; their out-of-fold risks come from stats::glm",
                           names.label(name), ", ".join(map(str, glm_folds)))
    ctx.write_table("predictions", preds)
    cuts = nomogram_thresholds(cfg, preds[preds["split"] == "train"]).assign(oof_fitted_by=lambda d: d["model"].map(fitted_by))
    ctx.write_table("nomogram_thresholds", cuts)
    coef = []
    for name, fit in fits.items():
        coef.append(fit.summary(conf_level=level).assign(model=name))
    coef = pd.concat(coef, ignore_index=True)
    ctx.write_table("nomogram_coefficients", with_labels(coef))
    sign = score_coefficient(coef, level)
    ctx.write_json("score_coefficient", sign)
    if sign["negative"]:
        logger.warning(negative_coefficient_message(_best_label(ctx), sign))
    ctx.write_table("nomogram_points", stats.nomogram_points(fits["nomogram"]))
    ctx.write_table("clinical_points", stats.nomogram_points(fits["clinical"]))
    from ..freeze import save_nomogram_fits  # design JSON (Python/calculator) + saveRDS (R users)

    save_nomogram_fits(ctx, fits, train, cfg.cohort.schema)

    # the test set as a held-out cohort: the same external_validation() as an external cohort, at the frozen cut-offs
    ptest = preds[preds["split"] == "test"].reset_index(drop=True)
    patients = _patients(ctx, ptest["case_id"])
    heldout = heldout_validation(cfg, ptest, cuts, patients)
    ctx.write_table("heldout_validation", heldout)
    added, nb_diff = added_value(cfg, fits, ptest, patients)
    ctx.write_table("added_value", added)
    ctx.write_table("net_benefit_difference", nb_diff)
    ctx.write_table("net_benefit_thresholds", net_benefit_thresholds(cfg, ptest, patients))

    # ROC, DeLong comparison (test only: on train the two nested models' AUCs are no valid test), HL
    roc_rows, cmp_rows, hl_rows, dca = [], [], [], []
    lo, hi, by = cfg.nomogram.dca_thresholds
    thresholds = np.round(np.arange(lo, hi + by / 2, by), 10)
    # bootstrap bands of net benefit (rmda's percentile intervals); every curve is drawn under the
    # same seed, so the clinical model and the nomogram of a set share their resamples
    dca_ci = (
        {"conf_level": level, "bootstraps": cfg.nomogram.dca_bootstraps, "seed": cfg.bootstrap_seed}
        if cfg.nomogram.dca_bootstraps > 0
        else {"conf_level": None}
    )
    clustered = patient_ids(data).duplicated().any()  # a patient with several lesions: clustered DeLong
    for s in ("train", "test"):
        part = preds[preds["split"] == s]
        y = part["label"].to_numpy()
        groups = patient_ids(data.loc[part.index]).to_numpy()
        for name in fits:
            # the one AUC of the package (Table 2's), DeLong, proven equal to pROC in test_metrics;
            # Obuchowski's clustered DeLong when a patient has several lesions in the set
            auc, lower, upper = metrics.roc_auc_ci(y, part[f"risk_{name}"].to_numpy(), alpha=1 - level, groups=groups)
            roc_rows.append({"set": s, "model": name, "auc": auc, "lower": lower, "upper": upper,
                             "estimate": "apparent" if s == "train" else "held-out",
                             **({"method": metrics.auc_ci_method(groups)} if clustered else {})})
            g, why = hl_groups(y, cfg.nomogram.hl_groups)
            if g is None:
                hl_rows.append({"set": s, "model": name, "statistic": np.nan, "df": np.nan, "p_value": np.nan,
                                "estimate": "apparent" if s == "train" else "held-out", "groups": np.nan, "note": why})
            elif s == "train":
                h = stats.hl_test(y, part[f"risk_{name}"].to_numpy(), g=g)
                hl_rows.append({"set": s, "model": name, "statistic": h["statistic"], "df": h["df"], "p_value": h["p_value"],
                                "estimate": "apparent", "groups": g, "note": why})
            else:  # held-out risks: the test of external_validation(), df = groups
                h = heldout[heldout["model"] == name].iloc[0]
                hl_rows.append({"set": s, "model": name, "statistic": h["hl_statistic"], "df": h["hl_df"], "p_value": h["hl_p"],
                                "estimate": "held-out", "groups": g, "note": why})
            d = stats.decision_curve(f"label ~ risk_{name}", part[["label", f"risk_{name}"]].reset_index(drop=True),
                                     fitted_risk=True, thresholds=list(thresholds), cluster=patient_ids(data.loc[part.index]), **dca_ci)
            d = d.rename(columns={"model": "curve"})  # rmda's curve name: the formula, "All" or "None"
            dca.append(d.assign(set=s, model=name, conf_level=level if cfg.nomogram.dca_bootstraps > 0 else np.nan))
        if s == "test":
            # clustered (Obuchowski) when a test patient has several lesions; R's method says which
            cl = {"cluster": list(groups)} if metrics.auc_ci_method(groups) == metrics.CLUSTERED_DELONG else {}
            c = stats.compare_roc(y, part["risk_nomogram"].to_numpy(), part["risk_clinical"].to_numpy(), **cl)
            cmp_rows.append({"set": s, "comparison": "nomogram vs clinical", "estimate": "held-out",
                             **c.drop(["df", "auc_of_score1", "auc_of_score2"]).to_dict()})
    ctx.write_table("roc_auc", with_labels(pd.DataFrame(roc_rows)))
    ctx.write_table("roc_comparison", pd.DataFrame(cmp_rows))
    ctx.write_table("hosmer_lemeshow", with_labels(pd.DataFrame(hl_rows)))
    ctx.write_table("decision_curves", pd.concat(dca, ignore_index=True))

    cal, cal_summary = [], []
    g_test, _ = hl_groups(test["label"], cfg.nomogram.hl_groups)  # the Hosmer-Lemeshow rule of the hosmer_lemeshow table
    for name, fit in fits.items():
        for s, c in (
            ("train", stats.calibrate_nomogram(fit, B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed, cluster=patient_ids(train))),
            # the held-out curve with its bootstrap band (B resamples of the test set's patients)
            ("test", stats.calibrate_nomogram(fit, newdata=test, g=g_test or cfg.nomogram.hl_groups, B=cfg.nomogram.calibration_b,
                                              seed=cfg.bootstrap_seed, conf_level=level, cluster=patient_ids(test))),
        ):
            cal.append(c.frame().assign(model=name, set=s))
            summ = c.summary().assign(model=name, set=s)
            if s == "test" and g_test is None:
                summ[["hl_statistic", "hl_df", "hl_p"]] = np.nan
            cal_summary.append(summ)
    cal_summary = pd.concat(cal_summary, ignore_index=True)
    ctx.write_table("calibration_summary", with_labels(cal_summary[["model", "set", *[k for k in cal_summary.columns if k not in ("model", "set")]]]))
    ctx.write_table("calibration", pd.concat(cal, ignore_index=True))

    # Harrell's optimism-corrected bootstrap (rms::validate) of both models on the training set
    val = [
        stats.validate_nomogram(fit, B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed, cluster=patient_ids(train)).assign(model=name)
        for name, fit in fits.items()
    ]
    val = pd.concat(val, ignore_index=True)
    ctx.write_table("internal_validation", with_labels(val[["model", *[c for c in val.columns if c != "model"]]]))


def cross_fit_nomogram(formula: str, train: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Out-of-fold risks of a logistic model over the study's cross-fitting folds.

    For each fold k of ``folds`` (the split stage's ``training_folds``, joined by ``case_id``) the
    model ``formula`` is refitted on the other folds and predicts the lesions of fold k (R's
    ``cross_fit_risk``: ``rms::lrm`` through ``fit_nomogram``; ``stats::glm`` on a fold whose other
    folds separate the outcome). The deep-learning score of a training lesion is itself an
    out-of-fold score over the same folds, from image models that saw the other folds.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``train``, in its order: ``fold``, ``risk``, ``fitted_by``.
    """
    from ... import stats
    from ...validation import folds_of

    fold = folds_of(folds, train["case_id"])
    return stats.call("cross_fit_risk", stats.Formula(formula), train.reset_index(drop=True), [int(k) for k in fold])


def nomogram_thresholds(cfg, ptrain: pd.DataFrame) -> pd.DataFrame:
    """Cut-offs of the clinical model and the nomogram, chosen without in-sample risks.

    ``nomogram.threshold: youden`` takes the Youden cut-off of each model's out-of-fold training
    risks (``risk_<model>_oof`` of ``predictions``); a number is a pre-specified clinical cut-off,
    used for both models. The table also gives each model's cross-validated training
    classification at its cut-off (the out-of-fold risks, ``score >= threshold`` positive).
    """
    from ... import metrics

    y = ptrain["label"].to_numpy()
    rows = []
    for name in ("clinical", "nomogram"):
        oof = ptrain[f"risk_{name}_oof"].to_numpy(dtype=float)
        if cfg.nomogram.threshold == "youden":
            t, source = metrics.youden_threshold(y, oof), "Youden cut-off of the out-of-fold training risks"
        else:
            t, source = float(cfg.nomogram.threshold), "pre-specified (nomogram.threshold)"
        m = metrics.threshold_metrics(y, oof, t)
        rows.append({"model": name, "label": names.label(name), "threshold": float(t), "threshold_from": source,
                     "estimate": "cross-validated",
                     **{k: m[k] for k in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "tp", "fp", "tn", "fn", "n")}})
    return pd.DataFrame(rows)


def _patients(ctx, case_ids) -> pd.Series:
    """The patient of each lesion of ``case_ids`` (:func:`srnomogram.data.manifest.patient_ids`), as the
    integer codes of :func:`srnomogram.data.manifest.patient_codes` (what R can take)."""
    from ...data.manifest import patient_codes, patient_ids

    cohort = load_cohort(ctx.inputs["split"])
    pid = dict(zip(cohort["case_id"].astype(str), patient_ids(cohort)))
    return pd.Series(patient_codes([pid[str(c)] for c in case_ids]), name="patient_id")


def heldout_validation(cfg, ptest: pd.DataFrame, cuts: pd.DataFrame, patients: pd.Series) -> pd.DataFrame:
    """The test set validated as a held-out cohort: R's ``external_validation()`` of each model's test
    risks at its frozen cut-off, exactly as ``srnomogram validate`` treats an external cohort.

    Calibration-in-the-large (the intercept of ``glm(y ~ offset(qlogis(p)))``) and slope with
    Wald CIs, ``rms::val.prob``'s statistics, Brier, Hosmer-Lemeshow with df = groups, AUC
    (DeLong), and accuracy, sensitivity, specificity, PPV and NPV at the cut-off of
    :func:`nomogram_thresholds`. When a patient has several test lesions, the CIs come from a
    bootstrap over patients (``nomogram.calibration_b`` resamples, the bootstrap seed).
    """
    from ... import stats

    level = 1 - cfg.nomogram.alpha
    y = ptest["label"].to_numpy(dtype=float)
    g, _ = hl_groups(y, cfg.nomogram.hl_groups)
    kw = {"g": g or cfg.nomogram.hl_groups, "conf_level": level}
    if patients.duplicated().any():
        kw.update(cluster=list(patients), B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed)
    rows = []
    for r in cuts.itertuples():
        ev = stats.external_validation(y, ptest[f"risk_{r.model}"].to_numpy(dtype=float), threshold=float(r.threshold), **kw)
        summ = ev.summary().iloc[0].to_dict()
        cls = ev.frame(what="classification").iloc[0].to_dict()
        cls.pop("n", None)
        if g is None:  # too few events for the test: not reported (hl_groups)
            summ.update(hl_statistic=np.nan, hl_df=np.nan, hl_p=np.nan)
        rows.append({"model": r.model, "label": r.label, "set": "test", "estimate": "held-out", **summ, **cls,
                     "threshold_from": r.threshold_from})
    return pd.DataFrame(rows)


#: Expected events (and non-events) per Hosmer–Lemeshow group that :func:`hl_groups` asks for.
HL_MIN_PER_GROUP = 5


def hl_groups(y, max_groups: int = 10) -> tuple[int | None, str]:
    """The Hosmer–Lemeshow groups a set of outcomes ``y`` supports, and why.

    ``g = min(max_groups, floor(min(events, non-events) / 5))``: on average at least 5 events and 5
    non-events per group, the expected counts the test's chi-square approximation needs (Hosmer,
    Lemeshow & Sturdivant 2013, Applied Logistic Regression, 3rd ed., section 5.2.2). Below 3
    groups the test is not reported (``g`` None): Van Calster et al. (2016, J Clin Epidemiol
    74:167-176) advise against the Hosmer–Lemeshow test altogether, and a small set is assessed by
    calibration-in-the-large, the calibration slope and the curve with its band, which the study
    reports for every set. A demo test set of 24 lesions with 8 events is one: floor(8 / 5) = 1.
    """
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    events = int((y == 1).sum())
    fewer = min(events, int(y.size - events))
    g = min(int(max_groups), fewer // HL_MIN_PER_GROUP)
    if g < 3:
        return None, (f"not reported: {events} events and {y.size - events} non-events support fewer than 3 groups of "
                      f"{HL_MIN_PER_GROUP} expected events and non-events (see calibration-in-the-large and slope)")
    return g, (f"{g} groups" + (f" (nomogram.hl_groups {max_groups}, capped at min(events, non-events) / {HL_MIN_PER_GROUP})"
                                if g < max_groups else ""))


def net_benefit_thresholds(cfg, ptest: pd.DataFrame, patients: pd.Series) -> pd.DataFrame:
    """Net benefit at the pre-specified thresholds ``nomogram.thresholds_of_interest`` on the test set.

    For the clinical model and the nomogram, the net benefit of R's ``decision_curve`` (equal to
    ``rmda``) at each threshold with its percentile bootstrap CI, beside that of treating every
    patient (``treat_all``), and for the nomogram its difference from the clinical model with the
    paired bootstrap CI of ``net_benefit_difference``.
    Every bootstrap resamples patients (all lesions of a drawn patient together),
    ``nomogram.dca_bootstraps`` resamples under the bootstrap seed; 0: no intervals.

    Returns
    -------
    pandas.DataFrame
        One row per model and threshold: ``set``, ``model``, ``label``, ``threshold``, ``net_benefit``,
        ``lower``, ``upper``, ``treat_all``, ``delta_vs_clinical``, ``delta_lower``, ``delta_upper`` (nomogram rows only),
        ``conf_level``, ``n``, ``n_patients``, ``method``.
    """
    from ... import stats

    level = 1 - cfg.nomogram.alpha
    th = [float(t) for t in cfg.nomogram.thresholds_of_interest]
    B = int(cfg.nomogram.dca_bootstraps)
    y = ptest["label"].to_numpy(dtype=float)
    boot = {"conf_level": level, "bootstraps": B, "seed": cfg.bootstrap_seed} if B else {"conf_level": None}
    n_pat = int(patients.nunique())
    method = (f"percentile bootstrap over {n_pat} patients (B = {B}, seed {cfg.bootstrap_seed}; paired for the difference)"
              if B else "no bootstrap (dca_bootstraps: 0)")
    diff = stats.call("net_benefit_difference", y, ptest["risk_nomogram"].to_numpy(dtype=float),
                      ptest["risk_clinical"].to_numpy(dtype=float), thresholds=th, B=B, seed=cfg.bootstrap_seed,
                      cluster=list(patients), conf_level=level).frame().set_index("threshold")
    rows = []
    for name in ("clinical", "nomogram"):
        d = stats.decision_curve(f"label ~ risk_{name}", ptest[["label", f"risk_{name}"]].reset_index(drop=True),
                                 fitted_risk=True, thresholds=th, cluster=patients.reset_index(drop=True), **boot)
        treat_all = dict(zip(d.loc[d["model"] == "All", "thresholds"].astype(float), d.loc[d["model"] == "All", "NB"]))
        for r in d[~d["model"].isin(["All", "None"])].itertuples():
            t = float(r.thresholds)
            rows.append({"set": "test", "model": name, "threshold": t, "net_benefit": r.NB, "lower": r.NB_lower,
                         "upper": r.NB_upper, "treat_all": treat_all[t],
                         **({"delta_vs_clinical": diff.loc[t, "difference"], "delta_lower": diff.loc[t, "lower"],
                             "delta_upper": diff.loc[t, "upper"]} if name == "nomogram" else {})})
    out = pd.DataFrame(rows).reindex(columns=["set", "model", "threshold", "net_benefit", "lower", "upper", "treat_all",
                                              "delta_vs_clinical", "delta_lower", "delta_upper"])
    out = out.assign(conf_level=level if B else np.nan, n=len(y), n_patients=n_pat, method=method)
    return with_labels(out.sort_values(["threshold", "model"], kind="stable").reset_index(drop=True))


def dca_range_thresholds(cfg) -> np.ndarray:
    """The thresholds of ``nomogram.dca_range``, at the step of ``nomogram.dca_thresholds``."""
    lo, hi = cfg.nomogram.dca_range
    by = cfg.nomogram.dca_thresholds[2]
    return np.round(np.arange(lo, hi + by / 2, by), 10)


def added_value(cfg, fits, ptest: pd.DataFrame, patients: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the deep-learning score adds to the clinical factors, each by a valid route.

    * train: the likelihood-ratio test of the nomogram against the clinical model (R's
      ``lr_test``, equal to ``rms::lrtest``), the valid test of an added predictor on the data
      both were fitted to (DeLong on their training AUCs is not: Demler et al. 2012);
    * test: the difference in net benefit, nomogram - clinical model, at each threshold of
      ``nomogram.dca_range`` and its mean over the range, with a paired percentile bootstrap
      (R's ``net_benefit_difference``: both models on the same resamples of patients,
      ``nomogram.dca_bootstraps`` resamples, the bootstrap seed).

    Returns
    -------
    (added_value, net_benefit_difference) : tuple of DataFrame
        ``added_value``: ``set``, ``estimand``, ``estimate``, ``lower``, ``upper``, ``statistic``,
        ``df``, ``p_value``, ``method``; ``net_benefit_difference``: one row per threshold.
    """
    from ... import stats

    level = 1 - cfg.nomogram.alpha
    lr = stats.call("lr_test", fits["nomogram"], fits["clinical"])
    rows = [{"set": "train", "estimand": "lr_test_deep_score", "estimate": np.nan, "lower": np.nan, "upper": np.nan,
             "statistic": float(lr["statistic"]), "df": float(lr["df"]), "p_value": float(lr["p_value"]),
             "method": "likelihood-ratio test (rms::lrtest)"}]
    th = dca_range_thresholds(cfg)
    B = int(cfg.nomogram.dca_bootstraps)
    nbd = stats.call("net_benefit_difference", ptest["label"].to_numpy(dtype=float),
                     ptest["risk_nomogram"].to_numpy(dtype=float), ptest["risk_clinical"].to_numpy(dtype=float),
                     thresholds=list(th), B=B, seed=cfg.bootstrap_seed, cluster=list(patients), conf_level=level)
    summ = nbd.summary().iloc[0]
    n_units = patients.nunique()
    method = (f"mean difference in net benefit (nomogram - clinical model) over thresholds {th[0]:g}-{th[-1]:g} "
              f"(step {cfg.nomogram.dca_thresholds[2]:g}); "
              + (f"paired percentile bootstrap over {n_units} patients (B = {B}, seed {cfg.bootstrap_seed})" if B else "no bootstrap (dca_bootstraps: 0)"))
    rows.append({"set": "test", "estimand": "delta_net_benefit_mean", "estimate": float(summ["estimate"]),
                 "lower": float(summ["lower"]), "upper": float(summ["upper"]), "statistic": np.nan, "df": np.nan,
                 "p_value": np.nan, "method": method})
    tab = nbd.frame().rename(columns={"nb1": "nb_nomogram", "nb2": "nb_clinical"})
    tab.insert(0, "set", "test")
    tab["estimate"] = "held-out"
    tab["conf_level"] = level if B else np.nan
    return pd.DataFrame(rows), tab


def score_coefficient(coef: pd.DataFrame, conf_level: float) -> dict:
    """The deep-learning score's coefficient in the nomogram (from ``nomogram_coefficients``) and its sign.

    ``negative`` is true when the fitted coefficient is below 0: the nomogram then lowers the risk as
    the score rises, which a score with real signal never asks for. Odds ratio and Wald interval are
    given per :data:`DEEP_SCORE_OR_UNIT` of the score, as in Table S2.
    """
    row = coef[(coef["model"] == "nomogram") & (coef["term"] == "deep_score")]
    if len(row) != 1:
        raise InputError("nomogram_coefficients has no single 'deep_score' row of the model 'nomogram'; rerun the nomogram stage.")
    r = row.iloc[0]
    u = DEEP_SCORE_OR_UNIT
    return {"coef": float(r["coef"]), "se": float(r["se"]), "p_value": float(r["p_value"]), "unit": u,
            "odds_ratio_per_unit": float(np.exp(u * r["coef"])), "lower_per_unit": float(r["lower"]) ** u,
            "upper_per_unit": float(r["upper"]) ** u, "conf_level": float(conf_level), "negative": bool(r["coef"] < 0)}


def negative_coefficient_message(label, coef) -> str:
    """One line saying that the nomogram uses the deep-learning score with the opposite sign."""
    return (f"The deep-learning score ({label}) enters the nomogram with a negative coefficient "
            f"({coef['coef']:.3f}; OR {coef['odds_ratio_per_unit']:.2f} per {coef['unit']:g}, "
            f"{_ci_text(coef['lower_per_unit'], coef['upper_per_unit'], coef['conf_level'])}, "
            f"p = {coef['p_value']:.2g}): the nomogram uses the score with the opposite sign (a higher score lowers "
            "the risk), so the nomogram's gain over the clinical model should not be trusted.")


def _best_label(ctx):
    """Label of the model behind the deep-learning score (from Table 2's ``best_model.json``, when there)."""
    t2 = ctx.inputs["table2"]
    if (t2.path / "best_model.json").exists():
        return t2.json("best_model")["label"]
    return "deep_score"


def apply_nomogram(ctx):
    """Apply mode of ``nomogram``: the clinical model's and the nomogram's risk and points from the
    saved design (:func:`srnomogram.study.freeze.nomogram_predict`, equal to R's ``predict()``), the
    score distributions against training, and the run's warnings."""
    from ..freeze import nomogram_predict

    run = ctx.config
    study = run.study
    cohort = _applied_cohort(ctx.inputs["split"])
    scores = ctx.inputs["table2"].table("scores")
    factors = study.app["clinical_factors"]
    msg, info = clinical_skip(cohort, factors, validating=run.need_label)
    info["best_model"] = study.app["best_model"]["model"]
    if msg:
        logger.warning("%s", msg)
        info["message"] = msg
    else:
        data = cohort[factors].assign(deep_score=scores["deep_score"].to_numpy())
        for name in ("clinical", "nomogram"):
            p = nomogram_predict(study.design[name], data)
            scores[name] = p["risk"].to_numpy()
            scores[f"{name}_points"] = p["points"].to_numpy()
    ctx.write_table("scores", scores)
    dist = score_distribution(study.summary, scores)
    ctx.write_table("score_distribution", dist)
    ctx.write_json("scores_info", info)
    shifted = dist[dist["shifted"].astype(bool)]
    warns = pd.concat([ctx.inputs["split"].table("warnings"), pd.DataFrame(
        {"kind": "score", "column": shifted["model"], "n_outside": np.nan, "message": [shift_message(r) for r in shifted.itertuples()],
         "training_range": [f"{a:.3g} to {b:.3g}" for a, b in zip(shifted["train_q05"], shifted["train_q95"])],
         "external_range": [f"{a:.3g} to {b:.3g}" for a, b in zip(shifted["external_q05"], shifted["external_q95"])]})],
        ignore_index=True)
    warns["n_outside"] = warns["n_outside"].astype("Int64")  # NaN for score rows
    ctx.write_table("warnings", warns)


def clinical_skip(cohort: pd.DataFrame, factors, validating: bool) -> tuple[str | None, dict]:
    """Why the clinical model and the nomogram cannot be applied to ``cohort`` (None when they can), and what is missing.

    A factor column that is absent or has no value at all leaves them without an input: they are
    reported as skipped (not estimable on this cohort) rather than aborting the run, and the image
    models, which do not need the factors, are still validated. When ``validating``, the lesions
    with every factor must include benign and malignant ones, or no statistic of theirs is defined.
    Lesions lacking some factor are left out of their statistics only (counted in ``n_incomplete``).
    """
    missing = [c for c in factors if c not in cohort.columns]
    empty = [c for c in factors if c in cohort.columns and cohort[c].isna().all()]
    complete = cohort[[c for c in factors if c in cohort.columns]].notna().all(axis=1)
    info = {"clinical_skipped": True, "missing_clinical": missing, "empty_clinical": empty,
            "n_incomplete": int((~complete).sum())}
    tail = "; the image models are still scored."
    if missing:
        return f"Clinical model and nomogram skipped: the manifest lacks clinical column(s) {', '.join(missing)}" + tail, info
    if empty:
        return f"Clinical model and nomogram skipped: clinical column(s) {', '.join(empty)} have no value in the manifest" + tail, info
    if validating:
        y = cohort.loc[complete, "label"]
        if y.nunique() < 2:
            return (f"Clinical model and nomogram not validated: only {len(y)} lesion(s) have every clinical factor "
                    f"({int(y.sum())} malignant), and their statistics need benign and malignant lesions" + tail, info)
    info["clinical_skipped"] = False
    if info["n_incomplete"]:
        logger.warning("%d lesion(s) lack a clinical value (%s): the clinical model and the nomogram leave them out.",
                       info["n_incomplete"], ", ".join(factors))
    return None, info


def score_distribution(summary, scores) -> pd.DataFrame:
    """Training against external score quantiles per model; ``shifted`` when the external median
    leaves the training 5–95 % range (the model sees inputs unlike its training set)."""
    from ..freeze import describe

    train = {**summary.get("scores", {}), **summary.get("risks", {})}
    rows = []
    for m, t in train.items():
        if m not in scores.columns or not t.get("n"):
            continue
        e = describe(scores[m])
        if not e.get("n"):
            continue
        rows.append({"model": m, "train_q05": t["q05"], "train_median": t["median"], "train_q95": t["q95"],
                     "external_q05": e["q05"], "external_median": e["median"], "external_q95": e["q95"],
                     "shifted": not (t["q05"] <= e["median"] <= t["q95"])})
    out = pd.DataFrame(rows, columns=["model", "train_q05", "train_median", "train_q95", "external_q05",
                                      "external_median", "external_q95", "shifted"])
    for r in out[out["shifted"]].itertuples():
        logger.warning("%s", shift_message(r))
    return out


def shift_message(r) -> str:
    return (f"{names.label(r.model)}: the external median score {r.external_median:.3g} lies outside the training 5-95% "
            f"range {r.train_q05:.3g} to {r.train_q95:.3g}.")


APPLY_NOMOGRAM_PINS = (  # in the report of `srnomogram validate` after the external statistics' pins
    Pin("external_scores", table="scores", title="Scores of every model, deep-learning score, clinical model and nomogram "
        "risk and points per lesion (the frozen study applied)", section="external", order=90, show=False),
    Pin("score_distribution", title="Score distributions: training against external (quantiles)", section="external", order=80),
    # shown as a list at the section's top; here named as its CSV
    Pin("warnings", title="Values outside the training ranges (clinical factors, image spacing and size, scores)",
        section="external", order=95, show=False),
    record("scores_info", "The applied nomogram: the deep-learning score's model, clinical factors used or skipped (JSON)"),
)

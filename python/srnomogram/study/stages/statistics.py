"""The ``statistics`` stage of ``srnomogram validate``: the external statistics of every applied model.

After the study's stages run in apply mode (:func:`srnomogram.study.external.validate`), this stage
computes, through the R package, each model's ``external_validation`` (AUC with DeLong CI,
calibration-in-the-large and slope with CIs, ``rms::val.prob``, Brier, Hosmer–Lemeshow, the
frozen-cut-off sensitivity, specificity, PPV, NPV) and ``decision_curve`` (with bootstrap bands), per
lesion (a bootstrap over patients when a patient has several lesions) or per patient.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...data.manifest import patient_codes, patient_ids
from ..cache import Pin, Stage, record
from ._common import with_labels

logger = logging.getLogger(__name__)

STAT_OPTIONS = ("recalibrate", "unit", "bootstraps", "dca_bootstraps")  # what the statistics stage's cache key holds
DCA_CURVE = "label ~ risk"  # the model's curve in the decision-curve tables (the others: "All", "None")

LESION_ESTIMAND = "lesion-level"
PATIENT_ESTIMAND = "patient-level (any lesion malignant; risk 1 − ∏(1 − p))"
UNITS = ("lesion", "patient")


def patient_risks(scores: pd.DataFrame, risks) -> pd.DataFrame:
    """One row per patient: the risk that any of its lesions is malignant, and whether any is.

    A patient's risk under each model is ``1 − ∏(1 − pᵢ)`` over its lesions' risks ``pᵢ`` (the
    lesions taken as independent given their risks), computed as ``−expm1(Σ log1p(−pᵢ))`` so
    that small risks keep their precision; it is NaN when any of its lesions has no risk. The
    patient's outcome is 1 when any lesion is malignant. This is a different estimand from the
    lesion-level one. Patients are :func:`srnomogram.data.manifest.patient_ids`, in order of first
    appearance.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``n_lesions``, ``label`` (when ``scores`` has it) and one column per risk.
    """
    pid = patient_ids(scores).to_numpy()
    with np.errstate(divide="ignore"):  # a risk of exactly 1 gives log1p(-1) = -inf, hence a patient risk of 1
        logs = pd.DataFrame(np.log1p(-scores[list(risks)].to_numpy(dtype=float)), columns=list(risks))
    grouped = logs.groupby(pid, sort=False)
    out = (-np.expm1(grouped.sum())).mask(logs.isna().groupby(pid, sort=False).any())
    out.insert(0, "n_lesions", grouped.size())
    if "label" in scores.columns:
        out.insert(1, "label", scores["label"].groupby(pid, sort=False).max())
    out.index.name = "patient_id"
    return out.reset_index()


def _units(scores: pd.DataFrame, unit: str, risks, pid: pd.Series | None = None) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """The rows of the statistics, their patient clusters (or None) and the estimand's name.

    ``"lesion"``: every lesion; when some patient has several lesions, the integer code of each
    lesion's patient (every CI is then a bootstrap over patients), else None (DeLong, Wald and
    Wilson CIs, the lesions being independent). ``"patient"``: :func:`patient_risks`, one row per
    patient, no clusters. ``pid``: each lesion's patient (default :func:`~srnomogram.data.manifest.patient_ids`).
    """
    pid = patient_ids(scores) if pid is None else pid
    if unit == "patient":
        rows = patient_risks(scores, risks)
        mixed = int((scores["label"].groupby(pid.to_numpy()).nunique() > 1).sum())
        if mixed:
            logger.info("%d patient(s) have benign and malignant lesions; at patient level they count as malignant.", mixed)
        return rows, None, PATIENT_ESTIMAND
    cluster = patient_codes(pid) if pid.duplicated().any() else None
    return scores, cluster, LESION_ESTIMAND


def _model_statistics(y, s, cluster, kw: dict, thresholds, conf, dca_bootstraps: int, seed: int):
    """One model's external statistics: R's ``external_validation`` and ``decision_curve``.

    With ``cluster`` both resample it (every CI, the decision-curve bands included, is then a
    bootstrap over patients); ``kw`` holds the other arguments of ``external_validation``.
    Returns the ``external_validation`` handle and the decision-curve table.
    """
    from ... import stats

    if cluster is not None:
        kw = {**kw, "cluster": [int(c) for c in cluster]}
    ev = stats.external_validation(y, s, **kw)
    part = pd.DataFrame({"label": y, "risk": s})
    if cluster is not None:
        part["cluster"] = cluster
    part = part.dropna(subset=["label", "risk"]).reset_index(drop=True)
    extra = {} if cluster is None or not dca_bootstraps else {"cluster": [int(c) for c in part.pop("cluster")]}
    d = stats.decision_curve(DCA_CURVE, part[["label", "risk"]], fitted_risk=True, thresholds=thresholds,
                             conf_level=conf if dca_bootstraps else None, bootstraps=int(dca_bootstraps),
                             seed=seed, **extra)
    return ev, d


def _ext_statistics(ctx):
    from ... import stats

    run = ctx.config
    study = run.study
    opts = run.options
    app = study.app
    scores = ctx.inputs["nomogram"].table("scores")
    models = [k for k in app["models"]] + [k for k in ("clinical", "nomogram") if k in scores.columns]
    unit = opts.get("unit", "lesion")
    pid = patient_ids(scores)
    data, cluster, estimand = _units(scores, unit, [c for c in (*models, "deep_score") if c in scores.columns], pid)
    y = data["label"].to_numpy(dtype=float)
    threshold = {**{k: m["threshold"] for k, m in app["models"].items()},
                 **{k: m["threshold"] for k, m in app["clinical_models"].items()}}
    lo, hi, by = app["dca_thresholds"]
    thresholds = [float(t) for t in np.round(np.arange(lo, hi + by / 2, by), 10)]
    conf = 1 - float(app.get("alpha", 0.05))
    dca_b = int(opts.get("dca_bootstraps", 500))
    seed = int(app["bootstrap_seed"])
    summ, cls, curves, dca, recal = [], [], [], [], []
    for m in models:
        s = data[m].to_numpy(dtype=float)
        # calibration_B: the lowess curve's bootstrap band (over patients when clustered), as the study's Figure 7 test curve
        kw = {"threshold": threshold[m], "g": int(app["hl_groups"]), "B": int(opts.get("bootstraps", 1000)),
              "seed": seed, "conf_level": conf, "calibration_B": int(opts.get("bootstraps", 1000))}
        ev, d = _model_statistics(y, s, cluster, kw, thresholds, conf, dca_b, seed)
        summ.append(ev.summary().assign(model=m))
        cls.append(ev.frame(what="classification").assign(model=m))
        curves.append(ev.frame(what="calibration").assign(model=m))
        dca.append(d.rename(columns={"model": "curve"}).assign(model=m))
        if opts.get("recalibrate"):
            r = stats.recalibrate_risk(y, s)
            if not np.isfinite(r.attrs["slope"]):
                logger.warning("%s: its score has no spread on this cohort, so its logistic recalibration is not estimable.", m)
                recal.append(pd.DataFrame({"model": [m], "result": ["logistic recalibration not estimable: the score has no spread on this cohort"],
                                           "recal_intercept": [np.nan], "recal_slope": [np.nan]}))
                continue
            kw2 = {k: v for k, v in kw.items() if k not in ("threshold", "calibration_B")}
            if cluster is not None:
                kw2["cluster"] = [int(c) for c in cluster]
            ev2 = stats.external_validation(y, r.to_numpy(), **kw2)
            recal.append(ev2.summary().assign(model=m, result="logistic recalibration on the external cohort (apparent)",
                                              recal_intercept=r.attrs["intercept"], recal_slope=r.attrs["slope"]))
    summary = pd.concat(summ, ignore_index=True)
    summary.insert(0, "model", summary.pop("model"))
    summary = with_labels(summary)
    summary["unit"] = estimand
    auc = summary[["model", "label", "auc", "auc_lower", "auc_upper", "n", "n_events", "unit", "ci_method"]].rename(
        columns={"auc_lower": "lower", "auc_upper": "upper"})
    ctx.write_table("external_auc", auc)
    ctx.write_table("external_calibration", summary.drop(columns=["auc", "auc_lower", "auc_upper"]))
    c = pd.concat(cls, ignore_index=True)
    c.insert(0, "model", c.pop("model"))
    c = with_labels(c)
    frozen = {**app["models"], **app["clinical_models"]}
    c["threshold_source"] = ["frozen: " + frozen[m].get("threshold_from", "training Youden cut-off") for m in c["model"]]
    c["unit"] = estimand
    ctx.write_table("external_classification", c)
    ctx.write_table("external_calibration_curves", pd.concat(curves, ignore_index=True))
    d = pd.concat(dca, ignore_index=True)
    d["unit"] = estimand
    # every row is a patient, or carries its patient as cluster: the bands always resample patients
    d["ci_method"] = f"percentile bootstrap over patients (B = {dca_b})" if dca_b else "none"
    ctx.write_table("external_decision_curves", d)
    ctx.write_table("external_scores_used", data)
    if recal:
        r = pd.concat(recal, ignore_index=True)
        r.insert(0, "model", r.pop("model"))
        r["unit"] = estimand
        ctx.write_table("external_recalibration", r)
    ctx.write_json("statistics_info", {
        "unit": unit, "estimand": estimand, "models": models, "n_units": int(len(data)), "n_lesions": int(len(scores)),
        "n_patients": int(pid.nunique()), "n_patients_several_lesions": int((pid.value_counts() > 1).sum()),
        "patient_bootstrap": cluster is not None, "ci_method": str(summary["ci_method"].iloc[0])})


STATISTICS_PINS = (  # the report of `srnomogram validate`: section "external", in this order
    Pin("external_auc", title="Discrimination: AUC ({level}% CI)", section="external", order=10),
    Pin("external_calibration", title="Calibration: in-the-large, slope, rms::val.prob, Brier, Hosmer–Lemeshow",
        section="external", order=20),
    Pin("external_classification", title="Sensitivity, specificity, PPV, NPV at the frozen training cut-off",
        section="external", order=30),
    Pin("external_recalibration", title="Logistic recalibration on the external cohort (apparent, reported separately)",
        section="external", order=40),
    Pin("external_calibration_curves", title="Smoothed (lowess) external calibration curves with their bootstrap bands",
        section="external", order=50, show=False),
    Pin("external_decision_curves", title="External decision curves (net benefit, bootstrap bands)",
        section="external", order=60, show=False),
    Pin("external_scores_used", title="The rows the external statistics used (lesions, or patients)",
        section="external", order=70, show=False),
    record("statistics_info", "The external statistics' unit, estimand, counts and CI method (JSON)"),
)


def _statistics_key(run, results):
    """What the statistics depend on besides the nomogram stage's scores: the frozen study and the options they read."""
    return {"study": run.study.key, **{k: run.options.get(k) for k in STAT_OPTIONS}}


def statistics_stage() -> Stage:
    """The ``statistics`` stage, which ``validate`` appends to the study's applied stages (after ``nomogram``)."""
    return Stage("statistics", _ext_statistics, deps=("nomogram",), version="5", pins=STATISTICS_PINS, extra_key=_statistics_key)

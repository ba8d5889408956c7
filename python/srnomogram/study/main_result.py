"""The study's answer to the paper's two questions, with paired, honest uncertainty (the ``main_result`` stage).

Yang & Ma ask (1) do super-resolved (SR) images give better models than the originals (OR), and
(2) how much does the deep-learning nomogram add to the clinical factors? :func:`main_result`
answers both from the study's tables, each row naming how its estimate was obtained:

* the nomogram's and the clinical model's test AUC (DeLong CI) and their paired difference
  (:func:`srnomogram.metrics.paired_auc_difference`) on the held-out test set; when a patient has
  several test lesions, Obuchowski's (1997) clustered DeLong intervals, patients as clusters;
* SR − OR paired test-AUC difference of every image-model family the study has (LR, SVM, each CNN);
* the added-value rows of the nomogram stage (``added_value``: likelihood-ratio test of the score on
  the training set, Δ net benefit on the test set), carried over;
* the nomogram's calibration-in-the-large and calibration slope on the test set with their CIs (the
  ``heldout_validation`` rows of the nomogram stage) and, when either CI excludes its ideal value, a
  sentence saying how the predicted risks fail (:func:`calibration_sentence`);
* the nomogram − clinical net-benefit difference at each pre-specified threshold
  (``nomogram.thresholds_of_interest``, the nomogram stage's ``net_benefit_thresholds``);
* with repeated splits (``validation.repeats`` N): the same differences, and the nomogram's test
  calibration slope and calibration-in-the-large, as means over the N split seeds with 2.5–97.5 %
  percentile ranges and the share of seeds with Δ > 0;
* with ``split.method: centre``: the nomogram's and the clinical model's held-out estimates of the
  internal-external cross-validation (:mod:`srnomogram.study.iecv`), pooled over centres by random-effects
  meta-analysis, with their prediction intervals.

Multiplicity (:func:`annotate_multiplicity`): each question has one declared primary comparison,
reported unadjusted: for question 1 the SR − OR difference of the family ``study.primary`` (default:
the family of the model chosen for the deep-learning score), for question 2 the nomogram − clinical
test-AUC difference. The SR − OR differences of the other families are secondary, their p-values
Holm-adjusted (:func:`holm`) over those k comparisons (``p_adjusted``, ``adjustment``); every other
row is labelled "unadjusted, exploratory". ``interval`` says whether ``lower``–``upper`` is a
confidence interval (``CI``) or the 2.5–97.5 % range over split seeds (``seed range``), which is
not a CI (:data:`SEED_RANGE_CAVEATS`).

The same stage writes the TRIPOD+AI tables: :func:`participant_flow` (lesions, patients and events
read, excluded per reason, train, test) and :func:`sample_size_table` (events per parameter and the
Riley et al. (2020) minimum sample size, :func:`riley_sample_size`), and pins the TRIPOD+AI checklist
(``tripod_ai``, :func:`srnomogram.study.report.board_checklist`).

This module sits below the report (which reads these tables from the board) and imports no stage
module: the repeated splits reach it as the files each seed writes (:func:`seed_result_path`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..errors import InputError
from ..metrics import CLUSTERED_DELONG, TEST_SET_RULES, auc_ci_method, paired_auc_difference, roc_auc_ci
from .cache import Pin, Stage

__all__ = ["main_result", "main_result_stage", "participant_flow", "sample_size_table", "riley_sample_size",
           "cox_snell_r2", "seed_result_path", "iecv_pooled_path", "iecv_rows", "holm", "annotate_multiplicity",
           "calibration_sentence", "primary_family", "MAIN_RESULT_COLUMNS", "SEED_RANGE_CAVEATS"]

MAIN_RESULT_COLUMNS = ["estimand", "label", "estimate", "lower", "upper", "interval", "n_seeds", "n", "share_positive",
                       "p_value", "p_adjusted", "adjustment", "method"]
#: What a reader must know about a range over split seeds, said wherever one is shown.
SEED_RANGE_CAVEATS = (
    "A seed range is the spread of the estimate from one train/test split to another, not a confidence interval: "
    "it leaves out the sampling error of each test set.",
    "The share of seeds with Δ > 0 counts splits; it is not the probability that the difference is positive.",
    "With few seeds the 2.5–97.5 percentile range is close to the smallest and largest value.",
    "The estimand is the procedure (split, train, choose, fit) on this cohort, not one fitted model.",
)
#: The estimand of question 2's declared primary comparison.
PRIMARY_Q2 = "delta_auc_nomogram_clinical_test"
UNADJUSTED = "unadjusted, exploratory"
#: The pins of the stage, with their report titles.
PIN_TITLES = {
    "main_result": "Main result: every estimate, its {level}% interval (or percentile range over seeds) and how it was obtained",
    "participant_flow": "Participant flow: lesions, patients and events read, excluded, analysed, train and test",
    "sample_size": "Sample size: events per parameter and the Riley et al. (2020) minimum for the nomogram",
    "tripod_ai": "TRIPOD+AI checklist: the 52 items and where this report answers each",
}


def iecv_pooled_path(output) -> Path:
    """``<output>/iecv/pooled.csv``: the internal-external cross-validation's pooled table (``iecv_pooled``)."""
    return Path(output) / "iecv" / "pooled.csv"


def seed_result_path(output, k: int) -> Path:
    """``<output>/repeats/seed_<k>/result.csv``: split seed ``k``'s rows of ``repeated_splits``."""
    return Path(output) / "repeats" / f"seed_{int(k)}" / "result.csv"


# ------------------------------------------------------------------------------------ formatting helpers
def _p_text(p) -> str:
    """A p-value as a reader expects it: ``p < 0.001`` or ``p = 0.034``."""
    if p is None or not np.isfinite(p):
        return "p not estimable"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _level(alpha) -> str:
    return f"{100 * (1 - alpha):.10g}%"


def _delong_text(d, lvl, clustered=False) -> str:
    if not np.isfinite(d["statistic"]):
        return "paired DeLong: no interval (the two scores order the test lesions alike, so the difference has no variance)"
    if clustered:
        return f"paired {lvl} CI, {CLUSTERED_DELONG}, z = {d['statistic']:.2f}, {_p_text(d['p_value'])}"
    return f"paired DeLong {lvl} CI, z = {d['statistic']:.2f}, {_p_text(d['p_value'])}"


def _auc_text(lvl, clustered) -> str:
    return f"{lvl} CI, {CLUSTERED_DELONG}" if clustered else f"DeLong {lvl} CI"


def _groups(part, patients):
    """The patient of each row of ``part`` (by ``case_id``) from ``patients`` (indexed by case id), or None."""
    if patients is None:
        return None
    return part["case_id"].astype(str).map(patients).to_numpy()


def _n_text(n, groups) -> str:
    if auc_ci_method(groups) != CLUSTERED_DELONG:
        return f"n = {n}"
    return f"n = {n} lesions of {len(set(map(str, groups)))} patients"


# ------------------------------------------------------------------------------------ single split
def _families(columns) -> list[tuple[str, str, str]]:
    """``(family, sr_id, or_id)`` for each model family with both an SR and an OR model among ``columns``."""
    out = []
    for mid in names.model_ids():
        images, method = names.parse_model_id(mid)
        sr = names.model_id("sr", method)
        if images == "or" and mid in columns and sr in columns:
            out.append((method, sr, mid))
    return out


def _family_label(method: str) -> str:
    return names.RADIOMICS_METHODS.get(method) or names.arch_label(method)


def single_split_rows(predictions: pd.DataFrame, scores: pd.DataFrame, alpha: float = 0.05,
                      test_chose_model: bool = False, patients: pd.Series | None = None) -> list[dict]:
    """The held-out rows: nomogram and clinical test AUC, their paired difference, SR − OR per family.

    Parameters
    ----------
    predictions : DataFrame
        The nomogram stage's ``predictions`` (``split``, ``label``, ``risk_clinical``, ``risk_nomogram``).
    scores : DataFrame
        The table2 stage's ``scores`` (``split``, ``label`` and one column per model id).
    alpha : float
        1 - confidence level.
    test_chose_model : bool
        The test set chose the model behind the deep-learning score (the paper's rule): the
        nomogram's test AUC and its difference are then optimistic, and said so.
    patients : Series, optional
        The patient of each lesion, indexed by ``case_id`` (as str). When a test patient has several
        lesions (BUS-BRA's two views), every interval is Obuchowski's clustered DeLong interval,
        patients as clusters, and ``method`` says so; otherwise DeLong's.
    """
    lvl = _level(alpha)
    te = predictions[predictions["split"] == "test"]
    y = te["label"].to_numpy()
    n = int(len(te))
    g = _groups(te, patients)
    clustered = auc_ci_method(g) == CLUSTERED_DELONG
    where = (f"test set ({_n_text(n, g)}); the test set chose the deep-learning model, so this is optimistic, not held out"
             if test_chose_model else f"held-out test set ({_n_text(n, g)})")
    rows = []
    for name, label in (("nomogram", "Nomogram"), ("clinical", "Clinical model")):
        auc, lo, hi = roc_auc_ci(y, te[f"risk_{name}"].to_numpy(), alpha=alpha, groups=g)
        held = where if name == "nomogram" else f"held-out test set ({_n_text(n, g)})"
        rows.append({"estimand": f"auc_{name}_test", "label": f"{label}: test AUC", "estimate": auc, "lower": lo, "upper": hi,
                     "n": n, "method": f"{held}; {_auc_text(lvl, clustered)}"})
    d = paired_auc_difference(y, te["risk_nomogram"].to_numpy(), te["risk_clinical"].to_numpy(), alpha=alpha, groups=g)
    rows.append({"estimand": PRIMARY_Q2, "label": "Nomogram − clinical model: test AUC difference",
                 "estimate": d["estimate"], "lower": d["lower"], "upper": d["upper"], "n": n, "p_value": d["p_value"],
                 "method": f"{where}; {_delong_text(d, lvl, clustered)}"})
    st = scores[scores["split"] == "test"]
    ys = st["label"].to_numpy()
    gs = _groups(st, patients)
    clustered_s = auc_ci_method(gs) == CLUSTERED_DELONG
    for method, sr, orig in _families(st.columns):
        d = paired_auc_difference(ys, st[sr].to_numpy(), st[orig].to_numpy(), alpha=alpha, groups=gs)
        rows.append({"estimand": f"delta_auc_sr_or_{method}", "label": f"SR − OR, {_family_label(method)}: test AUC difference",
                     "estimate": d["estimate"], "lower": d["lower"], "upper": d["upper"], "n": int(len(st)), "p_value": d["p_value"],
                     "method": f"held-out test set ({_n_text(len(st), gs)}), {names.label(sr)} vs {names.label(orig)} on the same "
                               f"lesions; {_delong_text(d, lvl, clustered_s)}"})
    return rows


def added_value_rows(added: pd.DataFrame) -> list[dict]:
    """The nomogram stage's ``added_value`` rows (``set, estimand, estimate, lower, upper, statistic, df,
    p_value, method``) in ``main_result``'s columns; the test statistic and p go into ``method``."""
    rows = []
    for r in added.to_dict("records"):
        extra = []
        if pd.notna(r.get("statistic")):
            extra.append(f"statistic {float(r['statistic']):.2f}" + (f", df {float(r['df']):g}" if pd.notna(r.get("df")) else ""))
        if pd.notna(r.get("p_value")):
            extra.append(_p_text(float(r["p_value"])))
        label = {"lr_test_deep_score": "Nomogram vs clinical model: likelihood-ratio test of the deep-learning score",
                 "delta_net_benefit_mean": "Nomogram − clinical model: mean net-benefit difference"}.get(r["estimand"], r["estimand"])
        rows.append({"estimand": r["estimand"], "label": label, "estimate": r["estimate"], "lower": r.get("lower", np.nan),
                     "upper": r.get("upper", np.nan), "n": r.get("n", np.nan), "p_value": r.get("p_value", np.nan),
                     "method": f"{r['set']} set; {r.get('method', '')}" + (f"; {', '.join(extra)}" if extra else "")})
    return rows


def calibration_sentence(citl, citl_lower, citl_upper, slope, slope_lower, slope_upper, level="95%") -> str | None:
    """How the nomogram's test risks fail calibration, in words, or None when neither CI excludes its ideal value.

    A calibration slope whose CI lies below 1 means risks too extreme (high risks too high, low risks
    too low), above 1 too moderate; a calibration-in-the-large whose CI lies above 0 means more events
    than predicted (risks systematically too low), below 0 fewer (too high). Van Calster et al. (2016),
    J Clin Epidemiol 74:167-176: "weak" calibration, the level a small validation set can assess.
    """
    def ci(lo, hi):
        return f"{level} CI {lo:.2f} to {hi:.2f}".replace("-", "−")

    parts = []
    if np.isfinite(slope_upper) and slope_upper < 1:
        parts.append(f"too extreme (calibration slope {slope:.2f}, {ci(slope_lower, slope_upper)}, below 1: "
                     "high risks too high, low risks too low)")
    elif np.isfinite(slope_lower) and slope_lower > 1:
        parts.append(f"too moderate (calibration slope {slope:.2f}, {ci(slope_lower, slope_upper)}, above 1: "
                     "risks too close to the average)")
    if np.isfinite(citl_lower) and citl_lower > 0:
        parts.append(f"systematically too low (calibration-in-the-large {citl:.2f}, {ci(citl_lower, citl_upper)}, above 0: "
                     "more malignant lesions than predicted)")
    elif np.isfinite(citl_upper) and citl_upper < 0:
        parts.append(f"systematically too high (calibration-in-the-large {citl:.2f}, {ci(citl_lower, citl_upper)}, below 0: "
                     "fewer malignant lesions than predicted)")
    if not parts:
        return None
    return ("Calibration fails: the nomogram's predicted risks on the test set are " + " and ".join(parts)
            + "; its risks are not absolute probabilities for this population without recalibration.")


def calibration_rows(heldout: pd.DataFrame, alpha: float = 0.05, test_chose_model: bool = False) -> list[dict]:
    """The nomogram's test calibration-in-the-large and slope with their CIs, from the nomogram stage's
    ``heldout_validation`` (R's ``external_validation`` of the test risks: Wald CIs, or a percentile
    bootstrap over patients when a patient has several test lesions); the slope row's ``method`` ends
    with :func:`calibration_sentence` when calibration fails."""
    row = heldout[heldout["model"] == "nomogram"]
    if len(row) != 1:
        return []
    r = row.iloc[0]
    lvl = _level(alpha)
    n = int(r["n"])
    ci = str(r.get("ci_method", ""))
    how = f"{lvl} CI, " + (ci if ci.startswith("percentile bootstrap") else "Wald")
    where = f"test set (n = {n})" + ("; the test set chose the deep-learning model, so this is optimistic" if test_chose_model else "")
    rows = [{"estimand": "citl_nomogram_test", "label": "Nomogram: test calibration-in-the-large (ideal 0)",
             "estimate": r["citl"], "lower": r["citl_lower"], "upper": r["citl_upper"], "n": n,
             "method": f"{where}; intercept of glm(y ~ offset(logit(risk))); {how}"},
            {"estimand": "calibration_slope_nomogram_test", "label": "Nomogram: test calibration slope (ideal 1)",
             "estimate": r["slope"], "lower": r["slope_lower"], "upper": r["slope_upper"], "n": n,
             "method": f"{where}; slope of glm(y ~ logit(risk)); {how}"}]
    sentence = calibration_sentence(*(float(r[k]) for k in ("citl", "citl_lower", "citl_upper", "slope", "slope_lower", "slope_upper")),
                                    level=lvl)
    if sentence:
        rows[1]["method"] += f". {sentence}"
    return rows


def net_benefit_threshold_rows(table: pd.DataFrame) -> list[dict]:
    """Nomogram − clinical model net-benefit difference at each pre-specified threshold, from the nomogram
    stage's ``net_benefit_thresholds`` (test set, paired patient bootstrap)."""
    rows = []
    nb = table.set_index(["model", "threshold"])["net_benefit"]
    for r in table[table["model"] == "nomogram"].itertuples():
        t = float(r.threshold)
        others = ", ".join([*(f"{w} {nb[(m, r.threshold)]:.3f}" for m, w in (("nomogram", "nomogram"), ("clinical", "clinical model"))
                              if (m, r.threshold) in nb.index), f"treat all {r.treat_all:.3f}"])
        rows.append({"estimand": f"delta_net_benefit_nomogram_clinical_at_{t:g}",
                     "label": f"Nomogram − clinical model: net-benefit difference at threshold {t:g}",
                     "estimate": r.delta_vs_clinical, "lower": r.delta_lower, "upper": r.delta_upper, "n": r.n,
                     "method": f"test set; {r.method}; net benefit {others}"})
    return rows


def holm(p) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, as R's ``p.adjust(p, method = "holm")``: NaN stays NaN
    and is not counted in the number of comparisons."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    o = ok[np.argsort(p[ok], kind="stable")]
    out[o] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[o]))
    return out


def primary_family(model_id: str) -> str:
    """The model family (``lr``, ``svm``, a CNN) of a model id: question 1's default primary comparison."""
    return names.parse_model_id(model_id)[1]


def annotate_multiplicity(table: pd.DataFrame, primary: str | None = None, primary_from: str = "study.primary") -> pd.DataFrame:
    """Fill ``interval``, ``p_adjusted`` and ``adjustment`` of ``main_result`` rows (see the module notes).

    ``primary`` is question 1's primary family; the SR − OR rows of the other families are Holm-adjusted
    over their number. When ``primary`` has no SR − OR row, every SR − OR row is Holm-adjusted.
    """
    out = table.copy()
    seeds = out["estimand"].str.endswith("_seeds")
    has_ci = np.isfinite(out["lower"].astype(float)) & np.isfinite(out["upper"].astype(float))
    out["interval"] = np.where(seeds, "seed range", np.where(has_ci, "CI", "none"))
    out["p_adjusted"] = np.nan
    out["adjustment"] = UNADJUSTED
    out.loc[out["estimand"] == PRIMARY_Q2, "adjustment"] = "primary comparison of question 2 (declared), unadjusted"
    q1 = out["estimand"].str.startswith("delta_auc_sr_or_") & ~seeds
    first = out["estimand"] == f"delta_auc_sr_or_{primary}"
    if primary is not None and (q1 & first).any():
        out.loc[q1 & first, "adjustment"] = f"primary comparison of question 1 ({primary_from}: {primary}), unadjusted"
        secondary, what = q1 & ~first, "secondary comparison{s}"
    else:
        secondary, what = q1, "SR − OR comparison{s} (no primary family among them)"
    k = int(secondary.sum())
    if k:
        out.loc[secondary, "p_adjusted"] = holm(out.loc[secondary, "p_value"].astype(float))
        out.loc[secondary, "adjustment"] = f"Holm over {k} " + what.format(s="s" if k > 1 else "")
    return out


# ------------------------------------------------------------------------------------ repeated splits
def _over_seeds(values) -> dict:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"estimate": np.nan, "lower": np.nan, "upper": np.nan, "n_seeds": 0, "share_positive": np.nan}
    lo, hi = np.percentile(v, [2.5, 97.5])
    return {"estimate": float(v.mean()), "lower": float(lo), "upper": float(hi), "n_seeds": int(v.size),
            "share_positive": float(np.mean(v > 0))}


def repeat_rows(rows: pd.DataFrame, test_chose_model: bool = False) -> list[dict]:
    """Per-seed differences summarised over split seeds (mean, 2.5–97.5 % percentile range, share > 0).

    ``rows`` are the repeated splits' rows (one per model and seed; the clinical model's and the
    nomogram's columns repeat on every row of a seed). Estimands end in ``_seeds``.
    """
    per_seed = rows.drop_duplicates("seed").set_index("seed").sort_index()
    k = len(per_seed)
    n = float(per_seed["n_test"].mean()) if "n_test" in per_seed else np.nan
    how = (f"mean over {k} split seeds with the 2.5–97.5 percentile range; each seed's held-out test set"
           + (f" (mean n = {n:.0f})" if np.isfinite(n) else ""))
    if test_chose_model:
        how += "; the test set chose the deep-learning model in each seed, so nomogram values are optimistic"
    out = []

    def add(estimand, label, values, what, share=True):
        s = _over_seeds(values)
        if not share:
            s["share_positive"] = np.nan
        out.append({"estimand": estimand, "label": label, **s, "n": n, "method": f"{how}; {what}"})

    add("auc_nomogram_test_seeds", "Nomogram: test AUC over split seeds", per_seed["nomogram_test_auc"], "test AUC per seed", share=False)
    add("auc_clinical_test_seeds", "Clinical model: test AUC over split seeds", per_seed["clinical_test_auc"], "test AUC per seed", share=False)
    add("delta_auc_nomogram_clinical_test_seeds", "Nomogram − clinical model: test AUC difference over split seeds",
        per_seed["nomogram_test_auc"] - per_seed["clinical_test_auc"], "paired difference per seed; share_positive: seeds with Δ > 0")
    auc = rows.pivot_table(index="seed", columns="model", values="test_auc")
    for method, sr, orig in _families(auc.columns):
        add(f"delta_auc_sr_or_{method}_seeds", f"SR − OR, {_family_label(method)}: test AUC difference over split seeds",
            auc[sr] - auc[orig], f"{names.label(sr)} − {names.label(orig)} per seed; share_positive: seeds with Δ > 0")
    for col, estimand, label in (("nomogram_test_slope", "calibration_slope_nomogram_test_seeds", "Nomogram: test calibration slope over split seeds"),
                                 ("nomogram_test_citl", "citl_nomogram_test_seeds", "Nomogram: test calibration-in-the-large over split seeds")):
        if col in per_seed:
            add(estimand, label, per_seed[col], "external_validation of the frozen nomogram on each seed's test set", share=False)
    return out


def read_repeats(output, n: int) -> pd.DataFrame:
    """The repeated splits' rows of seeds 0 … n−1 from their ``result.csv`` files (see :func:`seed_result_path`)."""
    missing = [k for k in range(int(n)) if not seed_result_path(output, k).is_file()]
    if missing:
        raise InputError(f"validation.repeats is {n}, but split seed {missing[0]} has no {seed_result_path(output, missing[0])}; "
                         "run the study with `srnomogram run` (it runs the seeds before the main_result stage).")
    return pd.concat([pd.read_csv(seed_result_path(output, k)) for k in range(int(n))], ignore_index=True)


# ------------------------------------------------------------------------------------ many centres
IECV_WORDS = {"auc": "AUC", "citl": "calibration-in-the-large", "slope": "calibration slope", "brier": "Brier score",
              "delta_auc": "AUC difference from the clinical model", "net_benefit": "net benefit"}


def iecv_rows(pooled: pd.DataFrame, alpha: float = 0.05) -> list[dict]:
    """The nomogram's and the clinical model's pooled held-out estimates of the internal-external
    cross-validation (``iecv_pooled``: ``model, estimand, estimate, lower, upper, pi_lower, pi_upper,
    tau2, i2, k``) as ``main_result`` rows, each with its prediction interval (``pi_lower``, ``pi_upper``)."""
    lvl = _level(alpha)
    rows = []
    for r in pooled.to_dict("records"):
        if r["model"] not in ("nomogram", "clinical") or r["estimand"] not in IECV_WORDS:
            continue
        k = int(r["k"])
        rows.append({"estimand": f"iecv_{r['estimand']}_{r['model']}",
                     "label": f"{names.label(r['model'])}: {IECV_WORDS[r['estimand']]} pooled over held-out centres",
                     "estimate": r["estimate"], "lower": r["lower"], "upper": r["upper"],
                     "pi_lower": r.get("pi_lower", np.nan), "pi_upper": r.get("pi_upper", np.nan),
                     "method": f"internal-external cross-validation: each of {k} centres held out from a study fitted on "
                               f"the others; random-effects meta-analysis, {lvl} CI and prediction interval "
                               f"[{r.get('pi_lower', np.nan):.3g}, {r.get('pi_upper', np.nan):.3g}], "
                               f"tau² = {r.get('tau2', np.nan):.3g}, I² = {r.get('i2', np.nan):.3g}"})
    return rows


def main_result(predictions, scores, alpha: float = 0.05, test_chose_model: bool = False, added_value=None,
                repeats=None, patients=None, heldout=None, nb_thresholds=None, primary=None,
                primary_from: str = "study.primary", iecv=None) -> pd.DataFrame:
    """The ``main_result`` table (columns :data:`MAIN_RESULT_COLUMNS`): see the module notes; ``patients``
    as :func:`single_split_rows`; ``heldout`` the nomogram stage's ``heldout_validation`` (calibration
    rows, :func:`calibration_rows`); ``nb_thresholds`` its ``net_benefit_thresholds``; ``primary`` and
    ``primary_from`` as :func:`annotate_multiplicity`; ``iecv`` the pooled table of the internal-external
    cross-validation (its rows, :func:`iecv_rows`, with ``pi_lower``, ``pi_upper``)."""
    rows = single_split_rows(predictions, scores, alpha=alpha, test_chose_model=test_chose_model, patients=patients)
    if heldout is not None and len(heldout):
        rows += calibration_rows(heldout, alpha=alpha, test_chose_model=test_chose_model)
    if added_value is not None and len(added_value):
        rows += added_value_rows(added_value)
    if nb_thresholds is not None and len(nb_thresholds):
        rows += net_benefit_threshold_rows(nb_thresholds)
    if repeats is not None and len(repeats):
        rows += repeat_rows(repeats, test_chose_model=test_chose_model)
    columns = MAIN_RESULT_COLUMNS
    if iecv is not None and len(iecv):
        rows += iecv_rows(iecv, alpha=alpha)
        columns = [*MAIN_RESULT_COLUMNS[:5], "pi_lower", "pi_upper", *MAIN_RESULT_COLUMNS[5:]]
    out = pd.DataFrame(rows).reindex(columns=columns)
    single = out["n_seeds"].isna()
    out.loc[single, "n_seeds"] = 1  # one split
    return annotate_multiplicity(out.astype({"n_seeds": int}), primary=primary, primary_from=primary_from)


# ------------------------------------------------------------------------------------ TRIPOD+AI tables
def participant_flow(cohort: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """Lesions, patients and events: read, excluded per reason, analysed, training set, test set.

    ``cohort`` is the split stage's cohort (one row per analysed lesion, ``split``, ``label``, and
    ``patient_id`` when the manifest has it); ``excluded`` its ``excluded`` table (``case_id``,
    ``label``, ``reason``; ``patient_id`` when known). A patient is
    :func:`srnomogram.data.manifest.patient_ids` (without ``patient_id``: one lesion, one patient).
    """
    from ..data.manifest import patient_ids

    cohort = cohort.assign(_patient=patient_ids(cohort).to_numpy())
    excluded = excluded.assign(_patient=patient_ids(excluded).to_numpy())

    def row(step, part):
        return {"step": step, "lesions": int(len(part)), "patients": int(part["_patient"].nunique()),
                "events": int((part["label"].astype(float) == 1).sum())}

    everything = pd.concat([cohort[["_patient", "label"]], excluded[["_patient", "label"]]], ignore_index=True)
    rows = [row("read from the manifest", everything)]
    for reason, part in excluded.groupby("reason", sort=True):
        rows.append(row(f"excluded: {reason}", part))
    rows.append(row("analysed", cohort))
    for s, title in (("train", "training set"), ("test", "test set")):
        rows.append(row(title, cohort[cohort["split"] == s]))
    return pd.DataFrame(rows, columns=["step", "lesions", "patients", "events"])


def cox_snell_r2(y, risk) -> float:
    """Cox–Snell R² of a logistic model from its fitted risks: ``1 - exp(-LR / n)``,
    ``LR = 2 (log L_model - log L_null)`` (the model's likelihood-ratio χ²)."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(risk, dtype=float), 1e-15, 1 - 1e-15)
    n, phi = len(y), float(np.mean(y))
    ll = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
    ll0 = n * (phi * np.log(phi) + (1 - phi) * np.log(1 - phi))
    return float(1 - np.exp(-2 * (ll - ll0) / n))


def riley_sample_size(parameters: int, prevalence: float, r2_cs: float, shrinkage: float = 0.9,
                      delta: float = 0.05, margin: float = 0.05) -> dict:
    """Minimum sample size to develop a logistic prediction model (Riley et al. 2020, criteria of ``pmsampsize``).

    Parameters
    ----------
    parameters : int
        Candidate predictor parameters ``p`` (coefficients besides the intercept).
    prevalence : float
        Anticipated outcome proportion φ.
    r2_cs : float
        Anticipated Cox–Snell R² of the model.
    shrinkage : float
        Targeted global shrinkage factor S (criterion i), 0.9.
    delta : float
        Largest acceptable optimism in Nagelkerke's R² (criterion ii), 0.05.
    margin : float
        Margin of error of the overall risk (criterion iii), 0.05.

    Returns
    -------
    dict
        ``n_shrinkage`` = ⌈p / ((S − 1) ln(1 − R²cs / S))⌉ (i);
        ``n_optimism``: the same with S = R²cs / (R²cs + δ max R²cs), ``max R²cs = 1 − (φ^φ (1 − φ)^(1−φ))²`` (ii);
        ``n_risk`` = ⌈(1.96 / margin)² φ (1 − φ)⌉ (iii; 1.96 as in the paper and pmsampsize); ``n`` their
        maximum, ``events`` = n φ, ``events_per_parameter`` = n φ / p, ``max_r2_cs``, ``shrinkage_optimism``.

    References
    ----------
    Riley RD, Ensor J, Snell KIE, et al. Calculating the sample size required for developing a clinical
    prediction model. BMJ 2020;368:m441. R package pmsampsize (type "b").
    """
    p, phi, r2 = int(parameters), float(prevalence), float(r2_cs)
    if p < 1 or not 0 < phi < 1:
        raise InputError(f"riley_sample_size needs parameters >= 1 and a prevalence in (0, 1). Got {parameters!r} and {prevalence!r} instead.")
    max_r2 = 1 - (phi ** phi * (1 - phi) ** (1 - phi)) ** 2
    if not 0 < r2 < max_r2:
        raise InputError(f"riley_sample_size needs an anticipated Cox-Snell R2 in (0, {max_r2:.4f}) for prevalence {phi:g}. Got {r2_cs!r} instead.")

    def n_for(s):
        return int(np.ceil(p / ((s - 1) * np.log(1 - r2 / s))))

    s_opt = r2 / (r2 + delta * max_r2)
    n1, n2 = n_for(shrinkage), n_for(s_opt)
    n3 = int(np.ceil((1.96 / margin) ** 2 * phi * (1 - phi)))
    n = max(n1, n2, n3)
    return {"n_shrinkage": n1, "n_optimism": n2, "n_risk": n3, "n": n, "events": n * phi,
            "events_per_parameter": n * phi / p, "max_r2_cs": max_r2, "shrinkage_optimism": s_opt}


def sample_size_table(predictions: pd.DataFrame, coefficients: pd.DataFrame, clinical) -> pd.DataFrame:
    """Events, candidate predictors, events per parameter and Riley's minimum n for the nomogram (rows ``item, value, note``).

    The anticipated Cox–Snell R² is the nomogram's apparent R² on the training set shrunk by its
    heuristic shrinkage factor, ``S_VH R²app`` with ``S_VH = 1 + p / (n ln(1 − R²app))`` (Riley et al. 2020,
    for an apparent R²); when that is not positive, 15 % of the maximum R²cs (their conservative default).
    """
    train = predictions[predictions["split"] == "train"]
    y = train["label"].to_numpy(dtype=float)
    n, events = int(len(y)), int(y.sum())
    phi = events / n
    terms = coefficients[(coefficients["model"] == "nomogram") & (coefficients["term"] != "Intercept")]
    p = int(len(terms))
    candidates = len(list(clinical)) + 1
    r2_app = cox_snell_r2(y, train["risk_nomogram"].to_numpy())
    max_r2 = 1 - (phi ** phi * (1 - phi) ** (1 - phi)) ** 2
    s_vh = 1 + p / (n * np.log(1 - r2_app)) if 0 < r2_app < 1 else np.nan
    r2 = s_vh * r2_app if np.isfinite(s_vh) else np.nan
    source = (f"the nomogram's apparent training R² ({r2_app:.3f}) times its heuristic shrinkage factor ({s_vh:.3f})"
              if np.isfinite(r2) and 0 < r2 < max_r2 else None)
    if source is None:
        r2 = 0.15 * max_r2
        source = "15% of the maximum Cox–Snell R² (the apparent fit gave no positive adjusted R²)"
    riley = riley_sample_size(p, phi, r2)
    rows = [
        ("training lesions", n, "the nomogram's development set"),
        ("events (malignant) in training", events, f"outcome proportion {phi:.3f}"),
        ("candidate predictors", candidates, f"{', '.join(map(str, clinical))} and the deep-learning score"),
        ("predictor parameters", p, "coefficients of the nomogram besides the intercept"),
        ("events per parameter", events / p, "training events / parameters"),
        ("anticipated Cox–Snell R²", r2, source),
        ("maximum Cox–Snell R²", riley["max_r2_cs"], "1 − (φ^φ (1 − φ)^(1 − φ))², at the training outcome proportion"),
        ("minimum n, criterion (i): shrinkage ≥ 0.9", riley["n_shrinkage"], "Riley et al. 2020, BMJ 368:m441"),
        ("minimum n, criterion (ii): optimism in Nagelkerke R² ≤ 0.05", riley["n_optimism"],
         f"shrinkage {riley['shrinkage_optimism']:.3f} at that n"),
        ("minimum n, criterion (iii): overall risk ± 0.05", riley["n_risk"], "95% margin of the intercept's risk"),
        ("minimum n (largest of the three)", riley["n"], f"{riley['events']:.1f} events; {riley['events_per_parameter']:.1f} events per parameter"),
        ("training set meets the minimum", "yes" if n >= riley["n"] else "no", f"{n} of {riley['n']} lesions"),
    ]
    return pd.DataFrame(rows, columns=["item", "value", "note"])


# ------------------------------------------------------------------------------------ the stage
def _repeat_inputs(cfg, results) -> dict:
    """Hashes of the repeated splits' per-seed results, so that the stage reruns when a seed changes."""
    from ..utils import file_sha256

    out = {}
    for k in range(int(cfg.validation.repeats)):
        path = seed_result_path(cfg.study.output, k)
        out[f"repeats/seed_{k}"] = file_sha256(path) if path.is_file() else None
    if cfg.split.method == "centre":  # and when the pooled internal-external cross-validation changes
        path = iecv_pooled_path(cfg.study.output)
        out["iecv/pooled"] = file_sha256(path) if path.is_file() else None
    return out


def run_main_result(ctx):
    """``main_result`` (the paper's two questions), ``participant_flow`` and ``sample_size``."""
    cfg = ctx.config
    split, t2, nom = ctx.inputs["split"], ctx.inputs["table2"], ctx.inputs["nomogram"]
    best = t2.json("best_model")
    added = nom.table("added_value") if (nom.path / "added_value.csv").exists() else None
    repeats = read_repeats(cfg.study.output, cfg.validation.repeats) if cfg.validation.repeats else None
    from ..data.manifest import patient_ids

    pooled = iecv_pooled_path(cfg.study.output)
    iecv = pd.read_csv(pooled) if cfg.split.method == "centre" and pooled.is_file() else None
    predictions = nom.table("predictions")
    cohort = pd.read_csv(split.file("cohort.csv"), dtype={"case_id": str, "patient_id": str})
    patients = pd.Series(patient_ids(cohort).to_numpy(), index=cohort["case_id"].astype(str))
    optional = {name: nom.table(table) if (nom.path / f"{table}.csv").exists() else None
                for name, table in (("heldout", "heldout_validation"), ("nb_thresholds", "net_benefit_thresholds"))}
    primary, primary_from = cfg.study.primary, "study.primary"
    families = [f for f, _, _ in _families(t2.table("scores").columns)]
    if primary is None:
        primary, primary_from = primary_family(best["model"]), f"study.primary, default: the family of {best['label']}"
    elif primary not in families:
        raise InputError(f"study.primary is {primary!r}, but the study has no SR and OR model of that family "
                         f"(families with both: {', '.join(families) or 'none'}); set study.primary to one of them or leave it out.")
    ctx.write_table("main_result", main_result(predictions, t2.table("scores"), alpha=cfg.nomogram.alpha,
                                               test_chose_model=best["rule"] in TEST_SET_RULES, added_value=added,
                                               repeats=repeats, patients=patients, primary=primary, primary_from=primary_from,
                                               iecv=iecv, **optional))
    ctx.write_table("participant_flow", participant_flow(cohort, split.table("excluded")))
    ctx.write_table("sample_size", sample_size_table(predictions, nom.table("nomogram_coefficients"), cfg.cohort.schema.names))


def _primary_key(cfg, results) -> dict:
    return {"primary": cfg.study.primary}  # the study section's other settings change nothing here


def main_result_stage(cfg, checklist=None) -> Stage:
    """The ``main_result`` stage, last in the study (after ``nomogram``).

    ``checklist(cfg) -> DataFrame`` makes its ``tripod_ai`` pin from the settings and the board at every run (after
    the pins above), not from a file of the stage: the study's pipeline passes
    :func:`srnomogram.study.report.board_checklist`, which reads what the report will have; without it the pin is
    declared and not written."""
    read = {"tripod_ai": lambda result: checklist(cfg)} if checklist is not None else {}
    return Stage("main_result", run_main_result, deps=("split", "table2", "nomogram"), sections=("cohort", "nomogram", "validation"),
                 inputs=_repeat_inputs, extra_key=_primary_key, version="3",
                 pins=tuple(Pin(n, title=t, section="main" if n == "main_result" else "tripod", order=i, read=read.get(n))
                            for i, (n, t) in enumerate(PIN_TITLES.items())))

"""Updating a finished study for a new centre: ``srnomogram update STUDY COHORT -o UPDATED``.

A frozen study applied in a new centre often predicts risks that are too high or too low on the
whole, or too extreme. :func:`update` applies the study, unchanged, to a labelled sample of the new
centre (the same apply path as :func:`srnomogram.study.external.validate`: the study's own stages in
apply mode, giving every lesion's deep-learning score and the nomogram's linear predictor ``lp``),
then chooses how to update the nomogram by the closed testing procedure of Vergouwe et al. (2017,
Stat Med 36:4529-39; R's ``update_closed_test`` through :func:`srnomogram.stats.update_closed_test`),
on ``y``, ``lp`` and ``X`` (the nomogram's design columns: its clinical factors, a categorical one as
one indicator per non-reference level, and the deep-learning score):

* ``none``: the original nomogram;
* ``intercept``: recalibration in the large, ``lp + a``;
* ``recalibration``: logistic recalibration, ``a + b * lp`` (every coefficient times ``b``);
* ``refit``: every coefficient of the nomogram re-estimated on the sample.

The image models (radiomics pipelines, CNNs, SR generator) and the clinical model are not refitted:
only the nomogram's coefficients change. ``UPDATED`` is a frozen study that ``srnomogram validate``,
``predict`` and the calculator take as they take the original: ``resolved_config.yaml`` and the frozen
stages (``stages/application``, ``stages/nomogram``, the image models' stages and SR) are copied from the
study (hard links where the file system allows, else copies: a centre can ship ``UPDATED`` alone, and
:func:`~srnomogram.study.external.load_study` checks every file's SHA-256 as for any study), with
``nomogram_design.json`` replaced by the updated design and ``application.json`` recording the update
(the original study's path and hash, the method, each test's LR statistic, df and p, the sample's
lesions, patients and events, and that the update is conditional on that sample).

The updated nomogram's performance in the new centre is given apparent and optimism-corrected
(Harrell's bootstrap, as ``rms::validate``): ``bootstraps`` resamples of the sample's PATIENTS (all of
a patient's lesions together, :func:`srnomogram.data.manifest.patient_codes`), each repeating the
whole closed-test choice and update on the resample, so the selection is part of the optimism; the
indexes are the AUC, calibration-in-the-large, calibration slope and Brier score.
``tables/update_*.csv``, ``board/`` (the pins of :data:`UPDATE_PINS`), ``figures/figure6_nomogram.png``
(R's ``nomogram_plot`` of the updated points table) and ``calculator.html`` come from the ``update``
stage, cached under ``UPDATED/updating/stages`` with the applied stages.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, param_error
from ..utils import atomic_path, check_output_dir, file_sha256, hash_bytes, output_lock
from .cache import DONE, Pin, Runner, Stage, record
from .freeze import level_values, predictor_terms

logger = logging.getLogger(__name__)

__all__ = ["update", "METHODS", "METHOD_LABELS", "UPDATE_PINS", "design_matrix", "design_lp", "updated_design", "updated_lp",
           "points_table", "update_performance", "choose_update", "patient_bootstrap", "update_stage", "updated_folder"]

#: The candidate updates, from least to most extensive (Vergouwe et al. 2017).
METHODS = ("none", "intercept", "recalibration", "refit")
METHOD_LABELS = {"none": "original nomogram (no update)", "intercept": "recalibration in the large (intercept)",
                 "recalibration": "logistic recalibration (intercept and slope)", "refit": "model revision (every coefficient refitted)"}
#: The performance indexes of the updated nomogram in the new centre.
INDEXES = ("auc", "citl", "slope", "brier")
UPDATE_FORMAT = "srnomogram.update/1"
#: The frozen study's stage folders an update copies (the image models' stages are added from application.json).
UPDATED_STAGES = ("application", "nomogram")
SAMPLE_DIR = "updating"  # the applied stages' cache inside UPDATED


# ==================================================================================== the design's numbers
def design_matrix(design: dict, data: pd.DataFrame) -> pd.DataFrame:
    """The nomogram's design columns of ``data``: one per rms term (a numeric predictor's value; a
    categorical one's 0/1 indicator of each non-reference level), named as the design's terms; NaN
    where a value is missing.

    ``design`` is a ``nomogram_design.json`` entry (:func:`srnomogram.study.freeze.save_nomogram_fits`).
    """
    cols = {}
    for p in design["predictors"]:
        if p.get("type") == "categorical":
            text = level_values(p, data)
            for term, level in zip(predictor_terms(p), [lv for lv in p["levels"] if lv != p["reference"]]):
                cols[term] = np.where(text.isna(), np.nan, (text == level).astype(float))
        else:
            cols[p["name"]] = pd.to_numeric(data[p["name"]], errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(cols, index=data.index)


def design_lp(design: dict, X: pd.DataFrame) -> np.ndarray:
    """The linear predictor ``intercept + X @ coefficients`` of a design on its design columns."""
    b = np.array([design["coefficients"][t] for t in X.columns], dtype=float)
    return float(design["intercept"]) + X.to_numpy(dtype=float) @ b


def updated_lp(method: str, coefficients: pd.Series, lp, X=None) -> np.ndarray:
    """The updated model's linear predictor: ``lp``; ``a + lp``; ``a + b * lp``; or the refit ``c0 + X @ c``.

    ``coefficients`` as :func:`srnomogram.stats.update_closed_test` returns them (``intercept``,
    ``slope``; for ``refit`` the intercept first, then one per column of ``X`` in order).
    """
    lp = np.asarray(lp, dtype=float)
    c = np.nan_to_num(np.asarray(coefficients, dtype=float))  # an aliased refit term (NA in R) adds nothing
    if method == "none":
        return lp
    if method == "intercept":
        return c[0] + lp
    if method == "recalibration":
        return c[0] + c[1] * lp
    return c[0] + np.asarray(X, dtype=float) @ c[1:]


def updated_design(design: dict, method: str, coefficients: pd.Series) -> dict:
    """The nomogram design after an update: its coefficients and its points axes.

    ``intercept``: the intercept plus ``a``; ``recalibration``: the intercept ``a + b * intercept`` and
    every coefficient times ``b``; ``refit``: the refitted coefficients (``coefficients``: intercept first,
    then one per design term, in the order of :func:`design_matrix`); ``none``: unchanged. The points
    axes are recomputed from the new coefficients as ``rms::nomogram`` draws them (:func:`points_table`):
    an intercept or a positive slope leaves each predictor's points as they were and changes only the
    mapping from total points to risk.
    """
    if method not in METHODS:
        raise param_error("method", "updated_design", f"one of {list(METHODS)}", method)
    new = json.loads(json.dumps(design))  # a deep copy
    b = {k: float(v) for k, v in design["coefficients"].items()}
    c = np.nan_to_num(np.asarray(coefficients, dtype=float))
    terms = [t for p in design["predictors"] for t in predictor_terms(p)]
    if method == "intercept":
        b["Intercept"] += c[0]
    elif method == "recalibration":
        b = {k: (c[0] + c[1] * v if k == "Intercept" else c[1] * v) for k, v in b.items()}
    elif method == "refit":
        if len(c) != len(terms) + 1:
            raise InputError(f"A refit of the nomogram needs {len(terms) + 1} coefficients (intercept and {', '.join(terms)}); "
                             f"got {len(c)}.")
        b = {"Intercept": c[0], **dict(zip(terms, c[1:]))}
    new["coefficients"] = {k: float(v) for k, v in b.items()}
    new["intercept"] = new["coefficients"]["Intercept"]
    for p in new["predictors"]:
        if p.get("type") == "categorical":
            p["coef"] = [0.0 if lv == p["reference"] else new["coefficients"][f"{p['name']}={lv}"] for lv in p["levels"]]
        else:
            p["coef"] = new["coefficients"][p["name"]]
    _rms_points(new)
    return new


def _contributions(p: dict) -> np.ndarray:
    """A predictor's contribution to the linear predictor at each of its axis values (levels)."""
    if p.get("type") == "categorical":
        return np.asarray(p["coef"], dtype=float)
    return float(p["coef"]) * np.asarray(p["x"], dtype=float)


def _rms_points(design: dict) -> tuple[float, float]:
    """Set each predictor's ``points`` as ``rms::nomogram`` scales them; return ``(intercept, points_per_lp)``.

    rms gives the predictor whose contribution spans the widest range 100 points: with ``c`` a
    predictor's contributions at its axis values, its points are ``(c - min c) * S``, ``S = 100 /
    max(range c)`` over the predictors, and ``lp = intercept + total / S`` with ``intercept = b0 +
    sum(min c)`` (Harrell, rms ``nomogram``; the scaling rows of R's ``nomogram_points_table``).
    """
    contrib = [_contributions(p) for p in design["predictors"]]
    widest = max((float(np.ptp(c)) for c in contrib), default=0.0)
    if not widest > 0:
        raise InputError("The updated nomogram has no predictor with a non-zero coefficient; it cannot be drawn.")
    per_lp = 100.0 / widest
    for p, c in zip(design["predictors"], contrib):
        p["points"] = ((c - c.min()) * per_lp).tolist()
    return float(design["intercept"]) + float(sum(c.min() for c in contrib)), per_lp


def _pretty_ticks(hi: float) -> np.ndarray:
    """0 to at least ``hi`` in steps of 1, 2 or 5 times a power of ten, about 6 to 10 ticks (R's ``pretty``)."""
    raw = hi / 8 if hi > 0 else 1.0
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return np.round(np.arange(0, hi + step - 1e-9 * step, step), 10)


RISK_TICKS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def points_table(design: dict) -> pd.DataFrame:
    """A design as R's ``nomogram_points_table``: rows of axis ``predictor``, ``total_points``, ``risk``
    and ``scaling`` (``intercept``, ``points_per_lp``, ``coef:<term>``), which R's ``nomogram_plot`` draws
    and :func:`srnomogram.study.freeze.calculator_spec` reads."""
    d = json.loads(json.dumps(design))
    intercept, per_lp = _rms_points(d)
    rows = []
    for p in d["predictors"]:
        values = p["levels"] if p.get("type") == "categorical" else [f"{float(x):.15g}" for x in p["x"]]
        rows += [{"axis": "predictor", "variable": p["name"], "value": v, "points": float(pt)} for v, pt in zip(values, p["points"])]
    total = _pretty_ticks(sum(max(p["points"]) for p in d["predictors"]))
    rows += [{"axis": "total_points", "variable": "Total Points", "value": f"{t:.15g}", "points": float(t)} for t in total]
    for r in RISK_TICKS:
        at = (np.log(r / (1 - r)) - intercept) * per_lp
        if total[0] <= at <= total[-1]:
            rows.append({"axis": "risk", "variable": "Risk", "value": f"{r:g}", "points": float(at)})
    sc = {"intercept": intercept, "points_per_lp": per_lp, **{f"coef:{k}": v for k, v in d["coefficients"].items()}}
    rows += [{"axis": "scaling", "variable": k, "value": f"{float(v):.17g}", "points": np.nan} for k, v in sc.items()]
    return pd.DataFrame(rows, columns=["axis", "variable", "value", "points"])


# ==================================================================================== performance
def _logistic(y, Z, offset, iters: int = 50) -> np.ndarray:
    """Maximum-likelihood logistic coefficients of ``y`` on ``Z`` with ``offset`` (Newton-Raphson, as ``glm``)."""
    beta = np.zeros(Z.shape[1])
    for _ in range(iters):
        eta = offset + Z @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        step = np.linalg.solve(Z.T @ (Z * w[:, None]), Z.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def update_performance(y, lp) -> dict:
    """The indexes of a model with linear predictor ``lp`` on outcomes ``y``: ``auc``, ``citl``
    (calibration-in-the-large, the intercept of ``glm(y ~ offset(lp))``), ``slope`` (of ``glm(y ~ lp)``)
    and ``brier`` (mean squared error of the risks)."""
    from .. import metrics

    y, lp = np.asarray(y, dtype=float), np.asarray(lp, dtype=float)
    p = 1.0 / (1.0 + np.exp(-lp))
    one = np.ones((len(y), 1))
    return {"auc": float(metrics.roc_auc(y, p)), "citl": float(_logistic(y, one, lp)[0]),
            "slope": float(_logistic(y, np.column_stack([one, lp]), np.zeros(len(y)))[1]),
            "brier": float(np.mean((p - y) ** 2))}


def choose_update(y, lp, X: pd.DataFrame, alpha: float, method: str = "auto"):
    """The closed test on ``(y, lp, X)`` and the update it (or ``method``) gives.

    Returns ``(tests, chosen, method, coefficients)``: the closed test's steps
    (:func:`srnomogram.stats.update_closed_test`), its choice, the method applied (``chosen`` unless
    ``method`` forces another) and that method's coefficients (the closed test's own when it chose it;
    else R's ``glm`` of the forced model, the same fit the closed test makes).
    """
    from .. import stats

    tests = stats.update_closed_test(y, lp, X.to_numpy(dtype=float), alpha=alpha)
    performed = tests["performed"].astype(bool)
    # R's NA (a step not performed) reaches pandas as an integer sentinel: None here
    tests["rejected"] = pd.Series([bool(r) if p else None for r, p in zip(tests["rejected"], performed)], dtype=object)
    tests["performed"] = performed
    chosen = tests.attrs["method"]
    use = chosen if method == "auto" else method
    if use != chosen:
        return tests, chosen, use, _forced_fit(use, y, lp, X)
    coef = tests.attrs["coefficients"].copy()
    if use == "refit":  # the bridge named the columns x1, x2, ...: the design's terms
        coef.index = ["(Intercept)", *X.columns]
    return tests, chosen, use, coef


def _forced_fit(method, y, lp, X) -> pd.Series:
    """The coefficients of a method chosen by the user: R's ``glm`` of the candidate model."""
    from .. import stats

    if method == "none":
        return pd.Series(dtype=float)
    data = pd.DataFrame({"y": np.asarray(y, dtype=float), "lp": np.asarray(lp, dtype=float)})
    if method == "refit":
        data = pd.concat([data, pd.DataFrame(X.to_numpy(dtype=float), columns=[f"x{i + 1}" for i in range(X.shape[1])])], axis=1)
        formula = "y ~ " + " + ".join(f"x{i + 1}" for i in range(X.shape[1]))
    else:
        formula = "y ~ 1 + offset(lp)" if method == "intercept" else "y ~ lp"
    fit = stats.call("glm", stats.Formula(formula), data=data, family="binomial", _namespace="stats")
    coef = np.asarray(stats.call("coef", fit, _namespace="stats"), dtype=float).reshape(-1)
    index = {"intercept": ["intercept"], "recalibration": ["intercept", "slope"]}.get(method, ["(Intercept)", *X.columns])
    return pd.Series(coef, index=index)  # named as the closed test names its chosen model's


def patient_bootstrap(patients, B: int, seed: int):
    """``B`` resamples of row indices, each drawing patients with replacement and keeping all of a
    drawn patient's rows together (the patient is the resampling unit)."""
    codes = np.asarray(patients)
    uniq = np.unique(codes)
    rows = {c: np.flatnonzero(codes == c) for c in uniq}
    rng = np.random.default_rng(seed)
    for _ in range(B):
        yield np.concatenate([rows[c] for c in rng.choice(uniq, size=len(uniq), replace=True)])


def optimism_bootstrap(y, lp, X, patients, alpha: float, method: str, B: int, seed: int):
    """Harrell's optimism bootstrap of the whole update: each resample of patients repeats the closed
    test (or the forced method's fit) and the update; optimism = the update's indexes on the resample
    minus the same update's indexes on the original sample.

    Returns one row per resample: ``replicate``, ``method`` (chosen in it), ``n``, ``n_patients``,
    ``<index>_boot`` and ``<index>_orig`` for every index, and ``failed`` (a resample without both
    outcomes, or where a candidate did not converge: left out of the optimism).
    """
    from ..errors import RBridgeError

    y, lp = np.asarray(y, dtype=float), np.asarray(lp, dtype=float)
    rows = []
    for r, idx in enumerate(patient_bootstrap(patients, B, seed), start=1):
        row = {"replicate": r, "n": len(idx), "n_patients": len(np.unique(np.asarray(patients)[idx])), "method": None, "failed": ""}
        yb, lpb, Xb = y[idx], lp[idx], X.iloc[idx].reset_index(drop=True)
        if yb.min() == yb.max():
            row["failed"] = "one outcome only"
        else:
            try:
                _, _, used, coef = choose_update(yb, lpb, Xb, alpha, method)
            except RBridgeError as exc:
                row["failed"] = str(exc)[:200]
            else:
                row["method"] = used
                try:
                    with np.errstate(over="ignore"):
                        boot = update_performance(yb, updated_lp(used, coef, lpb, Xb))
                        orig = update_performance(y, updated_lp(used, coef, lp, X))
                except np.linalg.LinAlgError:  # a separated resample: its calibration slope has no finite estimate
                    row["failed"] = "calibration not estimable (separation)"
                else:
                    row.update({f"{k}_boot": boot[k] for k in INDEXES}, **{f"{k}_orig": orig[k] for k in INDEXES})
        rows.append(row)
    cols = ["replicate", "method", "n", "n_patients", *[f"{k}_{w}" for k in INDEXES for w in ("boot", "orig")], "failed"]
    return pd.DataFrame(rows).reindex(columns=cols)


def performance_table(y, lp_updated, boot: pd.DataFrame) -> pd.DataFrame:
    """Apparent, optimism and optimism-corrected (apparent - mean optimism) indexes of the update."""
    app = update_performance(y, lp_updated)
    ok = boot[boot["failed"].fillna("") == ""]
    rows = []
    for k in INDEXES:
        opt = float((ok[f"{k}_boot"] - ok[f"{k}_orig"]).mean()) if len(ok) else np.nan
        rows.append({"index": k, "apparent": app[k], "optimism": opt, "corrected": app[k] - opt,
                     "bootstraps": int(len(ok)),
                     "estimate": f"apparent; optimism-corrected by Harrell's bootstrap over patients ({len(boot)} resamples, "
                                 f"{len(ok)} usable), the update's choice and fit repeated in each"})
    return pd.DataFrame(rows)


# ==================================================================================== the update stage
def _sample(ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The updating sample: one row per complete lesion (``case_id``, ``patient``, ``label``, ``lp``) and its design columns."""
    from ..data.manifest import patient_codes, patient_ids
    from .stages._common import _applied_cohort

    run = ctx.config
    info = ctx.inputs["nomogram"].json("scores_info")
    if info.get("clinical_skipped"):
        raise InputError(f"Cannot update the nomogram on {run.manifest}: {info.get('message', 'its clinical columns are missing')}")
    cohort = _applied_cohort(ctx.inputs["split"])
    scores = ctx.inputs["nomogram"].table("scores")
    design = run.study.design["nomogram"]
    data = cohort[run.study.app["clinical_factors"]].assign(deep_score=scores["deep_score"].to_numpy())
    X = design_matrix(design, data)
    keep = X.notna().all(axis=1).to_numpy() & cohort["label"].notna().to_numpy()
    sample = pd.DataFrame({"case_id": cohort["case_id"].astype(str), "patient": patient_codes(patient_ids(cohort)),
                           "label": cohort["label"].astype(float)})[keep].reset_index(drop=True)
    X = X[keep].reset_index(drop=True)
    sample["lp"] = design_lp(design, X)
    if sample["label"].nunique() < 2:
        raise InputError(f"Cannot update the nomogram on {run.manifest}: its {len(sample)} complete lesions have "
                         f"{int(sample['label'].sum())} malignant; the update needs benign and malignant lesions.")
    return sample, X


def run_update(ctx):
    """The ``update`` stage: the closed test, the updated design and its performance in the new centre."""
    run = ctx.config
    o = run.options
    design = run.study.design["nomogram"]
    sample, X = _sample(ctx)
    y, lp = sample["label"].to_numpy(), sample["lp"].to_numpy()
    tests, chosen, method, coef = choose_update(y, lp, X, o["alpha"], o["method"])
    new = updated_design(design, method, coef)
    lp_new = design_lp(new, X)
    sample["lp_updated"] = lp_new
    sample["risk_updated"] = 1.0 / (1.0 + np.exp(-lp_new))
    boot = optimism_bootstrap(y, lp, X, sample["patient"], o["alpha"], o["method"], o["bootstraps"], o["seed"])
    perf = performance_table(y, lp_new, boot)
    original = update_performance(y, lp)
    perf.insert(1, "original_apparent", [original[k] for k in INDEXES])
    terms = ["Intercept", *X.columns]
    ctx.write_table("update_tests", tests.assign(chosen=chosen))
    ctx.write_table("update_coefficients", pd.DataFrame({"term": terms, "original": [design["coefficients"][t] for t in terms],
                                                         "updated": [new["coefficients"][t] for t in terms], "method": method}))
    ctx.write_table("update_performance", perf)
    ctx.write_table("update_bootstrap", boot)
    ctx.write_table("update_sample", sample)
    ctx.write_table("nomogram_points", points_table(new))
    n_pat = int(sample["patient"].nunique())
    record_ = {
        "format": UPDATE_FORMAT,
        "study": str(run.study.path), "study_key": run.study.key,
        "study_application_sha256": file_sha256(run.study.file("stages/application/application.json")),
        "study_design_sha256": file_sha256(run.study.file(run.study.app["design"])),
        "cohort": str(run.manifest), "cohort_sha256": file_sha256(run.manifest),
        "method": method, "method_label": METHOD_LABELS[method],
        "chosen_by": "the closed testing procedure (Vergouwe et al. 2017)" if o["method"] == "auto" else
                     f"the user, not by the closed test (which chose {chosen!r})",
        "closed_test_choice": chosen, "alpha": o["alpha"],
        "tests": [{k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
                  for r in tests.to_dict("records")],
        "coefficients": {str(k): float(v) for k, v in coef.items()},
        "n": int(len(sample)), "n_patients": n_pat, "events": int(sample["label"].sum()),
        "n_incomplete": int(len(ctx.inputs["split"].table("cohort")) - len(sample)),
        "bootstraps": int(o["bootstraps"]), "bootstraps_used": int(perf["bootstraps"].iloc[0]), "seed": int(o["seed"]),
        "bootstrap_methods": {str(k): int(v) for k, v in boot["method"].value_counts().items()},
        "conditional": "The update is conditional on this updating sample: its coefficients were estimated on these "
                       "lesions, and the performance above is the sample's apparent and optimism-corrected (not external) "
                       "performance.",
        "refitted": "the nomogram's coefficients only; the image models (radiomics pipelines, CNNs, SR generator), the "
                    "deep-learning score and the clinical model are the study's, not refitted",
    }
    ctx.write_json("update", record_)
    ctx.write_json("nomogram_design", new)


UPDATE_PINS = (
    Pin("update_tests", title="Closed testing procedure (Vergouwe et al. 2017): likelihood-ratio test of each candidate update"),
    Pin("update_coefficients", title="Nomogram coefficients before and after the update"),
    Pin("update_performance", title="The updated nomogram in the new centre: apparent and optimism-corrected (patient bootstrap) "
        "AUC, calibration-in-the-large, slope and Brier score"),
    Pin("update_bootstrap", title="Bootstrap resamples of patients: the update chosen in each and its indexes (resample, original)"),
    Pin("update_sample", title="The updating sample: lesion, patient code, label, original and updated linear predictor"),
    Pin("nomogram_points", title="Updated nomogram points table (axes and scaling)"),
    record("update", "The update: original study, method and who chose it, closed-test steps, sample counts (JSON)"),
)
#: The update's tables, exported to ``UPDATED/tables/``.
UPDATE_TABLES = ("update_tests", "update_coefficients", "update_performance", "update_bootstrap")


def update_stage() -> Stage:
    """The ``update`` stage, after the study's applied stages (it reads ``split`` and ``nomogram``)."""
    key = lambda r, res: {"study": r.study.key, **{k: r.options[k] for k in ("alpha", "method", "bootstraps", "seed")}}  # noqa: E731
    return Stage("update", run_update, deps=("split", "nomogram"), version="1", extra_key=key, pins=UPDATE_PINS)


# ==================================================================================== the updated study folder
def updated_folder(out, study_dir) -> Path:
    """Check ``-o/--output`` as the new study folder of an update, before any work; return it absolute.

    Refused in one line: a path inside the study itself, and a folder that holds a study other than an
    update (a ``resolved_config.yaml`` without an update record): an update writes a new study folder.
    A folder of an earlier update is reused (its cached stages resume).
    """
    from .external import STUDY_FOLDER

    out = check_output_dir(out, "-o/--output", outside={STUDY_FOLDER: study_dir})
    if Path(study_dir).resolve() in out.resolve().parents:
        raise InputError(f"The '-o/--output' option names {out}, which is inside the study folder {study_dir}; choose a new folder.")
    if (out / "resolved_config.yaml").is_file() and not (out / "stages" / "application" / "update.json").is_file():
        raise InputError(f"The '-o/--output' option names {out}, which holds a study that is not an update; "
                         "choose a new folder for the updated study, so that the study is kept.")
    return out


def _link_or_copy(src, dst):
    """Hard link (the package never edits a finished file in place: it writes a new one and renames), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _done(folder: Path, key: str, name: str) -> None:
    files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != DONE}
    with atomic_path(folder / DONE) as t:
        t.write_text(json.dumps({"key": key, "stage": name, "files": files}, indent=1), encoding="utf-8")


def freeze_update(study, result, out: Path, sample_summary: dict) -> None:
    """Write ``out`` as a frozen study: the study's frozen stages, the updated design and application record.

    Built in a temporary folder and moved in stage by stage, ``stages/application`` last (the stage
    :func:`~srnomogram.study.external.load_study` reads first): a run stopped half-way leaves no
    loadable mixture of the old and the new.
    """
    rec = result.json("update")
    app = json.loads(json.dumps(study.app))
    stages = set(UPDATED_STAGES) | {Path(m["file"]).parts[1] for m in app["models"].values()}
    if app["sr"]["enabled"]:
        stages.add("sr")
    tmp = out / f".frozen.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "stages").mkdir(parents=True)
    try:
        for s in sorted(stages - {"nomogram"}):
            shutil.copytree(study.file(f"stages/{s}"), tmp / "stages" / s, copy_function=_link_or_copy)
        nomo = tmp / "stages" / "nomogram"
        nomo.mkdir()
        design = {**study.design, "nomogram": result.json("nomogram_design")}
        (nomo / "nomogram_design.json").write_text(json.dumps(design, indent=1), encoding="utf-8")
        _link_or_copy(study.file("stages/nomogram/clinical.rds"), nomo / "clinical.rds")
        _done(nomo, hash_bytes(study.key, result.key), "nomogram")
        # the application record: the updated nomogram (its design, no rms fit) and its cut-off carried through the update
        nom = app["clinical_models"]["nomogram"]
        t = float(nom["threshold"])
        if rec["method"] in ("intercept", "recalibration"):
            a = rec["coefficients"].get("intercept", 0.0)
            b = rec["coefficients"].get("slope", 1.0)
            nom["threshold"] = float(1 / (1 + np.exp(-(a + b * np.log(t / (1 - t))))))
            nom["threshold_from"] = (f"{nom['threshold_from']}, carried through the update (the same lesions above it: "
                                     f"the original cut-off {t:.6g} on the updated risk scale)")
        elif rec["method"] == "refit":
            nom["threshold_from"] = f"{nom['threshold_from']} (the original risk cut-off {t:.6g}, kept unchanged by the refit)"
        nom["file"] = app["design"]
        nom["label"] = f"{nom['label']} (updated: {rec['method']})"
        app["update"] = {k: rec[k] for k in ("study", "study_key", "study_application_sha256", "study_design_sha256", "cohort",
                                             "cohort_sha256", "method", "method_label", "chosen_by", "closed_test_choice", "alpha",
                                             "tests", "coefficients", "n", "n_patients", "events", "conditional", "refitted")}
        application = tmp / "stages" / "application"
        (application / "application.json").unlink()
        (application / "application.json").write_text(json.dumps(app, indent=1), encoding="utf-8")
        summary = json.loads(study.file("stages/application/training_summary.json").read_text(encoding="utf-8"))
        summary["risks"] = {**summary.get("risks", {}), "nomogram": sample_summary}  # the updated risks' reference: the sample
        summary["risks_nomogram_from"] = "the updated nomogram's risks on its updating sample"
        (application / "training_summary.json").unlink()
        (application / "training_summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        _link_or_copy(result.file("update.json"), application / "update.json")
        _done(application, hash_bytes(study.key, result.key, "application"), "application")
        with atomic_path(out / "resolved_config.yaml") as t_:
            shutil.copyfile(study.file("resolved_config.yaml"), t_)
        final = out / "stages"
        final.mkdir(exist_ok=True)
        if (final / "application").exists():
            shutil.rmtree(final / "application")
        for s in [*sorted(stages - {"application"}), "application"]:
            old = final / f".{s}.old-{os.getpid()}"
            if (final / s).exists():
                os.replace(final / s, old)
            os.replace(tmp / "stages" / s, final / s)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ==================================================================================== public API
def update(study_dir, cohort, out, alpha: float = 0.05, method: str = "auto", bootstraps: int = 200, seed=None,
           jobs=None, device: str = "auto", force=(), scheduler=None) -> Path:
    """Update a finished study's nomogram for a new centre; returns the updated study folder ``out``.

    Parameters
    ----------
    study_dir : path-like
        The output folder of ``srnomogram run`` (or of an earlier update).
    cohort : path-like
        Labelled manifest of the new centre's updating sample (as ``validate`` takes it).
    out : path-like
        The updated study's folder (new): a frozen study for ``validate``, ``predict`` and the
        calculator, with ``tables/update_*.csv``, ``figures/figure6_nomogram.png``, ``calculator.html``,
        ``board/`` and the applied stages' cache ``updating/stages``.
    alpha : float
        Level of each likelihood-ratio test of the closed testing procedure.
    method : {"auto", "none", "intercept", "recalibration", "refit"}
        ``"auto"``: the closed test chooses. Another value forces that update, recorded as chosen by
        the user, not by the closed test (the closed test's steps and choice are still reported).
    bootstraps : int
        Patient-bootstrap resamples of the optimism correction (default 200: each resample repeats
        the closed test in R, about 0.05 s; Harrell's usual 200 suffices for a mean optimism).
    seed : int, optional
        Seed of the bootstrap; default the study's ``bootstrap_seed``.
    jobs, device, force, scheduler
        As in :func:`srnomogram.study.external.validate` (``force`` may name ``"update"``).
    """
    from .external import ApplyRun, _apply_stages, _board_metadata, load_study
    from .pipeline import export_tables, publisher
    from .stages import load_apply_cohort

    if method not in ("auto", *METHODS):
        raise param_error("method", "update", f"one of {['auto', *METHODS]}", method)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise param_error("alpha", "update", "a float in (0, 1)", alpha)
    if not isinstance(bootstraps, (int, np.integer)) or isinstance(bootstraps, bool) or bootstraps < 1:
        raise param_error("bootstraps", "update", "an int >= 1", bootstraps)
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise param_error("seed", "update", "an int or None", seed)
    out = updated_folder(out, study_dir)
    study = load_study(study_dir)
    manifest = Path(cohort).resolve()
    load_apply_cohort(manifest, True, clinical=study.clinical)  # fail early, before anything is written
    opts = {"alpha": float(alpha), "method": method, "bootstraps": int(bootstraps),
            "seed": int(study.app.get("bootstrap_seed", 0) if seed is None else seed),
            "jobs": jobs, "device": device, "scheduler": scheduler}
    with output_lock(out, "update"):
        run = ApplyRun(study, manifest, out, True, opts)
        stages = [*_apply_stages(run, with_stats=False), update_stage()]
        meta = {**_board_metadata(run), "estimate": "updating sample (apparent and optimism-corrected)"}
        on_done = publisher(run.cfg, out / "board", metadata=meta)
        runner = Runner(run, stages, force=tuple(force), root=out / SAMPLE_DIR / "stages",
                        on_done=lambda s, r, reused: on_done(s, r, reused) if s.name == "update" else None)
        results = runner.run()
        res = results["update"]
        from .freeze import describe

        freeze_update(study, res, out, describe(res.table("update_sample")["risk_updated"]))
        export_tables(out / "board", UPDATE_TABLES, out / "tables")
        _outputs(run, out)
        with atomic_path(out / "run_log.json") as tmp:
            tmp.write_text(json.dumps(runner.log, indent=1), encoding="utf-8")
    rec = res.json("update")
    logger.info("Updated study (%s, chosen by %s): %s", rec["method_label"], rec["chosen_by"], out)
    return out


def _outputs(run, out: Path) -> None:
    """The updated nomogram figure (R's ``nomogram_plot`` from the board's ``nomogram_points``) and the calculator."""
    from ..board import read_pin
    from .figures import r_figures
    from .report import calculator_page

    cfg = run.cfg
    labels = cfg.cohort.schema.labels(cfg.cohort.clinical_labels)
    labels.setdefault("deep_score", "Deep-learning score (0-1)")
    r_figures(out / "board", out / "figures", labels=labels, formats=tuple(cfg.report.formats), names=("figure6_nomogram",),
              pins=["nomogram_points"])
    calculator_page(read_pin(out / "board", "nomogram_points"), out / "calculator.html",
                    title=f"Nomogram calculator: {cfg.study.name}, updated for {run.manifest.name}", labels=labels)


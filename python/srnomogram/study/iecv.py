"""Internal-external cross-validation (IECV) across centres: ``split.method: centre``.

With ``cohort.centre`` naming the manifest's centre column (hospital, scanner or both) and
``split.method: centre``, the study adds the ``iecv`` stage (Royston et al. 2004; Steyerberg &
Harrell 2016; Debray et al. 2017). Each centre ``c`` is held out in turn:

1. the study itself, unchanged but for its cohort, is fitted on the other centres' lesions: a sub-study
   under ``<output>/iecv/<c>/study/``, run by the study's own stages (cached and resumable, as a split
   seed of :mod:`srnomogram.study.repeats` is), up to its frozen ``application``. Every fit is inside
   it: SR, feature selection, the radiomics and deep models, the choice of the model behind the
   deep-learning score (``cv_auc``: cross-validated inside its training set), the cut-offs, the clinical
   model and the nomogram. The sub-study keeps the study's own random train/test split of its
   centres (``split.method: random``), so that each fold develops its model exactly as the final model
   is developed: a study without a test set is not one the stages can run (Table 2, the nomogram's
   held-out validation and the main result read it), and removing it would make the folds a different
   procedure from the one whose performance they estimate;
2. the frozen sub-study is applied to centre ``c``'s lesions through the apply path of ``srnomogram
   validate`` (:func:`srnomogram.study.external.validate`: the study's stages in apply mode, then the
   external statistics of :mod:`srnomogram.study.stages.statistics`) under ``<output>/iecv/<c>/validation/``.
   Centre ``c``'s labels reach only that last statistics stage.

Patients never straddle: a patient with lesions in two centres is refused when the cohort loads
(:func:`srnomogram.data.split.check_centres`). The final model is the ordinary study on all centres
(its random split, as with ``split.method: random``); the IECV rows are the held-out estimates of how
that procedure transports to a new centre.

Per held-out centre and model, ``iecv_centres`` holds the held-out statistics with the standard errors
a meta-analysis needs (:func:`centre_rows`); ``iecv_pooled`` their random-effects pooling across
centres, with prediction intervals, by the R package (:func:`srnomogram.stats.iecv_pool`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import InputError
from ..utils import hash_bytes, write_csv_atomic
from .cache import Pin, Runner, Stage, record
from .main_result import iecv_pooled_path

logger = logging.getLogger(__name__)

__all__ = ["centre_config", "centre_folder", "run_centre", "centre_rows", "iecv_long", "iecv_stage",
           "CENTRE_COLUMNS", "POOLED_ESTIMANDS"]

#: The sub-study runs the study's stages up to this one (its frozen application; no report, no main result).
SUB_STUDY_END = "application"
#: Columns of ``iecv_centres`` (``label`` is added beside ``model`` when pinned).
CENTRE_COLUMNS = [
    "centre", "model", "n", "events", "auc", "auc_lower", "auc_upper", "auc_se", "citl", "citl_lower", "citl_upper", "citl_se",
    "slope", "slope_lower", "slope_upper", "slope_se", "brier", "brier_lower", "brier_upper", "brier_se",
    "delta_auc", "delta_auc_se", "net_benefit", "net_benefit_se", "threshold", "ci_method", "se_method",
]
#: Estimand of the long frame (:func:`iecv_long`) → its estimate and SE columns in ``iecv_centres``.
POOLED_ESTIMANDS = {"auc": ("auc", "auc_se"), "citl": ("citl", "citl_se"), "slope": ("slope", "slope_se"),
                    "brier": ("brier", "brier_se"), "delta_auc": ("delta_auc", "delta_auc_se"),
                    "net_benefit": ("net_benefit", "net_benefit_se")}


def centre_folder(output, centre: str) -> Path:
    """``<output>/iecv/<centre>``: the centre's name when it is a safe folder name, else a slug and a hash of the name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(centre)).strip("._") or "centre"
    if slug != str(centre):
        slug = f"{slug}-{hash_bytes(str(centre))[:8]}"
    return Path(output) / "iecv" / slug


def centre_config(cfg, centre: str, manifest):
    """The study's settings for the fold that holds out ``centre``: its cohort the other centres' lesions
    (``manifest``), its own output folder, the study's random split; no repeated splits, no pickles."""
    folder = centre_folder(cfg.study.output, centre)
    return dataclasses.replace(
        cfg,
        study=dataclasses.replace(cfg.study, output=str(folder / "study")),
        cohort=dataclasses.replace(cfg.cohort, manifest=str(manifest)),
        split=dataclasses.replace(cfg.split, method="random"),
        board=dataclasses.replace(cfg.board, pickle_models=False),
        validation=dataclasses.replace(cfg.validation, repeats=0),
    )


def _fold_manifests(cfg, cohort: pd.DataFrame, centre: str) -> tuple[Path, Path]:
    """Write the fold's two manifests (the other centres; the held-out centre) into its folder."""
    from ..data.manifest import write_manifest

    folder = centre_folder(cfg.study.output, centre)
    folder.mkdir(parents=True, exist_ok=True)
    held = cohort[cfg.cohort.centre] == centre
    paths = []
    for name, part in (("training_centres.csv", cohort[~held]), ("heldout_centre.csv", cohort[held])):
        path = folder / name
        write_manifest(part.reset_index(drop=True), path)
        paths.append(path)
    return paths[0], paths[1]


def _share_feature_cache(cfg, folder: Path):
    """The fold's radiomics extraction cache is the study's: features are a label-free function of the image,
    mask and settings, keyed by their content (:mod:`srnomogram.radiomics.extraction`), so each lesion is
    extracted once for the study and all its folds."""
    import os

    for images in ("or", "sr"):
        shared = Path(cfg.study.output) / "cache" / f"radiomics_{images}"
        shared.mkdir(parents=True, exist_ok=True)
        link = folder / "cache" / f"radiomics_{images}"
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            # relative: the output folder can move, or be mounted elsewhere on a cluster's workers
            os.symlink(os.path.relpath(shared, link.parent), link, target_is_directory=True)


def run_centre(cfg, cohort: pd.DataFrame, centre: str, force=()):
    """Fit the study on every centre but ``centre`` and apply it, frozen, to ``centre``; return the results of
    the applied stages (``results["statistics"]``: the held-out statistics, as ``srnomogram validate`` writes them).

    The sub-study and the application are cached and resumable (:class:`~srnomogram.study.cache.Runner`).
    """
    from . import applying
    from .stages import build_stages

    train_csv, heldout_csv = _fold_manifests(cfg, cohort, centre)
    sub = centre_config(cfg, centre, train_csv)
    folder = centre_folder(cfg.study.output, centre)
    study_dir = folder / "study"
    study_dir.mkdir(parents=True, exist_ok=True)
    sub.write(study_dir / "resolved_config.yaml")
    stages = []
    for s in build_stages(sub):
        stages.append(s)
        if s.name == SUB_STUDY_END:
            break
    names_ = {s.name for s in stages}
    _share_feature_cache(cfg, study_dir)
    logger.info("IECV: centre %s held out; fitting the study on the other centres.", centre)
    Runner(sub, stages, force=[f for f in force if f in names_ | {"all"}], root=study_dir / "stages").run()
    # the held-out centre through the apply path of `srnomogram validate` (its stages, then the statistics)
    opts = {"recalibrate": False, "unit": "lesion", "bootstraps": int(cfg.nomogram.calibration_b),
            "dca_bootstraps": int(cfg.nomogram.dca_bootstraps), "jobs": cfg.radiomics.jobs, "device": cfg.deep.device,
            "scheduler": cfg.study.scheduler}
    out = folder / "validation"
    _share_feature_cache(cfg, out)
    run = applying._prepare(study_dir, heldout_csv, out, True, opts)
    applied = {"all"} | {s.name for s in applying._apply_stages(run, with_stats=True)}
    run.options["force"] = tuple(f for f in force if f in applied)
    logger.info("IECV: applying the frozen fit to centre %s.", centre)
    _, _, results = applying._run_stages(run, with_stats=True)
    return results


# ------------------------------------------------------------------------------------ per-centre statistics
def _se_from_ci(lower, upper, z):
    return (np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)) / (2 * z)


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def net_benefit_se(y, risk, threshold: float) -> tuple[float, float]:
    """Net benefit at ``threshold`` and its standard error.

    ``NB = TP/n − FP/n · t/(1 − t)`` (Vickers & Elkin 2006); the counts being multinomial, its variance is
    ``[a(1 − a) + w² b(1 − b) + 2 w a b] / n`` with ``a = TP/n``, ``b = FP/n``, ``w = t/(1 − t)``
    (the delta method is exact here: NB is linear in the proportions).
    """
    y = np.asarray(y, dtype=float)
    pos = np.asarray(risk, dtype=float) >= threshold
    n = len(y)
    a, b, w = float(np.sum(pos & (y == 1))) / n, float(np.sum(pos & (y == 0))) / n, threshold / (1 - threshold)
    return a - w * b, float(np.sqrt((a * (1 - a) + w * w * b * (1 - b) + 2 * w * a * b) / n))


def centre_rows(centre: str, statistics, alpha: float = 0.05, threshold=None) -> pd.DataFrame:
    """One held-out centre's rows of ``iecv_centres`` (one per model) from its ``statistics`` stage result.

    Estimates and CIs are those of the external statistics (``external_auc``, ``external_calibration``:
    DeLong and Wald CIs, or percentile bootstraps over patients when a patient has several lesions).
    Standard errors for the meta-analysis (Debray et al. 2017): the AUC's on the logit scale,
    ``se(AUC) / (AUC (1 − AUC))`` with DeLong's ``se(AUC)``; calibration-in-the-large and slope from their
    Wald CIs (``(upper − lower) / 2z``, exact); the Brier score's ``sd((p − y)²) / √n`` (a mean). With a
    patient bootstrap every SE is ``(upper − lower) / 2z`` of its percentile CI (the AUC's on the logit
    scale). ``delta_auc`` (nomogram row only): nomogram − clinical model, paired DeLong. ``net_benefit``:
    at ``threshold`` (``nomogram.threshold`` when it is a pre-specified risk; else not computed).
    """
    from ..metrics import paired_auc_difference

    z = float(norm.ppf(1 - alpha / 2))
    info = statistics.json("statistics_info")
    boot = bool(info.get("patient_bootstrap"))
    auc = statistics.table("external_auc").set_index("model")
    cal = statistics.table("external_calibration").set_index("model")
    used = statistics.table("external_scores_used")
    y = used["label"].to_numpy(dtype=float)
    rows = []
    for m in auc.index:
        a, c = auc.loc[m], cal.loc[m]
        r = {"centre": str(centre), "model": m, "n": int(a["n"]), "events": int(a["n_events"]), "auc": a["auc"],
             "auc_lower": a["lower"], "auc_upper": a["upper"]}
        for k in ("citl", "slope", "brier"):
            r.update({k: c[k], f"{k}_lower": c[f"{k}_lower"], f"{k}_upper": c[f"{k}_upper"]})
        r["citl_se"], r["slope_se"] = float(_se_from_ci(c["citl_lower"], c["citl_upper"], z)), float(_se_from_ci(c["slope_lower"], c["slope_upper"], z))
        s = used[m].to_numpy(dtype=float)
        ok = np.isfinite(s)
        if boot:
            r["auc_se"] = float(_se_from_ci(_logit(a["lower"]), _logit(a["upper"]), z))
            r["brier_se"] = float(_se_from_ci(c["brier_lower"], c["brier_upper"], z))
            r["se_method"] = "from the percentile bootstrap CIs over patients: (upper − lower) / 2z (AUC: logit scale)"
        else:
            est = float(a["auc"])
            r["auc_se"] = _delong_se(y[ok], s[ok]) / (est * (1 - est)) if 0 < est < 1 else np.nan
            r["brier_se"] = float(np.std((s[ok] - y[ok]) ** 2, ddof=1) / np.sqrt(ok.sum()))
            r["se_method"] = "AUC: DeLong SE on the logit scale (delta method); CITL, slope: Wald; Brier: SD/√n"
        r["ci_method"] = a["ci_method"]
        if threshold is not None:
            r["net_benefit"], r["net_benefit_se"] = net_benefit_se(y[ok], s[ok], float(threshold))
            r["threshold"] = float(threshold)
        rows.append(r)
    out = pd.DataFrame(rows).reindex(columns=CENTRE_COLUMNS)
    if {"nomogram", "clinical"} <= set(used.columns):
        ok = used[["nomogram", "clinical"]].notna().all(axis=1).to_numpy()
        d = paired_auc_difference(y[ok], used["nomogram"].to_numpy(dtype=float)[ok], used["clinical"].to_numpy(dtype=float)[ok], alpha=alpha)
        out.loc[out["model"] == "nomogram", ["delta_auc", "delta_auc_se"]] = [d["estimate"], d["se"]]
    return out


def _delong_se(y, s) -> float:
    """DeLong's SE of the AUC, as :func:`srnomogram.metrics.roc_auc_ci` computes it (its CI, clipped at 0 and 1, may not give it back)."""
    from ..metrics import _placements

    v10, v01 = _placements(y, s)
    return float(np.sqrt(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)))


def iecv_long(centres: pd.DataFrame) -> pd.DataFrame:
    """The long frame the meta-analysis takes: ``model, estimand, centre, estimate, se`` (one row per
    model, estimand of :data:`POOLED_ESTIMANDS` and centre with a finite estimate and SE > 0; for ``auc``
    the estimate on the AUC scale and its SE on the logit scale)."""
    parts = []
    for estimand, (est, se) in POOLED_ESTIMANDS.items():
        if est not in centres.columns:
            continue
        part = centres[["model", "centre", est, se]].rename(columns={est: "estimate", se: "se"}).assign(estimand=estimand)
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)[["model", "estimand", "centre", "estimate", "se"]]
    long["estimate"], long["se"] = long["estimate"].astype(float), long["se"].astype(float)
    keep = np.isfinite(long["estimate"]) & np.isfinite(long["se"]) & (long["se"] > 0)
    # an estimate without a standard error (an AUC of 1: no logit; net benefit without a threshold) cannot be pooled
    for r in long[~keep & np.isfinite(long["estimate"])].itertuples():
        logger.warning("IECV: centre %s, %s, %s = %.4g has no standard error; it is left out of the pooling.",
                       r.centre, r.model, r.estimand, r.estimate)
    return long[keep].reset_index(drop=True)


# ------------------------------------------------------------------------------------ the stage
def run_iecv(ctx):
    """The ``iecv`` stage: every centre held out in turn (:func:`run_centre`); writes ``iecv_centres``,
    ``iecv_pooled`` (random-effects pooling, :func:`srnomogram.stats.iecv_pool`) and ``iecv_info``."""
    from .. import stats
    from ..data.manifest import load_manifest
    from ..data.split import check_centres

    cfg = ctx.config
    cohort = load_manifest(cfg.cohort.manifest)
    cohort[cfg.cohort.centre] = check_centres(cohort, cfg.cohort.centre, source=cfg.cohort.manifest, by_centre=True).to_numpy()
    centres = sorted(cohort[cfg.cohort.centre].unique())
    if len(centres) < 2:
        raise InputError(f"{cfg.cohort.manifest}: split.method 'centre' needs lesions of at least 2 centres in column "
                         f"{cfg.cohort.centre!r}. Got {len(centres)} ({centres[0]!r}) instead; use split.method: random.")
    for c in centres:
        labels = set(cohort.loc[cohort[cfg.cohort.centre] == c, "label"].astype(int))
        if len(labels) < 2:
            raise InputError(f"{cfg.cohort.manifest}: centre {c!r} (column {cfg.cohort.centre!r}) has only "
                             f"{'malignant' if labels == {1} else 'benign'} lesions; a held-out centre needs both classes "
                             "for its AUC and calibration. Merge it with another centre.")
    threshold = cfg.nomogram.threshold if not isinstance(cfg.nomogram.threshold, str) else None
    force = ctx.extra.get("force", ())
    rows, info = [], []
    for c in centres:
        results = run_centre(cfg, cohort, c, force=force)
        rows.append(centre_rows(c, results["statistics"], alpha=cfg.nomogram.alpha, threshold=threshold))
        app = json.loads((centre_folder(cfg.study.output, c) / "study" / "stages" / "application" / "application.json").read_text(encoding="utf-8"))
        info.append({"centre": c, "folder": str(centre_folder(cfg.study.output, c).relative_to(cfg.study.output)),
                     "n_heldout": int((cohort[cfg.cohort.centre] == c).sum()),
                     "n_training_centres": int((cohort[cfg.cohort.centre] != c).sum()),
                     "chosen_model": app["best_model"]["model"]})
    table = pd.concat(rows, ignore_index=True)
    ctx.write_table("iecv_centres", table)
    pooled = stats.iecv_pool(iecv_long(table), conf_level=1 - cfg.nomogram.alpha)
    ctx.write_table("iecv_pooled", pooled)
    write_csv_atomic(pooled, iecv_pooled_path(cfg.study.output))
    ctx.write_json("iecv_info", {"column": cfg.cohort.centre, "centres": info, "k": len(centres),
                                 "sub_study_split": "the study's random split of the training centres",
                                 "net_benefit_threshold": threshold})


def _iecv_key(cfg, results) -> dict:
    # a fold reads every setting of the study (its own stages are keyed inside it); this stage gathers them
    return {"config": cfg.config_hash}


IECV_TITLES = {
    "iecv_pooled": "Internal-external cross-validation: random-effects pooled held-out estimates across centres "
                   "({level}% CI and prediction interval, tau², I²)",
    "iecv_centres": "Internal-external cross-validation: held-out statistics of every model in each centre "
                    "(fitted on the other centres)",
}


#: The forest plots of the pooled held-out measures, ``{figure: report title}``, declared once here beside the stage
#: that pins their data: drawn in R from the pins :data:`IECV_FIGURE_PINS` by the package's ``study_figures()``
#: (``iecv_forest()``: each centre's estimate and Wald interval, the pooled diamond and prediction interval as pinned
#: in ``iecv_pooled``, one panel per model) and shown in the report's internal-external cross-validation section.
IECV_FIGURES = {
    "figure_iecv_auc": "Internal-external cross-validation: held-out AUC of each centre and pooled ({level}% CI and "
                       "prediction interval)",
    "figure_iecv_citl": "Internal-external cross-validation: held-out calibration-in-the-large of each centre and "
                        "pooled ({level}% CI and prediction interval)",
    "figure_iecv_slope": "Internal-external cross-validation: held-out calibration slope of each centre and pooled "
                         "({level}% CI and prediction interval)",
}
IECV_FIGURE_PINS = ("iecv_centres", "iecv_pooled")


def iecv_stage(cfg) -> Stage:
    """The ``iecv`` stage (``split.method: centre``), run before ``main_result``, which reports its pooled rows."""
    from .stages import _manifest_inputs

    return Stage("iecv", run_iecv, inputs=_manifest_inputs, extra_key=_iecv_key, version="1",
                 pins=(Pin("iecv_pooled", section="tables", order=200, title=IECV_TITLES["iecv_pooled"]),
                       Pin("iecv_centres", section="tables", order=210, show=False, title=IECV_TITLES["iecv_centres"]),
                       record("iecv_info", "Internal-external cross-validation: the centres, their folders and chosen models (JSON)")))


def iecv_methods_text(cfg, k=None) -> str:
    """The methods' sentences on the internal-external cross-validation (``split.method: centre``)."""
    level = f"{100 * (1 - cfg.nomogram.alpha):.10g}%"
    nb = (f", the net benefit at the pre-specified threshold {cfg.nomogram.threshold:g}"
          if not isinstance(cfg.nomogram.threshold, str) else "")
    return (f"Transportability across centres was assessed by internal-external cross-validation over {k or 'the'} centres "
            f"(manifest column {cfg.cohort.centre!r}; no patient had lesions in two centres): each centre was held out in "
            "turn, the whole study was developed again on the other centres exactly as the final model was (the same "
            "random train/test split rule, every model fit, the choice of the deep-learning model by cross-validated "
            "training AUC, the cut-offs and the nomogram), and the frozen fit was applied to the held-out centre as in "
            "external validation, so that no held-out label reached a fit. The held-out AUC (pooled on the logit scale), "
            f"calibration-in-the-large, calibration slope, Brier score{nb} and the nomogram's AUC gain over the clinical "
            f"model were pooled across centres by random-effects meta-analysis, with {level} confidence intervals and "
            "prediction intervals for a new centre (table iecv_pooled; per centre: iecv_centres). The final model is the "
            "study fitted on all centres with its random train/test split." + _harmonise_text(cfg))


def _harmonise_text(cfg) -> str:
    """The sentence on ``radiomics.harmonise`` in the IECV (empty without it)."""
    if not cfg.radiomics.enabled or cfg.radiomics.harmonise == "none":
        return ""
    from .stages.radiomics import HARMONISE_WORDS

    return (f" The radiomics features were harmonised by centre ({HARMONISE_WORDS[cfg.radiomics.harmonise]}), fitted "
            "on the training lesions of the training centres only; each held-out centre's parameters were estimated "
            "from its own unlabelled lesions (their features and centre, never their labels), so its held-out results "
            "are conditional on that reference sample, the held-out centre itself.")

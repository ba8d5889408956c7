"""Repeated splits: the split-dependent stages rerun for split seeds 0 … N−1.

One 8:2 split of a few hundred lesions gives a test AUC whose DeLong interval is about ±0.1 wide,
and which model "wins" can change with the split. ``srnomogram run STUDY.yaml --repeats N`` (or
``validation.repeats: N``) reruns, for each split seed k = 0 … N−1, the stratified hash split
(``split.seed = k``; a manifest's own ``split`` column is ignored), super-resolution (trained on that
seed's training images), the LR/SVM models, the CNNs (cross-fitted as in the main study), Table 2
and the model choice, then fits the clinical model and the nomogram on that seed's training set and
scores its test set.

What is shared across seeds: only the radiomics features, which are a label-free per-lesion
function of the image and mask (computed once, reused through the extraction's content-hash
cache; SR features are recomputed, since the SR images change with the SR model). Model seeds
(initialisation, fold assignment) stay ``study.seed``.

Each seed is its own cached study under ``<output>/repeats/seed_<k>/`` (stages and a ``result.csv``),
so a stopped run resumes at the seed (and, inside it, the stage and CNN fold) it was in.

With a Dask scheduler (``study.scheduler``, ``--scheduler`` or ``$DASK_SCHEDULER_ADDRESS``) the seeds
are independent tasks on the cluster's workers (:func:`srnomogram.parallel.imap_unordered`), each the
same :func:`run_seed` into the same folder, so the cache, the resume and the numbers are those of a
local run; inside a seed everything runs on its worker (a CNN on that worker's one device). The
output folder must be on a filesystem the workers share, at the same path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_path, hash_bytes, write_csv_atomic
from .cache import Pin, Runner, Stage
from .main_result import seed_result_path
from .. import names
from .stages import build_stages, fit_clinical_models, load_cohort

logger = logging.getLogger(__name__)

__all__ = ["run_repeats", "run_seed", "seed_config", "summarise", "repeats_stage", "RESULT_COLUMNS"]

SPLIT_STAGES_END = "table2"  # the per-seed study stops here; the nomogram is fitted by seed_result
RESULT_COLUMNS = [
    "seed", "model", "label", "train_auc", "cv_auc", "test_auc", "chosen", "chosen_model",
    "clinical_test_auc", "nomogram_test_auc", "clinical_corrected_auc", "nomogram_corrected_auc",
    "n_test", "nomogram_test_slope", "nomogram_test_citl",
]


def seed_config(cfg, seed: int):
    """The study's settings with split seed ``seed`` (hash split, the manifest's split ignored)."""
    return dataclasses.replace(
        cfg,
        split=dataclasses.replace(cfg.split, seed=int(seed), use_manifest_split=False),
        board=dataclasses.replace(cfg.board, pickle_models=False),
        validation=dataclasses.replace(cfg.validation, repeats=0),
    )


def _corrected_auc(v) -> float:
    """The optimism-corrected AUC of a ``validate_nomogram`` table (row ``AUC``, column ``index.corrected``)."""
    df = pd.DataFrame(v)
    if "index" in df.columns:
        df = df.set_index("index")
    return float(df.loc["AUC", "index.corrected"])


def seed_result(cfg, results, seed: int) -> pd.DataFrame:
    """One seed's rows of ``repeated_splits.csv``: every model's AUCs, the chosen model, clinical and nomogram test AUCs.

    The optimism-corrected AUCs (``rms::validate``, B = ``nomogram.calibration_b``) come from
    :func:`srnomogram.stats.validate_nomogram`; the nomogram's test calibration slope and
    calibration-in-the-large (``n_test`` lesions) from :func:`srnomogram.stats.external_validation` of its
    frozen test risks (no bootstrap: it costs two ``glm`` fits and ``val.prob``).
    """
    from .. import metrics, stats
    from ..data.manifest import patient_ids

    t2 = results[SPLIT_STAGES_END]
    aucs = t2.table("model_aucs")
    best = t2.json("best_model")["model"]
    cohort = load_cohort(results["split"], cfg.cohort.schema)
    factors = cfg.cohort.schema.names
    data = cohort[["case_id", "split", "label", *factors]].merge(t2.table("scores")[["case_id", "deep_score"]], on="case_id", how="left")
    train = data[data["split"] == "train"].reset_index(drop=True)
    test = data[data["split"] == "test"].reset_index(drop=True)
    pid = patient_ids(cohort).set_axis(cohort["case_id"].to_numpy())  # the bootstrap resamples patients
    out = {}
    for name, fit in fit_clinical_models(cfg, train).items():  # the nomogram stage's fits
        risk = np.asarray(stats.predict(fit, newdata=test), dtype=float)
        out[f"{name}_test_auc"] = metrics.roc_auc(test["label"].to_numpy(), risk)
        if name == "nomogram":
            out.update(n_test=int(len(test)), **_test_calibration(cfg, test["label"].to_numpy(), risk, seed))
        out[f"{name}_corrected_auc"] = _corrected_auc(stats.validate_nomogram(fit, B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed,
                                                                              cluster=pid.reindex(train["case_id"]).to_numpy()))
    rows = aucs.assign(seed=int(seed), label=aucs["model"].map(names.label), chosen=aucs["model"] == best, chosen_model=best, **out)
    return rows[RESULT_COLUMNS]


def _test_calibration(cfg, y, risk, seed) -> dict:
    """The nomogram's test calibration slope and calibration-in-the-large (:func:`srnomogram.stats.external_validation`);
    NaN, with a warning, when R cannot compute them on this seed's test set (a descriptive statistic
    does not stop a run of many seeds)."""
    from .. import stats
    from ..errors import RBridgeError

    try:
        ev = stats.external_validation(y, risk, g=cfg.nomogram.hl_groups, conf_level=1 - cfg.nomogram.alpha).summary().iloc[0]
    except RBridgeError as exc:
        logger.warning("Repeated splits: seed %d: no test calibration of the nomogram (%s).", seed, exc)
        return {"nomogram_test_slope": np.nan, "nomogram_test_citl": np.nan}
    return {"nomogram_test_slope": float(ev["slope"]), "nomogram_test_citl": float(ev["citl"])}


def _result_key(cfg, results) -> str:
    return hash_bytes(json.dumps({
        "table2": results[SPLIT_STAGES_END].key,
        "split": results["split"].key,
        "nomogram": cfg.section_hash("cohort", "nomogram"),
        "validate": True,  # kept so that results cached before stay valid
        "version": "2",  # 2: n_test and the nomogram's test calibration slope and calibration-in-the-large
    }, sort_keys=True))


def run_seed(cfg, k: int, n: int, force=()) -> pd.DataFrame:
    """Run (or reuse) split seed ``k`` of ``n``; return its rows of ``repeated_splits.csv``.

    Seeds are independent folders, so several processes (or machines sharing the output folder)
    can run different seeds; :func:`run_repeats` then reuses the finished ones.
    """
    logger.info("Repeated splits: seed %d of %d (split seed %d).", k + 1, n, k)
    cfg_k = seed_config(cfg, k)
    stages = []
    for s in build_stages(cfg_k):
        stages.append(s)
        if s.name == SPLIT_STAGES_END:
            break
    folder = Path(cfg.study.output) / "repeats" / f"seed_{k}"
    runner = Runner(cfg_k, stages, force=[f for f in force if f in {s.name for s in stages} | {"all"}], root=folder / "stages")
    results = runner.run()
    key = _result_key(cfg_k, results)
    res_csv = seed_result_path(cfg.study.output, k)
    res_json = res_csv.with_name("result.json")
    if res_csv.is_file() and res_json.is_file():
        try:
            if json.loads(res_json.read_text(encoding="utf-8")).get("key") == key:
                logger.info("Repeated splits: seed %d of %d reused.", k + 1, n)
                return pd.read_csv(res_csv)
        except (ValueError, OSError):
            pass
    done = seed_result(cfg_k, results, k)
    write_csv_atomic(done, res_csv)
    with atomic_path(res_json) as tmp:
        tmp.write_text(json.dumps({"key": key, "log": runner.log}, indent=1), encoding="utf-8")
    return done


def _seed_task(cfg, k: int, n: int, force) -> tuple:
    return k, run_seed(cfg, k, n, force)


#: What a worker must share with this process for a seed to give the local numbers.
SEED_PACKAGES = ("scikit-learn", "pandas", "torch", "rpy2")


def run_repeats(cfg, n: int, force=()) -> pd.DataFrame:
    """Run (or resume) the study for split seeds 0 … n−1; return the rows of ``repeated_splits.csv``.

    Locally the seeds run one after the other; with a Dask scheduler (``cfg.study.scheduler``, else
    ``$DASK_SCHEDULER_ADDRESS``) each seed is one task on the cluster, logged as it finishes.
    """
    from ..parallel import CHECKED_PACKAGES, LOCAL, imap_unordered, resolve_scheduler

    n = int(n)
    address = resolve_scheduler(cfg.study.scheduler)
    if address is None:
        return pd.concat([run_seed(cfg, k, n, force) for k in range(n)], ignore_index=True)
    # a seed's own extraction stays on its worker: a task waiting on the cluster it occupies may wait forever
    on_worker = dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, scheduler=LOCAL))
    logger.info("Repeated splits: %d seeds sent to the Dask cluster at %s.", n, address)
    done = {}
    tasks = [(on_worker, k, n, tuple(force)) for k in range(n)]
    for k, rows in imap_unordered(_seed_task, tasks, scheduler=address, packages=(*CHECKED_PACKAGES, *SEED_PACKAGES)):
        done[k] = rows
        logger.info("Repeated splits: seed %d of %d finished (%d of %d done).", k + 1, n, len(done), n)
    return pd.concat([done[k] for k in range(n)], ignore_index=True)


def _describe(values) -> dict:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n_seeds": 0, "mean": np.nan, "sd": np.nan, "p2_5": np.nan, "p50": np.nan, "p97_5": np.nan}
    p = np.percentile(v, [2.5, 50, 97.5])
    return {"n_seeds": int(v.size), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else np.nan,
            "p2_5": float(p[0]), "p50": float(p[1]), "p97_5": float(p[2])}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """``repeated_splits_summary.csv``: per model (and the clinical model and nomogram), the test AUC's
    mean, SD and 2.5/50/97.5 percentiles over seeds, the mean cross-validated training AUC, and how
    often the model was chosen (``times_chosen`` of ``n_seeds``)."""
    n_seeds = rows["seed"].nunique()
    out = []
    for model, g in rows.groupby("model", sort=False):
        out.append({"model": model, "label": names.label(model), **{f"test_auc_{k}" if k != "n_seeds" else k: v for k, v in _describe(g["test_auc"]).items()},
                    "cv_auc_mean": float(g["cv_auc"].mean()), "times_chosen": int(g["chosen"].astype(bool).sum()),
                    "share_chosen": float(g["chosen"].astype(bool).sum() / n_seeds), "corrected_auc_mean": np.nan})
    per_seed = rows.drop_duplicates("seed")
    for name in ("clinical", "nomogram"):
        d = _describe(per_seed[f"{name}_test_auc"])
        out.append({"model": name, "label": names.label(name), **{f"test_auc_{k}" if k != "n_seeds" else k: v for k, v in d.items()},
                    "cv_auc_mean": np.nan, "times_chosen": np.nan, "share_chosen": np.nan,
                    "corrected_auc_mean": float(per_seed[f"{name}_corrected_auc"].mean()) if per_seed[f"{name}_corrected_auc"].notna().any() else np.nan})
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------ the stage
def run_repeated_splits(ctx):
    """The ``repeats`` stage: split seeds 0 … N−1 (``validation.repeats``), each its own cached study
    (:func:`run_repeats`); writes ``repeated_splits`` (model × seed) and ``repeated_splits_summary``."""
    cfg = ctx.config
    rows = run_repeats(cfg, cfg.validation.repeats, force=ctx.extra.get("force", ()))
    ctx.write_table("repeated_splits", rows)
    ctx.write_table("repeated_splits_summary", summarise(rows))


def _repeats_key(cfg, results) -> dict:
    # a seed reads every setting of the study (its own stages are keyed inside it); this stage gathers them
    return {"config": cfg.config_hash}


def repeats_stage(cfg) -> Stage:
    """The ``repeats`` stage (``validation.repeats`` > 0), run before ``main_result``, which summarises it."""
    from .stages import _manifest_inputs

    return Stage("repeats", run_repeated_splits, inputs=_manifest_inputs, extra_key=_repeats_key, version="1",
                 pins=(Pin("repeated_splits_summary", section="repeats", order=10,
                           title="Test AUC over split seeds: mean, SD and percentiles of every model, the clinical model "
                                 "and the nomogram"),
                       Pin("repeated_splits", section="repeats", order=20, show=False,
                           title="Test AUCs over split seeds (one row per model and seed)")))

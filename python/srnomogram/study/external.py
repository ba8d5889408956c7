"""Apply a finished study, frozen, to another cohort: external validation and prospective scoring.

At study time (:mod:`srnomogram.study.freeze`: the nomogram stage's design file and the ``application``
stage) every fitted piece is kept:
radiomics pipelines as skops files, CNN and SR checkpoints with their SHA-256, the clinical model
and the nomogram as coefficients and design (``nomogram_design.json``, so Python and the calculator
need no R) and as rms fits (``*.rds``, for R users), and ``application.json`` with what is needed to
apply the study the same way (the chosen model, the training Youden cut-offs exactly as Table 2
computed them, SR, ROI and PyRadiomics settings) beside ``training_summary.json`` (ranges of the
clinical factors, image spacing and size, score distributions) for out-of-range warnings.

:func:`validate` (``srnomogram validate STUDY_DIR MANIFEST -o OUT``) reads a labelled manifest,
applies the study's own SR model, extracts the same features, scores every model, and computes
through the R package (:func:`srnomogram.stats.external_validation`) the external statistics of each one:
``external_validation`` (AUC with DeLong CI, calibration-in-the-large and slope with CIs,
``rms::val.prob``, Brier, Hosmer–Lemeshow, the frozen-cut-off sensitivity, specificity, PPV, NPV)
and ``decision_curve`` (with bootstrap CIs). :func:`predict` (``srnomogram predict``) scores an
unlabelled manifest. Both run as cached, resumable stages (:class:`~srnomogram.study.cache.Runner`)
under their output folder.

With a Dask scheduler (``scheduler=``, ``--scheduler`` or ``$DASK_SCHEDULER_ADDRESS``) the per-lesion
work runs on the cluster's workers (:mod:`srnomogram.parallel`): feature extraction one lesion per
task, CNN scoring one inference batch per task (the local batches, so each lesion is scored in the
same batch as locally), and SR apply one lesion per task. The scheduler is in no cache key: a cluster run reuses a local run's stages and back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CheckpointError, InputError, ManifestError, param_error
from .. import names
from ..data.manifest import patient_ids
from ..utils import atomic_path, check_output_dir, check_output_file, file_sha256, hash_bytes, output_lock, write_csv_atomic
from .cache import DONE, Runner, Stage
from .freeze import (  # noqa: F401 - the study-time half, re-exported where it used to live
    APP_FORMAT,
    EXTRA_LABELS,
    application_stage,
    run_application,
    nomogram_predict,
    save_nomogram_fits,
)
from .freeze import describe as _describe, image_geometry as _image_geometry

logger = logging.getLogger(__name__)

__all__ = ["validate", "predict", "load_study", "FinishedStudy", "nomogram_predict"]

SPACING_TOLERANCE = 0.25  # relative: warn when external spacing leaves the training range by more
SIZE_TOLERANCE = 0.5  # relative, for image width/height
STAT_OPTIONS = ("recalibrate", "unit", "bootstraps", "dca_bootstraps")  # what the statistics stage's cache key holds
DCA_CURVE = "label ~ risk"  # the model's curve in the decision-curve tables (the others: "All", "None")


# ================================================================================ a finished study
@dataclass
class FinishedStudy:
    """A study folder, checked: its settings, frozen application, training summary and design."""

    path: Path
    app: dict
    summary: dict
    design: dict
    key: str

    def file(self, rel) -> Path:
        return self.path / rel

    @property
    def model_keys(self) -> list[str]:
        return list(self.app["models"])


RERUN = "recreate it with 'srnomogram run {dir}/resolved_config.yaml -o {dir}' (finished stages are reused)"


def _missing(study_dir, what):
    return InputError(f"Study folder {study_dir} lacks {what}; " + RERUN.format(dir=study_dir) + ".")


def _check_stage(study_dir: Path, name: str) -> dict:
    """A stage folder's ``done.json`` and the SHA-256 of every file it lists."""
    done = study_dir / "stages" / name / DONE
    if not done.is_file():
        raise _missing(study_dir, f"the finished stage stages/{name}")
    try:
        files = json.loads(done.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        raise _missing(study_dir, f"a readable stages/{name}/{DONE}") from None
    for rel, sha in files.items():
        p = study_dir / "stages" / name / rel
        if not p.is_file():
            raise _missing(study_dir, f"stages/{name}/{rel}")
        if file_sha256(p) != sha:
            raise CheckpointError(
                f"{p} does not match the SHA-256 its stage recorded (corrupted or edited); "
                + RERUN.format(dir=study_dir) + " after removing stages/" + name + "."
            )
    return files


def load_study(study_dir) -> FinishedStudy:
    """Check a finished study folder and read its frozen application; one-line error naming a missing piece."""
    study_dir = Path(study_dir).resolve()
    if not study_dir.is_dir():
        raise InputError(f"Study folder {study_dir} not found; pass the output folder of 'srnomogram run'.")
    if not (study_dir / "resolved_config.yaml").is_file():
        raise InputError(f"{study_dir} is not a study folder (no resolved_config.yaml); pass the output folder of 'srnomogram run'.")
    files = _check_stage(study_dir, "application")
    app = json.loads((study_dir / "stages" / "application" / "application.json").read_text(encoding="utf-8"))
    if app.get("format") != APP_FORMAT:
        raise _missing(study_dir, f"an application.json of format {APP_FORMAT}")
    stages = {"nomogram"} | {Path(m["file"]).parts[1] for m in app["models"].values()}
    if app["sr"]["enabled"]:
        stages.add("sr")
    for s in sorted(stages):
        _check_stage(study_dir, s)
    summary = json.loads((study_dir / "stages" / "application" / "training_summary.json").read_text(encoding="utf-8"))
    design = json.loads((study_dir / app["design"]).read_text(encoding="utf-8"))
    key = hash_bytes(json.dumps(files, sort_keys=True))
    return FinishedStudy(study_dir, app, summary, design, key)


# ================================================================================ the external run
@dataclass
class _Run:
    """What the external stages see as ``ctx.config``."""

    study: FinishedStudy
    manifest: Path
    out: Path
    need_label: bool
    options: dict = field(default_factory=dict)


def _read_manifest(path, need_label: bool, clinical=()) -> pd.DataFrame:
    """The external manifest, checked as the study's: paths, labels, spacing and the ``clinical`` factors it has.

    The clinical cells get the study's own check (:func:`~srnomogram.data.check.check_clinical`): a
    value that is not a number is refused with its row and column, as ``srnomogram run`` refuses it,
    rather than silently becoming missing. A factor the manifest lacks, or leaves empty, is no error:
    the clinical model and the nomogram are then skipped (:func:`_ext_scores`).
    """
    from ..data.check import check_clinical
    from ..data.manifest import validate_manifest

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"Manifest {path} not found.")
    try:
        raw = pd.read_csv(path, dtype={"case_id": str})
    except Exception as exc:  # noqa: BLE001
        raise ManifestError(f"{path} is not a readable CSV file ({type(exc).__name__}).") from None
    if "image" not in raw.columns:
        raise ManifestError(f"{path}: no 'image' column; a manifest needs case_id, image, mask (and label to validate). "
                            f"Its columns are: {', '.join(map(str, raw.columns))}.")
    has_label = "label" in raw.columns and raw["label"].notna().all()
    if need_label and not has_label:
        raise ManifestError(f"{path}: no 'label' column (or empty labels), so there is nothing to validate against; "
                            "score unlabelled lesions with 'srnomogram predict STUDY_DIR MANIFEST -o scores.csv'.")
    work = raw if has_label else raw.assign(label=0)
    for c in [c for c in work.columns if c in ("image_sr", "mask_sr")]:  # the study makes its own SR images
        work = work.drop(columns=c)
    df = validate_manifest(work, path.parent, source=str(path))
    present = [c for c in clinical if c in df.columns]
    if present:
        check_clinical(df, present, source=str(path), setting="the study's cohort.clinical", require_rows=False)
        df[present] = df[present].apply(pd.to_numeric)  # checked above: only numbers and empty cells
    if not has_label:
        df = df.drop(columns="label")
    df.attrs["manifest_path"] = str(path.resolve())
    return df


def _manifest_key(run: _Run, results):
    from ..data.manifest import manifest_hashes

    return manifest_hashes(run.manifest, _read_manifest(run.manifest, run.need_label))


def _ext_cohort(ctx):
    run = ctx.config
    factors = run.study.app["clinical_factors"]
    df = _read_manifest(run.manifest, run.need_label, clinical=factors)
    from ..data.manifest import write_manifest

    missing = [c for c in factors if c not in df.columns]
    write_manifest(df, ctx.path("cohort.csv"))
    warns = _range_warnings(run.study.summary, df, factors)
    ctx.write_table("warnings", warns)
    ctx.write_json("cohort_info", {"n": int(len(df)), "missing_clinical": missing,
                                   "has_label": "label" in df.columns, "has_patient_id": "patient_id" in df.columns})


def _range_warnings(summary, df, factors) -> pd.DataFrame:
    from ..data.readers import is_2d_path

    rows = []

    def add(kind, column, n_out, train_range, ext_range, message):
        rows.append({"kind": kind, "column": column, "n_outside": int(n_out), "training_range": train_range,
                     "external_range": ext_range, "message": message})

    for c in factors:
        s = summary["clinical"].get(c, {})
        if c not in df.columns or not s.get("n"):
            continue
        v = df[c].to_numpy(dtype=float)
        out = (v < s["min"]) | (v > s["max"])
        if out.any():
            add("clinical", c, out.sum(), f"{s['min']:g} to {s['max']:g}", f"{np.nanmin(v):g} to {np.nanmax(v):g}",
                f"{int(out.sum())} lesion(s) have {c} outside the training range {s['min']:g} to {s['max']:g}; "
                "the nomogram extrapolates there.")
    # A 2D image's spacing is its manifest cell: empty means features per pixel. Mixed with a study
    # trained in mm (or the reverse) every shape and texture feature changes scale.
    is_2d = df["image"].map(is_2d_path).to_numpy(dtype=bool)
    sp = pd.to_numeric(df["spacing"], errors="coerce") if "spacing" in df.columns else pd.Series(np.nan, index=df.index)
    known = sp.notna().to_numpy()
    s = summary.get("spacing", {})
    if s.get("n") and (is_2d & ~known).any():
        n = int((is_2d & ~known).sum())
        add("image", "spacing", n, f"{s['min']:g} to {s['max']:g}", "empty",
            f"{n} image(s) have no pixel spacing (empty 'spacing' cell) but the study's training images had {s['min']:g} to "
            f"{s['max']:g} mm per pixel: their features are per pixel, not per mm, and the radiomics models' scores shift. "
            "Fill in the spacing.")
    elif not s.get("n") and (is_2d & known).any():
        n = int((is_2d & known).sum())
        add("image", "spacing", n, "none (per pixel)", f"{sp[known].min():g} to {sp[known].max():g}",
            f"{n} image(s) have a pixel spacing but the study's training images had no pixel spacing: their features are per mm, "
            "not per pixel as the study's, and the radiomics models' scores shift. Leave the 'spacing' cells empty, as the study did.")
    geo = _image_geometry(df)
    for col, tol, what in (("spacing", SPACING_TOLERANCE, "pixel spacing (mm)"), ("width", SIZE_TOLERANCE, "image width (px)"),
                           ("height", SIZE_TOLERANCE, "image height (px)")):
        s = summary.get(col, {})
        v = geo[col].to_numpy(dtype=float)
        if not s.get("n") or not np.isfinite(v).any():
            continue
        lo, hi = s["min"] / (1 + tol), s["max"] * (1 + tol)
        out = np.isfinite(v) & ((v < lo) | (v > hi))
        if out.any():
            add("image", col, out.sum(), f"{s['min']:g} to {s['max']:g}", f"{np.nanmin(v):g} to {np.nanmax(v):g}",
                f"{int(out.sum())} image(s) have a {what} more than {tol:.0%} outside the training range "
                f"{s['min']:g} to {s['max']:g}; features and CNN inputs may shift.")
    for r in rows:
        logger.warning("%s", r["message"])
    return pd.DataFrame(rows, columns=["kind", "column", "n_outside", "training_range", "external_range", "message"])


def _ext_sr(ctx):
    from ..sr import SuperResolver

    run = ctx.config
    model = SuperResolver.load(run.study.file(run.study.app["sr"]["model"]), device=run.options.get("device", "auto"))
    src = ctx.inputs["ext_cohort"].file("cohort.csv")
    labelled = "label" in pd.read_csv(src, nrows=0).columns
    if not labelled:  # apply_manifest reads a full manifest: give it a placeholder label, dropped below
        tmp = ctx.path("_unlabelled_input.csv")
        pd.read_csv(src, dtype={"case_id": str}).assign(label=0).to_csv(tmp, index=False)
        src = tmp
    # As the study made its SR images; a study recorded before ROI-only SR made them from whole images.
    region = run.study.app["sr"].get("region", "image")
    model.apply_manifest(src, out_dir=ctx.path("images"), manifest_out=ctx.path("cohort.csv"), scheduler=run.options.get("scheduler"),
                         region=region, roi_margin=run.study.app["sr"].get("roi_margin", 0.1))
    if not labelled:
        write_csv_atomic(pd.read_csv(ctx.path("cohort.csv"), dtype={"case_id": str}).drop(columns="label"), ctx.path("cohort.csv"))
        Path(src).unlink()


def _cohort_of(ctx) -> pd.DataFrame:
    """The external cohort table of the last image stage (with ``image_sr`` after SR), paths absolute."""
    from ..data.manifest import load_manifest, validate_manifest

    path = (ctx.inputs.get("ext_sr") or ctx.inputs["ext_cohort"]).file("cohort.csv")
    raw = pd.read_csv(path, dtype={"case_id": str})
    if "label" in raw.columns:
        return load_manifest(path)
    return validate_manifest(raw.assign(label=0), Path(path).parent, source=str(path)).drop(columns="label")


def _make_ext_radiomics(images):
    def run_fn(ctx):
        from ..radiomics import extract

        run = ctx.config
        cohort = _cohort_of(ctx)
        pf = run.study.app["radiomics"]["params_file"]
        col = "image" if images == "or" else "image_sr"
        feats = extract(cohort, image_col=col, jobs=run.options.get("jobs"), scheduler=run.options.get("scheduler"),
                        params=str(run.study.file(pf)) if pf else None, cache_dir=run.out / "cache" / f"radiomics_{images}")
        feats = feats.reindex(cohort["case_id"].astype(str))
        feats.index.name = "case_id"
        ctx.write_table("features", feats.reset_index())

    run_fn.__name__ = f"ext_radiomics_{images}"
    return run_fn


def _ext_scores(ctx):
    """Every model's malignancy score per lesion; clinical model and nomogram risk and points."""
    from ..radiomics.persist import load_model

    run = ctx.config
    study = run.study
    cohort = _cohort_of(ctx)
    keep = [c for c in ("case_id", "patient_id", "label") if c in cohort.columns]
    scores = cohort[keep].copy()
    for key, m in study.app["models"].items():
        if m["kind"] == "radiomics":
            pipe, meta = load_model(study.file(m["file"]))
            feats = ctx.inputs[f"ext_radiomics_{m['images']}"].table("features").set_index("case_id")
            X = feats.loc[cohort["case_id"].astype(str), meta["features"]]
            scores[key] = pipe.predict_proba(X)[:, 1]
        else:
            scores[key] = _deep_scores(study.file(m["file"]), cohort, run.options.get("device", "auto"), run.options.get("scheduler"))
    best = study.app["best_model"]["model"]
    scores["deep_score"] = scores[best].to_numpy()  # the chosen model's score: the nomogram's input
    msg, info = _clinical_skip(cohort, study.app["clinical_factors"], validating=run.need_label)
    info["best_model"] = best
    if msg:
        logger.warning("%s", msg)
        info["message"] = msg
    else:
        data = cohort[study.app["clinical_factors"]].assign(deep_score=scores[best].to_numpy())
        for name in ("clinical", "nomogram"):
            p = nomogram_predict(study.design[name], data)
            scores[name] = p["risk"].to_numpy()
            scores[f"{name}_points"] = p["points"].to_numpy()
    ctx.write_table("scores", scores)
    ctx.write_table("score_distribution", _score_distribution(study.summary, scores))
    ctx.write_json("scores_info", info)


def _clinical_skip(cohort: pd.DataFrame, factors, validating: bool) -> tuple[str | None, dict]:
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


def _deep_batch(model_dir, device, rows: pd.DataFrame, start: int) -> tuple:
    """The malignancy scores of ``rows`` (one inference batch) by the CNN saved in ``model_dir``."""
    from ..deep.model import DeepClassifier

    clf = DeepClassifier.load(model_dir, device=device)
    clf.progress = False
    return start, clf.predict_proba(rows)[:, 1]


def _deep_scores(model_dir, cohort: pd.DataFrame, device, scheduler) -> np.ndarray:
    """A CNN's scores of every lesion: here, or one inference batch per task on a Dask cluster.

    The cluster's tasks are the local run's batches (``eval_batch_size`` lesions from the first), so
    every lesion meets the network beside the same lesions as locally.
    """
    from tqdm.auto import tqdm

    from ..deep.model import DeepClassifier
    from ..parallel import CHECKED_PACKAGES, imap_unordered, resolve_scheduler

    clf = DeepClassifier.load(model_dir, device=device)
    address = resolve_scheduler(scheduler)
    if address is None or not len(cohort):
        return clf.predict_proba(cohort)[:, 1]
    step = int(clf.eval_batch_size)
    tasks = [(str(model_dir), device, cohort.iloc[s : s + step], s) for s in range(0, len(cohort), step)]
    out = np.full(len(cohort), np.nan)
    with tqdm(total=len(cohort), desc=f"CNN scores ({Path(model_dir).parent.name})", unit="lesion", disable=None) as bar:
        for start, p in imap_unordered(_deep_batch, tasks, scheduler=address, packages=(*CHECKED_PACKAGES, "torch", "torchvision")):
            out[start : start + len(p)] = p
            bar.update(len(p))
    return out


def _score_distribution(summary, scores) -> pd.DataFrame:
    """Training against external score quantiles per model; ``shifted`` when the external median
    leaves the training 5–95 % range (the model sees inputs unlike its training set)."""
    train = {**summary.get("scores", {}), **summary.get("risks", {})}
    rows = []
    for m, t in train.items():
        if m not in scores.columns or not t.get("n"):
            continue
        e = _describe(scores[m])
        if not e.get("n"):
            continue
        rows.append({"model": m, "train_q05": t["q05"], "train_median": t["median"], "train_q95": t["q95"],
                     "external_q05": e["q05"], "external_median": e["median"], "external_q95": e["q95"],
                     "shifted": not (t["q05"] <= e["median"] <= t["q95"])})
    out = pd.DataFrame(rows, columns=["model", "train_q05", "train_median", "train_q95", "external_q05",
                                      "external_median", "external_q95", "shifted"])
    for r in out[out["shifted"]].itertuples():
        logger.warning("%s", _shift_message(r))
    return out


def _shift_message(r) -> str:
    return (f"{_label(r.model)}: the external median score {r.external_median:.3g} lies outside the training 5-95% "
            f"range {r.train_q05:.3g} to {r.train_q95:.3g}.")


def _run_stages(run: _Run, with_stats: bool):
    app = run.study.app
    stages = [Stage("ext_cohort", _ext_cohort, inputs=lambda cfg, res: _manifest_key(cfg, res), version="2",
                    extra_key=lambda cfg, res: {"study": cfg.study.key, "need_label": cfg.need_label})]
    if app["sr"]["enabled"]:
        stages.append(Stage("ext_sr", _ext_sr, deps=("ext_cohort",), extra_key=lambda cfg, res: {"study": cfg.study.key}))
    base = ("ext_cohort", "ext_sr") if app["sr"]["enabled"] else ("ext_cohort",)
    images = sorted({m["images"] for m in app["models"].values() if m["kind"] == "radiomics"})
    for im in images:
        stages.append(Stage(f"ext_radiomics_{im}", _make_ext_radiomics(im), deps=base,
                            extra_key=lambda cfg, res: {"study": cfg.study.key}))
    stages.append(Stage("ext_scores", _ext_scores, deps=(*base, *[f"ext_radiomics_{im}" for im in images]), version="2",
                        extra_key=lambda cfg, res: {"study": cfg.study.key}))
    if with_stats:
        stages.append(Stage("ext_statistics", _ext_statistics, deps=("ext_cohort", "ext_scores"), version="2",
                            extra_key=lambda cfg, res: {"study": cfg.study.key, **{k: cfg.options.get(k) for k in STAT_OPTIONS}}))
    runner = Runner(run, stages, force=run.options.get("force", ()), root=run.out / "stages")
    return runner, runner.run()


# -------------------------------------------------------------------------------- statistics
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


def _units(scores: pd.DataFrame, unit: str, risks) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """The rows of the statistics, their patient clusters (or None) and the estimand's name.

    ``"lesion"``: every lesion; when some patient has several lesions, the integer code of each
    lesion's patient (every CI is then a bootstrap over patients), else None (DeLong, Wald and
    Wilson CIs, the lesions being independent). ``"patient"``: :func:`patient_risks`, one row per
    patient, no clusters.
    """
    if unit == "patient":
        rows = patient_risks(scores, risks)
        mixed = int((scores["label"].groupby(patient_ids(scores).to_numpy()).nunique() > 1).sum())
        if mixed:
            logger.info("%d patient(s) have benign and malignant lesions; at patient level they count as malignant.", mixed)
        return rows, None, PATIENT_ESTIMAND
    pid = patient_ids(scores)
    cluster = pd.factorize(pid)[0] + 1 if pid.duplicated().any() else None
    return scores, cluster, LESION_ESTIMAND


def _model_statistics(y, s, cluster, kw: dict, thresholds, conf, dca_bootstraps: int, seed: int):
    """One model's external statistics: R's ``external_validation`` and ``decision_curve``.

    With ``cluster`` both resample it (every CI, the decision-curve bands included, is then a
    bootstrap over patients); ``kw`` holds the other arguments of ``external_validation``.
    Returns the ``external_validation`` handle and the decision-curve table.
    """
    from .. import stats

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
    from .. import stats

    run = ctx.config
    study = run.study
    opts = run.options
    app = study.app
    scores = ctx.inputs["ext_scores"].table("scores")
    models = [k for k in app["models"]] + [k for k in ("clinical", "nomogram") if k in scores.columns]
    unit = opts.get("unit", "lesion")
    data, cluster, estimand = _units(scores, unit, [c for c in (*models, "deep_score") if c in scores.columns])
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
        kw = {"threshold": threshold[m], "g": int(app["hl_groups"]), "B": int(opts.get("bootstraps", 1000)),
              "seed": seed, "conf_level": conf}
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
            kw2 = {k: v for k, v in kw.items() if k != "threshold"}
            if cluster is not None:
                kw2["cluster"] = [int(c) for c in cluster]
            ev2 = stats.external_validation(y, r.to_numpy(), **kw2)
            recal.append(ev2.summary().assign(model=m, result="logistic recalibration on the external cohort (apparent)",
                                              recal_intercept=r.attrs["intercept"], recal_slope=r.attrs["slope"]))
    summary = pd.concat(summ, ignore_index=True)
    summary.insert(0, "model", summary.pop("model"))
    summary.insert(1, "label", [_label(m) for m in summary["model"]])
    summary["unit"] = estimand
    auc = summary[["model", "auc", "auc_lower", "auc_upper", "n", "n_events", "unit", "ci_method"]].rename(
        columns={"auc_lower": "lower", "auc_upper": "upper"})
    ctx.write_table("external_auc", auc)
    ctx.write_table("external_calibration", summary.drop(columns=["auc", "auc_lower", "auc_upper"]))
    c = pd.concat(cls, ignore_index=True)
    c.insert(0, "model", c.pop("model"))
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
    pid = patient_ids(scores)
    ctx.write_json("statistics_info", {
        "unit": unit, "estimand": estimand, "models": models, "n_units": int(len(data)), "n_lesions": int(len(scores)),
        "n_patients": int(pid.nunique()), "n_patients_several_lesions": int((pid.value_counts() > 1).sum()),
        "patient_bootstrap": cluster is not None, "ci_method": str(summary["ci_method"].iloc[0])})


def _label(m):
    return names.label(m)


# ================================================================================ public API
STUDY_FOLDER = "the study folder STUDY_DIR"


def _prepare(study_dir, manifest, out, need_label, options):
    study = load_study(study_dir)
    manifest = Path(manifest).resolve()
    _read_manifest(manifest, need_label, clinical=study.app["clinical_factors"])  # fail early, before any stage writes
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return _Run(study, manifest, out, need_label, options)


def validate(study_dir, manifest, out, recalibrate: bool = False, unit: str = "lesion", bootstraps: int = 1000,
             dca_bootstraps: int = 500, jobs=None, device: str = "auto", force=(), scheduler=None) -> Path:
    """External validation of a finished study on a labelled manifest; returns ``OUT/report.html``.

    Parameters
    ----------
    study_dir : path-like
        The output folder of ``srnomogram run``.
    manifest : path-like
        Labelled manifest of the external cohort (``case_id``, ``image``, ``mask``, ``label``,
        ``spacing``, the study's clinical columns; optional ``patient_id``).
    out : path-like
        Output folder: ``report.html``, ``tables/*.csv``, ``figures/*.png``, ``board/``, ``stages/``.
    recalibrate : bool
        Add a logistic recalibration (intercept, slope) of every model as a separate, labelled result.
    unit : {"lesion", "patient"}
        ``"lesion"`` (default): every lesion is a unit (the lesion-level estimand, as the study's
        own); when a patient (``patient_id``, see :func:`srnomogram.data.manifest.patient_ids`)
        has several lesions, every CI (AUC, calibration-in-the-large, slope, Brier, the threshold
        metrics, the decision-curve bands) is a percentile bootstrap over patients; otherwise the
        AUC has a DeLong CI, calibration Wald CIs, the threshold metrics Wilson CIs.
        ``"patient"``: a different estimand, one row per patient: outcome "any lesion malignant",
        risk ``1 − ∏(1 − pᵢ)`` over the patient's lesions (:func:`patient_risks`), with DeLong,
        Wald and Wilson CIs; the frozen cut-offs, chosen on lesions, are applied to that risk.
    bootstraps, dca_bootstraps : int
        Resamples of the patient bootstrap (lesion level, when a patient has several lesions) and
        of the decision-curve bands.
    force : iterable of str
        External stages to recompute (``"all"``).
    scheduler : str or None
        Dask scheduler address (``tcp://host:8786``) for the per-lesion work (see the module notes);
        None reads ``$DASK_SCHEDULER_ADDRESS``, ``"local"`` runs here. The study, the manifest's
        images and ``out`` must be on a filesystem the workers share, at the same paths.
    """
    if unit not in UNITS:
        raise param_error("unit", "validate", "'lesion' or 'patient'", unit)
    for name, v in (("bootstraps", bootstraps), ("dca_bootstraps", dca_bootstraps)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (1 if name == "bootstraps" else 0):
            raise param_error(name, "validate", "an int >= 1" if name == "bootstraps" else "an int >= 0", v)
    opts = {"recalibrate": bool(recalibrate), "unit": unit, "bootstraps": int(bootstraps),
            "dca_bootstraps": int(dca_bootstraps), "jobs": jobs, "device": device, "scheduler": scheduler}
    # -o STUDY_DIR would replace the study's own report.html and run_log.json and mix into its stages/
    check_output_dir(out, "-o/--output", outside={STUDY_FOLDER: study_dir})
    run = _prepare(study_dir, manifest, out, True, opts)
    run.options["force"] = tuple(force)
    with output_lock(run.out, "validate"):  # one writer per output folder
        runner, results = _run_stages(run, with_stats=True)
        return _publish(run, runner, results)


def predict(study_dir, manifest, output, jobs=None, device: str = "auto", work_dir=None, force=(), scheduler=None) -> Path:
    """Score an (unlabelled) manifest with every model of a finished study; write ``output`` (CSV).

    The CSV has one row per lesion: ``case_id`` (and ``patient_id``), one column per image model,
    ``deep_score`` (the chosen model's), and, when the clinical columns exist, ``clinical`` and
    ``nomogram`` (risks) with ``clinical_points`` and ``nomogram_points`` (total points). The
    stages are cached in ``work_dir`` (default ``<output stem>_work`` beside it). ``scheduler``: as
    in :func:`validate`.
    """
    check_output_file(output, "-o/--output", inputs={"MANIFEST": manifest}, outside={STUDY_FOLDER: study_dir}, example="scores.csv")
    output = Path(output).resolve()
    work = Path(work_dir) if work_dir else output.with_name(output.stem + "_work")
    check_output_dir(work, "--work-dir" if work_dir else "--work-dir (default: <SCORES_CSV stem>_work beside it)",
                     outside={STUDY_FOLDER: study_dir})
    run = _prepare(study_dir, manifest, work, False, {"jobs": jobs, "device": device, "scheduler": scheduler})
    run.options["force"] = tuple(force)
    with output_lock(run.out, "predict"):  # the work folder: one writer (the CSV itself is written atomically)
        _, results = _run_stages(run, with_stats=False)
        scores = results["ext_scores"].table("scores")
        write_csv_atomic(scores, output)
    logger.info("Scores of %d lesions: %s", len(scores), output)
    return output


# -------------------------------------------------------------------------------- outputs
EXT_TABLES = ("external_auc", "external_calibration", "external_classification", "external_calibration_curves",
              "external_decision_curves", "external_recalibration", "external_scores_used")


def _publish(run: _Run, runner, results) -> Path:
    from ..board import write_pin

    out = run.out
    st = results["ext_statistics"]
    tables = {}
    for t in EXT_TABLES:
        if (st.path / f"{t}.csv").exists():
            tables[t] = st.table(t)
    dist = results["ext_scores"].table("score_distribution")
    shifted = dist[dist["shifted"].astype(bool)]
    tables["warnings"] = pd.concat([results["ext_cohort"].table("warnings"), pd.DataFrame(
        {"kind": "score", "column": shifted["model"], "n_outside": np.nan, "message": [_shift_message(r) for r in shifted.itertuples()],
         "training_range": [f"{a:.3g} to {b:.3g}" for a, b in zip(shifted["train_q05"], shifted["train_q95"])],
         "external_range": [f"{a:.3g} to {b:.3g}" for a, b in zip(shifted["external_q05"], shifted["external_q95"])]})],
        ignore_index=True)
    tables["warnings"]["n_outside"] = tables["warnings"]["n_outside"].astype("Int64")  # NaN for score rows
    tables["score_distribution"] = dist
    tables["external_scores"] = results["ext_scores"].table("scores")
    for name, df in tables.items():
        write_csv_atomic(df, out / "tables" / f"{name}.csv")
    meta = {"study": str(run.study.path), "study_key": run.study.key, "manifest": str(run.manifest),
            "manifest_sha256": file_sha256(run.manifest), "options": {k: v for k, v in run.options.items() if k != "force"},
            "estimate": "external"}
    for name, df in tables.items():
        write_pin(out / "board", name, df, metadata=meta, title=name.replace("_", " "))
    figs = _figures(tables, out / "figures")
    info = {**results["ext_scores"].json("scores_info"), **st.json("statistics_info"),
            **results["ext_cohort"].json("cohort_info")}
    with atomic_path(out / "run_log.json") as tmp:
        tmp.write_text(json.dumps(runner.log, indent=1), encoding="utf-8")
    return _report(run, tables, figs, info, runner.log, out / "report.html")


def _figures(tables, folder) -> dict:
    from . import figures as F

    plt = F._plt()
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    data = tables["external_scores_used"]
    auc = tables["external_auc"].set_index("model")
    models = list(auc.index)
    fig, ax = plt.subplots(figsize=(5.6, 5))
    for m in models:
        part = data[["label", m]].dropna()
        fpr, tpr = F._roc_xy(part["label"], part[m])
        ax.plot(fpr, tpr, lw=1.3, label=f"{_label(m)} (AUC {auc.loc[m, 'auc']:.3f})")
    made["external_roc"] = _unit_square(F, fig, ax, folder / "external_roc", "External ROC", "1 - specificity", "Sensitivity", "lower right")
    cur = tables["external_calibration_curves"]
    fig, ax = plt.subplots(figsize=(5.6, 5))
    for m in models:
        part = cur[cur["model"] == m]
        ax.plot(part["predicted"], part["smoothed"], lw=1.3, label=_label(m))
    made["external_calibration"] = _unit_square(F, fig, ax, folder / "external_calibration", "External calibration (lowess)",
                                                "Predicted risk", "Observed proportion", "upper left")
    d = tables["external_decision_curves"]
    fig, ax = plt.subplots(figsize=(6.4, 5))
    ymax = 0.0
    for m in models:
        part = d[(d["model"] == m) & (d["curve"] == DCA_CURVE)].sort_values("thresholds")
        line = ax.plot(part["thresholds"], part["NB"], lw=1.3, label=_label(m))[0]
        # bands only for the two clinical models, or the figure is unreadable (all CIs are in the CSV)
        if m in EXTRA_LABELS and "NB_lower" in part and part["NB_lower"].notna().any():
            ax.fill_between(part["thresholds"], part["NB_lower"], part["NB_upper"], alpha=0.12, lw=0, color=line.get_color())
        ymax = max(ymax, float(np.nanmax(part["NB"])) if len(part) else 0)
    allc = d[(d["model"] == models[0]) & (d["curve"] == "All")]
    ax.plot(allc["thresholds"], allc["NB"], c="grey", lw=1, label="Treat all")
    ax.axhline(0, c="black", lw=1, label="Treat none")
    ax.set(title="External decision curves", xlabel="Threshold probability", ylabel="Net benefit",
           ylim=(-0.05, max(0.05, ymax * 1.1)))
    ax.legend(fontsize=7, loc="upper right")
    made["external_dca"] = F.save(fig, folder / "external_dca", formats=("png",))[0]
    return made


def _unit_square(F, fig, ax, path, title, xlabel, ylabel, loc):
    """Finish a [0, 1]² panel with its diagonal and legend; save it as PNG; return the path."""
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc=loc)
    return F.save(fig, path, formats=("png",))[0]


def methods_text(run: _Run, info: dict) -> str:
    app = run.study.app
    n = info.get("n")
    parts = [f"The finished study {app['study']!r} (config hash {app['config_hash'][:12]}) was applied unchanged to "
             f"{n} lesions of {run.manifest.name} (external validation: no model, threshold or setting was refitted)."]
    if app["sr"]["enabled"]:
        parts.append("The study's own super-resolution generator was applied to every image.")
    if app["radiomics"]["enabled"]:
        parts.append("PyRadiomics features were extracted with "
                     + (f"the study's parameter file {app['radiomics']['params_name']}" if app["radiomics"]["params_name"] else "the package's default parameters")
                     + " and scored by the study's fitted pipelines (selection, z-score and pruning from the training set).")
    deep = [m for m in app["models"].values() if m["kind"] == "deep"]
    if deep:
        parts.append(f"The study's CNNs scored ROI crops with their training settings (image size {deep[0]['image_size']} px, "
                     f"margin {deep[0]['margin']}).")
    if info.get("clinical_skipped"):
        parts.append(info.get("message", ""))
    else:
        parts.append(f"The clinical model and the nomogram used the study's coefficients; the deep-learning score was "
                     f"{_label(app['best_model']['model'])}'s.")
    parts.append(_unit_text(run, info))
    parts.append(
        f"Every model was assessed by its AUC, calibration-in-the-large and calibration slope, the smoothed calibration "
        f"curve and rms::val.prob statistics, the Brier score, the Hosmer–Lemeshow test ({app['hl_groups']} groups), "
        "decision curves, and accuracy, sensitivity, specificity, PPV and NPV at its frozen training Youden cut-off."
    )
    if run.options.get("recalibrate"):
        parts.append("A logistic recalibration (intercept and slope refitted on the external cohort) is reported "
                     "separately; its figures are apparent on this cohort, not external.")
    return " ".join(p for p in parts if p)


def _unit_text(run: _Run, info: dict) -> str:
    """The methods' sentences on the unit of analysis and on how every CI was obtained."""
    level = f"{100 * (1 - run.study.app.get('alpha', 0.05)):g}%"
    dca_b = run.options.get("dca_bootstraps")
    bands = (f"the decision-curve bands are percentile bootstraps over patients ({dca_b} resamples)" if dca_b
             else "the decision curves have no bands")
    n_pat, n_les = info.get("n_patients"), info.get("n_lesions")
    if info.get("unit") == "patient":
        return (f"The unit of analysis was the patient ({n_pat} patients, {n_les} lesions), an estimand different from "
                f"the study's lesion-level one: {PATIENT_ESTIMAND}, that is, a patient is malignant when any of their "
                "lesions is, and a model's patient risk is 1 − ∏(1 − pᵢ) over the risks pᵢ of the patient's lesions "
                "(the lesions taken as independent); the frozen cut-offs, chosen on lesions, were applied to that risk. "
                f"{level} CIs: DeLong (AUC), Wald (calibration-in-the-large and slope) and Wilson (threshold metrics); "
                f"the Brier score has none; {bands}.")
    if info.get("patient_bootstrap"):
        return (f"The unit of analysis was the lesion ({n_les} lesions of {n_pat} patients; "
                f"{info.get('n_patients_several_lesions')} patients had several lesions). Every {level} CI (AUC, "
                "calibration-in-the-large and slope, Brier score, threshold metrics) is a percentile bootstrap over "
                f"patients ({run.options.get('bootstraps')} resamples, each keeping all of a patient's lesions), "
                f"and {bands}.")
    return (f"The unit of analysis was the lesion ({n_les} lesions, each its own patient). {level} CIs: DeLong (AUC), "
            f"Wald (calibration-in-the-large and slope) and Wilson (threshold metrics); the Brier score has none; {bands}.")


def _report(run, tables, figs, info, log, path) -> Path:
    import datetime as _dt
    import html

    from .report import CSS, _img, _table_html

    title = f"External validation: {run.study.app['study']} on {run.manifest.name}"
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">Generated {_dt.datetime.now().strftime("%Y-%m-%d %H:%M")} · study <code>{html.escape(str(run.study.path))}</code> · '
            f"board <code>board/</code></p>",
            "<h2>Methods</h2><p>" + html.escape(methods_text(run, info)) + "</p>"]
    w = tables["warnings"]
    body.append("<h2>Warnings</h2>" + ("<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in w["message"]) + "</ul>"
                                        if len(w) else "<p>No value outside the training ranges.</p>"))
    titles = {"external_auc": "Discrimination: AUC (95% CI)",
              "external_calibration": "Calibration: in-the-large, slope, rms::val.prob, Brier, Hosmer–Lemeshow",
              "external_classification": "Sensitivity, specificity, PPV, NPV at the frozen training cut-off",
              "external_recalibration": "Logistic recalibration on the external cohort (apparent, reported separately)",
              "score_distribution": "Score distributions: training against external (quantiles)"}
    body.append("<h2>Tables</h2><p>Estimand: " + html.escape(str(info.get("estimand", ""))) + "; CIs: "
                + html.escape(str(info.get("ci_method", ""))) + ".</p>")
    for name, t in titles.items():
        if name in tables:
            df = tables[name].copy()
            if "model" in df.columns:
                df.insert(0, "Model", [_label(m) for m in df.pop("model")])
            body.append(f"<h3>{html.escape(t)}</h3>{_table_html(df.drop(columns=[c for c in ('label',) if c in df.columns]))}"
                        f'<p class="meta">CSV: tables/{name}.csv</p>')
    body.append('<p class="meta">Also: tables/external_calibration_curves.csv, tables/external_decision_curves.csv, '
                "tables/external_scores.csv.</p>")
    body.append("<h2>Figures</h2>")
    for name, cap in (("external_roc", "External ROC curves of all models"), ("external_calibration", "External calibration curves"),
                      ("external_dca", "External decision curves (bootstrap 95% bands of the clinical model and nomogram)")):
        if name in figs:
            body.append(_img(figs[name], cap))
    body.append("<h2>Run</h2>" + _table_html(pd.DataFrame(log)))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("External validation report: %s", path)
    return path

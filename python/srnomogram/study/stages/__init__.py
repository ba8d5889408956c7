"""The stages of Yang & Ma's study, each calling the public API of its area.

split → sr → radiomics_or / radiomics_sr → radiomics_models → deep_<images>_<arch> (four CNNs) →
table2 (the 8 models, best model → deep-learning score) → clinical (Table 1, univariate and
multivariate logistic: Table S2) → nomogram (clinical model and deep-learning nomogram: cut-offs from
their out-of-fold training risks, the test set validated as held-out data by ``external_validation``,
added value (likelihood-ratio test on train; DeLong and paired net-benefit difference on test), bootstrap
calibration, optimism-corrected internal validation, Hosmer–Lemeshow, decision curves with bootstrap
bands on train and test) →
figures → report.

Each stage function receives a :class:`~srnomogram.study.cache.StageContext`, reads its inputs,
calls the API of its area (``data``, ``validation``, ``radiomics``, ``deep``, ``metrics``, ``stats``)
and writes plain files (CSV tables, JSON, images, model weights) into its own folder; the runner
caches them. Each :class:`~srnomogram.study.cache.Stage` declares the pins it writes (``pins=``);
the study's publisher pins them. The area commands (``srnomogram deep train``, ``srnomogram
radiomics fit``) call the same API functions and write the same pins.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import ConfigError, InputError, ManifestError
from ... import names
from ..cache import Apply, Pin, Stage, pins
from ..freeze import load_cohort, sr_region  # shared with the application stage, which sits below the stages

logger = logging.getLogger(__name__)



# ------------------------------------------------------------------------------------ helpers
def _manifest_inputs(cfg, results):
    """Hashes of the manifest and of every image and mask it names (the study's raw inputs)."""
    from ...data.manifest import load_manifest, manifest_hashes

    return manifest_hashes(cfg.cohort.manifest, load_manifest(cfg.cohort.manifest))


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``label`` column (the model's display label) right after its ``model`` id column, the join key."""
    if "label" in df.columns or "model" not in df.columns:
        return df
    out = df.copy()
    out.insert(list(out.columns).index("model") + 1, "label", out["model"].map(names.label))
    return out


def _scores_frame(cohort, **cols):
    out = cohort[["case_id", "split", "label"]].copy()
    for k, v in cols.items():
        out[k] = np.asarray(v, dtype=float)
    return out


# ------------------------------------------------------------------------------------ split
def run_split(ctx):
    """Validate the cohort, check the clinical columns, assign train/test (8:2 stratified), by patient
    when the manifest has ``patient_id`` (split and cross-fitting folds alike)."""
    from ...data import check_clinical, stratified_split
    from ...data.manifest import load_manifest, patient_ids, write_manifest
    from ...validation import training_folds

    cfg = ctx.config
    df, excluded = check_clinical(load_manifest(cfg.cohort.manifest), cfg.cohort.schema, source=cfg.cohort.manifest)
    if "split" in df.columns and cfg.split.use_manifest_split and df["split"].notna().all():
        source = "manifest"
    else:
        df["split"] = stratified_split(df, test_size=cfg.split.test_size, seed=cfg.split_seed).to_numpy()
        by = "patient" if "patient_id" in df.columns else "lesion"
        source = f"stratified hash split by {by}, test_size={cfg.split.test_size}, seed={cfg.split_seed}"
    for s in ("train", "test"):
        part = df[df["split"] == s]
        if part["label"].nunique() < 2:
            raise InputError(f"The {s} set has only one class; a study needs benign and malignant lesions in both.")
    cfg.cohort.schema.check_levels_present(  # before rms::lrm stops on a level it cannot estimate
        df[df["split"] == "train"], where="the training set" + ("" if source == "manifest" else f" of split seed {cfg.split_seed}"))
    pid = patient_ids(df)
    sides = df.groupby(pid.to_numpy())["split"].nunique()
    straddle = sides.index[sides > 1]
    if len(straddle):  # only a split given in the manifest can do this
        logger.warning("%d patient(s) have lesions in both the train and test sets of the manifest's split (e.g. %r); "
                       "their test lesions are not independent of training.", len(straddle), straddle[0])
    write_manifest(df, ctx.path("cohort.csv"))
    ctx.write_table("folds", training_folds(df, n_splits=cfg.validation.folds, seed=cfg.study.seed))
    ctx.write_table("excluded", excluded)
    # lesions (n) and patients per split and label; a patient counts under each label they have
    counts = df.assign(patient=pid).groupby(["split", "label"]).agg(n=("case_id", "size"), patients=("patient", "nunique")).reset_index()
    ctx.write_table("split_counts", counts)
    ctx.write_json("split_info", {"source": source, "n": len(df), "n_patients": int(pid.nunique()),
                                  "unit": "patient" if "patient_id" in df.columns else "lesion",
                                  "n_patients_both_sides": len(straddle), "n_excluded": len(excluded)})


# ------------------------------------------------------------------------------------ super-resolution
def _sr_key(cfg, results):
    region, margin = sr_region(cfg)
    return {**_seed_key(cfg, results), "region": region, "roi_margin": margin if region == "roi" else None}


def _sr_shared_folder(cfg, params) -> Path:
    """Where ``sr.fit_on: all`` keeps its one model and SR images, shared by every split seed.

    Keyed by everything they depend on (SR settings, region, the cohort's images and masks), never by
    the split, so the seeds of repeated splits train the GAN once and reuse each other's SR files (which
    :func:`srnomogram.sr.apply.apply_manifest` reuses only when their sidecars match).
    """
    from ...data.manifest import load_manifest, manifest_hashes
    from ...utils import hash_bytes
    import json

    region, margin = sr_region(cfg)
    key = hash_bytes(json.dumps({"params": {k: repr(v) for k, v in sorted(params.items())}, "region": region, "margin": margin,
                                 "inputs": manifest_hashes(cfg.cohort.manifest, load_manifest(cfg.cohort.manifest)),
                                 "version": "1"}, sort_keys=True))
    return Path(cfg.study.output) / "cache" / "sr_fit_on_all" / key[:20]


def _fit_sr_on_all(cfg, cohort, params):
    """The SR model of ``sr.fit_on: all``: trained once on every image (labels unused), then reused."""
    import shutil

    from ...sr import SuperResolver

    folder = _sr_shared_folder(cfg, params)
    if (folder / "model").is_dir():
        try:
            model = SuperResolver.load(folder / "model", device=params.get("device", "auto"))
            model.history_ = pd.read_csv(folder / "sr_history.csv").drop(columns="iteration").to_dict("records")
            logger.info("SR model (fit_on: all) reused from %s", folder)
            return model, folder
        except Exception as exc:  # a damaged cache is retrained, not trusted
            logger.warning("SR model cache %s unreadable (%s); retraining.", folder, exc)
            shutil.rmtree(folder / "model", ignore_errors=True)
    model = SuperResolver(**params).fit(cohort)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp / "model")
    hist = pd.DataFrame(model.history_)
    hist.assign(iteration=np.arange(1, len(hist) + 1)).to_csv(tmp / "sr_history.csv", index=False)
    folder.mkdir(parents=True, exist_ok=True)
    (tmp / "sr_history.csv").replace(folder / "sr_history.csv")
    (tmp / "model").replace(folder / "model")
    shutil.rmtree(tmp, ignore_errors=True)
    return model, folder


def run_sr(ctx):
    """Train the SR GAN on the training images (``sr.fit_on: train``) or, label-free, on every image
    (``all``), and super-resolve every image (``image_sr``)."""
    from ...sr import SuperResolver

    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"])
    params = dict(cfg.sr.params or {})
    params.setdefault("seed", cfg.study.seed)
    params.setdefault("device", cfg.deep.device)
    if cfg.sr.fit_on == "all":
        model, shared = _fit_sr_on_all(cfg, cohort, params)
        images = shared / "images"
    else:
        model = SuperResolver(**params).fit(cohort[cohort["split"] == "train"])
        images = ctx.path("images")
    model.save(ctx.path("model"))
    region, margin = sr_region(cfg)
    if region != getattr(cfg.sr, "region", "roi"):
        logger.warning("SR on whole images: the radiomics parameters read beyond the lesion box (normalisation, filters or resampling)")
    df = model.apply_manifest(
        ctx.inputs["split"].file("cohort.csv"),
        out_dir=images,
        manifest_out=ctx.path("cohort.csv"),
        region=region,
        roi_margin=margin,
        scheduler=getattr(cfg.study, "scheduler", None),
    )
    hist = pd.DataFrame(model.history_)
    ctx.write_table("sr_history", hist.assign(iteration=np.arange(1, len(hist) + 1)))
    held = cohort[cohort["split"] == "test"].head(5)
    try:
        from ...data.readers import read_image
        import SimpleITK as sitk

        imgs = [sitk.GetArrayFromImage(read_image(r.image, r.spacing)) for r in held.itertuples()]
        # with fit_on: all the GAN saw these images (label-free): their quality is apparent, not held-out
        ctx.write_table("sr_quality", model.quality(imgs, ids=list(held["case_id"]), seed=cfg.study.seed)
                        .assign(estimate="held-out" if cfg.sr.fit_on == "train" else "apparent (fit_on: all)"))
    except Exception as exc:  # quality is descriptive; never block the study on it
        logger.warning("SR quality table skipped: %s", exc)
    logger.info("SR images for %d lesions", len(df))


# ------------------------------------------------------------------------------------ radiomics
def _run_radiomics(ctx, images):
    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["sr" if images == "sr" else "split"])
    _write_features(ctx, cohort, images, params=cfg.radiomics.params, jobs=cfg.radiomics.jobs,
                    cache=Path(cfg.study.output) / "cache" / f"radiomics_{images}", scheduler=cfg.study.scheduler)


def _write_features(ctx, cohort, images, params, jobs, cache, scheduler):
    """PyRadiomics features of ``cohort``'s ``images`` (``or``/``sr``), one row per lesion in its order:
    the one extraction wiring of the study (fit) and of ``validate``/``predict`` (apply)."""
    from ...radiomics import extract

    feats = extract(cohort, image_col=names.image_col(images), jobs=jobs, params=params, cache_dir=cache, scheduler=scheduler)
    feats = feats.reindex(cohort["case_id"].astype(str))
    feats.index.name = "case_id"
    ctx.write_table(f"radiomics_features_{images}", feats.reset_index())


def run_radiomics_or(ctx):
    """PyRadiomics features of the original images."""
    _run_radiomics(ctx, "or")


def run_radiomics_sr(ctx):
    """PyRadiomics features of the super-resolved images."""
    _run_radiomics(ctx, "sr")


def run_radiomics_models(ctx):
    """LR and SVM on OR and SR features (Mann–Whitney → z-score → |r| > 0.9 pruning), fitted on train.

    Writes the fitted models' scores (``radiomics_scores``) and the cross-fitted ones
    (``radiomics_scores_oof``: training rows out-of-fold over the study's folds, test rows as fitted),
    both from :func:`srnomogram.radiomics.fit_or_sr_models`, which ``srnomogram radiomics fit`` calls too.
    """
    from ...radiomics import fit_or_sr_models
    from ...radiomics.persist import save_model  # skops, hash-checked: what `validate` applies

    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"]).set_index("case_id")
    feats = {im: ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id")
             for im in ("or", "sr") if f"radiomics_{im}" in ctx.inputs}
    res = fit_or_sr_models(cohort["label"], cohort["split"], feats["or"], feats.get("sr"), random_state=cfg.study.seed,
                           kinds=cfg.radiomics.models, folds=ctx.inputs["split"].table("folds"))
    for m, model in res["models"].items():
        save_model(model, ctx.path(f"model/{m}.skops"), res["features"][m], model=m, seed=cfg.study.seed)
    _write_timing(ctx, res["timing"])
    ctx.write_table("radiomics_scores", res["scores"])
    ctx.write_table("radiomics_scores_oof", res["scores_oof"])
    ctx.write_table("radiomics_selected", res["report"])


def _radiomics_pins(cfg) -> tuple:
    """``radiomics_scores``, ``radiomics_selected`` and ``scores_<model_id>``: what ``srnomogram radiomics fit --board`` writes."""
    from ...board import model_scores, scores_pin_name
    from ...radiomics.models import PIN_TITLES

    ids = [names.model_id(im, k) for im in ("or", "sr") if im == "or" or cfg.sr.enabled for k in cfg.radiomics.models]
    # board.pickle_models: the fitted pipelines as joblib pickles too (the stage keeps them as skops files)
    pickles = tuple(Pin(f"model_{m}", read=lambda r, m=m: _fitted_radiomics_model(r, m), title=f"{names.label(m)} fitted pipeline (pickle)")
                    for m in ids) if cfg.board.pickle_models else ()
    return (*(Pin(n, title=PIN_TITLES[n]) for n in ("radiomics_scores", "radiomics_selected")),
            *(Pin(scores_pin_name(m), read=lambda r, m=m: model_scores(r.table("radiomics_scores"), m)) for m in ids), *pickles)


def _fitted_radiomics_model(result, m):
    """The fitted pipeline of model ``m`` from its skops file (hash-checked), or None when the stage has none."""
    from ...radiomics.persist import load_model

    path = result.file(f"model/{m}.skops")
    return load_model(path)[0] if path.is_file() else None


def _write_timing(ctx, timing):
    """Wall times of cross-fitting vs the full-training-set fit, beside the stage (not in its hashed outputs)."""
    import json

    folder = Path(ctx.extra["scratch"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timing.json").write_text(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in timing.items()}), encoding="utf-8")


# ------------------------------------------------------------------------------------ deep learning
def make_deep_stage(images, arch):
    def run(ctx):
        from ...deep.model import DeepClassifier
        from ...deep.run import fit_and_score, loss_table
        from ...validation import FoldCache

        cfg = ctx.config
        cohort = load_cohort(ctx.inputs["sr" if images == "sr" else "split"])
        clf = DeepClassifier(arch=arch, image_col=names.image_col(images), weights=cfg.deep.weights, epochs=cfg.deep.epochs, batch_size=cfg.deep.batch_size,
                             lr=cfg.deep.lr, seed=cfg.study.seed, deterministic=cfg.study.deterministic, device=cfg.deep.device,
                             **dict(cfg.deep.params or {}))
        col, model = clf.image_col, names.model_id(images, arch)
        # always cross-fitted (Table 2's cross-validated AUC and the cv_auc rule need it); cached per fold
        # outside the stage folder, so that a killed run resumes at the fold it was in
        cache = FoldCache(ctx.extra["scratch"], ctx.key)
        res = fit_and_score(clf, cohort, col, folds=ctx.inputs["split"].table("folds"), cache=cache, label=model)
        clf.save(ctx.path("model"))
        ctx.write_table("deep_scores", _scores_frame(cohort, **{model: res["score"]}))
        ctx.write_table("deep_scores_oof", _scores_frame(cohort, **{model: res["score_oof"]}))
        _write_timing(ctx, {**res["timing"], "folds": int(cfg.validation.folds)})
        cache.clear_other_keys()
        logger.info("%s: cross-fitting %.1f s, full-training-set model %.1f s.", model, res["timing"]["cross_fit_s"], res["timing"]["full_fit_s"])
        ctx.write_table("loss_history", loss_table(clf))
        try:  # Grad-CAM of a few test lesions (the paper's Figure 5)
            test = cohort[cohort["split"] == "test"].head(4)
            cam = clf.gradcam(test)
            np.savez_compressed(
                ctx.path("gradcam.npz"), case_id=np.asarray(cam.case_ids), cam=cam.cams, image=cam.images, mask=cam.masks
            )
        except Exception as exc:
            logger.warning("Grad-CAM skipped for %s/%s: %s", images, arch, exc)

    run.__name__ = f"run_deep_{images}_{arch}"
    run.__doc__ = f"{arch} trained on {images.upper()} images (transfer learning, ROI crops)."
    return run


def _deep_pins(images, arch) -> tuple:
    """``scores_<id>``, ``loss_history_<id>``, ``model_<id>``: what ``srnomogram deep train --board`` writes (:func:`srnomogram.deep.run.result_pins`)."""
    import json

    from ...deep.run import PIN_TITLES, result_pins

    mid = names.model_id(images, arch)
    built = {}  # the three pins are built together, once per stage result

    def frames(result):
        key = (str(result.path), result.key)
        if key not in built:
            meta_file = result.file("model/meta.json")
            meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
            built.clear()
            built[key] = result_pins(mid, result.table("deep_scores"), result.table("loss_history"), meta)
        return built[key]

    def read(kind):
        return lambda result: frames(result)[f"{kind}_{mid}"]

    return (*(Pin(f"{kind}_{mid}", read=read(kind), title=f"{names.label(mid)} {title}") for kind, title in PIN_TITLES.items()),
            # Figure 5's maps, so that every figure can be redrawn from the board
            Pin(f"gradcam_{mid}", file="gradcam.npz", title="Grad-CAM maps of test lesions (npz: case_id, image, cam, mask)"))


# ------------------------------------------------------------------------------------ table 2
def run_table2(ctx):
    """Table 2: AUC (95% CI, DeLong; apparent and cross-validated on train), sensitivity, ... of the models; best model's score."""
    from ... import metrics

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
    rows = [
        metrics.table2_rows(m, y[tr], scores[m].to_numpy()[tr], y[te], scores[m].to_numpy()[te],
                            alpha=cfg.nomogram.alpha, s_train_cv=oof[m].to_numpy()[tr] if m in oof.columns else None)
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
                                alpha=cfg.nomogram.alpha)
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


def _ci_text(lo, hi, conf_level):
    return f"{100 * conf_level:.10g}% CI {lo:.3f}-{hi:.3f}"


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


def negative_coefficient_message(label, coef) -> str:
    """One line saying that the nomogram uses the deep-learning score with the opposite sign."""
    return (f"The deep-learning score ({label}) enters the nomogram with a negative coefficient "
            f"({coef['coef']:.3f}; OR {coef['odds_ratio_per_unit']:.2f} per {coef['unit']:g}, "
            f"{_ci_text(coef['lower_per_unit'], coef['upper_per_unit'], coef['conf_level'])}, "
            f"p = {coef['p_value']:.2g}): the nomogram uses the score with the opposite sign (a higher score lowers "
            "the risk), so the nomogram's gain over the clinical model should not be trusted.")


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


# ------------------------------------------------------------------------------------ clinical + nomogram
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
    for s in ("train", "test"):
        part = preds[preds["split"] == s]
        y = part["label"].to_numpy()
        for name in fits:
            # the one AUC of the package (Table 2's), DeLong, proven equal to pROC in test_metrics
            auc, lower, upper = metrics.roc_auc_ci(y, part[f"risk_{name}"].to_numpy(), alpha=1 - level)
            roc_rows.append({"set": s, "model": name, "auc": auc, "lower": lower, "upper": upper,
                             "estimate": "apparent" if s == "train" else "held-out"})
            if s == "train":
                h = stats.hl_test(y, part[f"risk_{name}"].to_numpy(), g=cfg.nomogram.hl_groups)
                hl_rows.append({"set": s, "model": name, "statistic": h["statistic"], "df": h["df"], "p_value": h["p_value"],
                                "estimate": "apparent"})
            else:  # held-out risks: the test of external_validation(), df = groups
                h = heldout[heldout["model"] == name].iloc[0]
                hl_rows.append({"set": s, "model": name, "statistic": h["hl_statistic"], "df": h["hl_df"], "p_value": h["hl_p"],
                                "estimate": "held-out"})
            d = stats.decision_curve(f"label ~ risk_{name}", part[["label", f"risk_{name}"]].reset_index(drop=True),
                                     fitted_risk=True, thresholds=list(thresholds), cluster=patient_ids(data.loc[part.index]), **dca_ci)
            d = d.rename(columns={"model": "curve"})  # rmda's curve name: the formula, "All" or "None"
            dca.append(d.assign(set=s, model=name, conf_level=level if cfg.nomogram.dca_bootstraps > 0 else np.nan))
        if s == "test":
            c = stats.compare_roc(y, part["risk_nomogram"].to_numpy(), part["risk_clinical"].to_numpy())
            cmp_rows.append({"set": s, "comparison": "nomogram vs clinical", "estimate": "held-out",
                             **c.drop(["df", "auc_of_score1", "auc_of_score2"]).to_dict()})
    ctx.write_table("roc_auc", with_labels(pd.DataFrame(roc_rows)))
    ctx.write_table("roc_comparison", pd.DataFrame(cmp_rows))
    ctx.write_table("hosmer_lemeshow", with_labels(pd.DataFrame(hl_rows)))
    ctx.write_table("decision_curves", pd.concat(dca, ignore_index=True))

    cal, cal_summary = [], []
    for name, fit in fits.items():
        for s, c in (
            ("train", stats.calibrate_nomogram(fit, B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed, cluster=patient_ids(train))),
            # the held-out curve with its bootstrap band (B resamples of the test set's patients)
            ("test", stats.calibrate_nomogram(fit, newdata=test, g=cfg.nomogram.hl_groups, B=cfg.nomogram.calibration_b,
                                              seed=cfg.bootstrap_seed, conf_level=level, cluster=patient_ids(test))),
        ):
            cal.append(c.frame().assign(model=name, set=s))
            cal_summary.append(c.summary().assign(model=name, set=s))
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
    kw = {"g": cfg.nomogram.hl_groups, "conf_level": level}
    if patients.duplicated().any():
        kw.update(cluster=list(patients), B=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed)
    rows = []
    for r in cuts.itertuples():
        ev = stats.external_validation(y, ptest[f"risk_{r.model}"].to_numpy(dtype=float), threshold=float(r.threshold), **kw)
        summ = ev.summary().iloc[0].to_dict()
        cls = ev.frame(what="classification").iloc[0].to_dict()
        cls.pop("n", None)
        rows.append({"model": r.model, "label": r.label, "set": "test", "estimate": "held-out", **summ, **cls,
                     "threshold_from": r.threshold_from})
    return pd.DataFrame(rows)


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


def _best_label(ctx):
    """Label of the model behind the deep-learning score (from Table 2's ``best_model.json``, when there)."""
    t2 = ctx.inputs["table2"]
    if (t2.path / "best_model.json").exists():
        return t2.json("best_model")["label"]
    return "deep_score"


# ------------------------------------------------------------------------------------ the pipeline
#: Report titles of the stages' tables (``{level}``, ``{B}``: see :meth:`Pin.title_for`).
TITLES = {
    "table1": "Table 1. Clinical characteristics",
    "table2": "Table 2. Diagnostic performance of the radiomics and deep-learning models",
    "score_check": "Score check: cross-validated training AUC (DeLong {level}% CI) of the model behind the "
    "deep-learning score (no_signal: the interval reaches 0.5)",
    "table_s2": "Table S2. Univariate and multivariate logistic regression (odds ratios, Wald {level}% CI)",
    "nomogram_coefficients": "Nomogram and clinical model coefficients (odds ratios, Wald {level}% CI)",
    "roc_auc": "AUC (DeLong {level}% CI) of the clinical model and the nomogram",
    "roc_comparison": "DeLong comparison: nomogram vs clinical model (test set, held-out)",
    "hosmer_lemeshow": "Hosmer–Lemeshow test (train: apparent, df = groups - 2; test: held-out, df = groups)",
    "calibration_summary": "Calibration: bootstrap (train) and held-out (test: calibration-in-the-large, slope)",
    "nomogram_thresholds": "Cut-offs of the clinical model and the nomogram (out-of-fold training risks or pre-specified) "
    "with their cross-validated training classification",
    "heldout_validation": "Held-out validation on the test set (external_validation at the frozen cut-offs, {level}% CI)",
    "added_value": "Added value of the deep-learning score: likelihood-ratio test (train) and mean difference in net "
    "benefit, nomogram - clinical model (test, paired bootstrap {level}% CI)",
    "net_benefit_difference": "Difference in net benefit, nomogram - clinical model, per threshold (test, paired "
    "bootstrap {level}% CI)",
    "internal_validation": "Internal validation (bootstrap, B = {B}): apparent and optimism-corrected indexes "
    "of the clinical model and the nomogram on the training set (rms::validate)",
}
#: The nomogram stage's tables in the report, in order.
NOMOGRAM_TABLES = ("nomogram_coefficients", "roc_auc", "roc_comparison", "hosmer_lemeshow", "calibration_summary",
                   "nomogram_thresholds", "heldout_validation", "added_value", "net_benefit_difference", "internal_validation")


def _model_labels(result) -> pd.DataFrame:
    """The ``model_labels`` pin: ``model`` id and display ``label`` of every model of Table 2 (first, in
    its order), then of every other registered model, the clinical model and the nomogram
    (:func:`srnomogram.names.labels`); R's figures take their legends from it, by id, never by position."""
    ids = list(dict.fromkeys([*result.table("model_aucs")["model"], *names.labels()]))
    return pd.DataFrame({"model": ids, "label": [names.label(m) for m in ids]})


def build_stages(cfg) -> list[Stage]:
    """The stages a config asks for, in dependency order, each with the pins it writes."""
    stages = [Stage("split", run_split, sections=("cohort", "split"), inputs=_manifest_inputs, extra_key=_split_key, version="3",
                    pins=(Pin("manifest", read=_cohort_pin, title="Cohort manifest with train/test split"), *pins("split_counts", "excluded")),
                    apply=Apply(apply_split, inputs=_apply_manifest_inputs, pins=APPLY_SPLIT_PINS))]
    if cfg.sr.enabled:
        stages.append(Stage("sr", run_sr, deps=("split",), sections=("sr",), extra_key=_sr_key, version="3", pins=pins("sr_history", "sr_quality"),
                            apply=Apply(apply_sr)))
    model_deps = []
    if cfg.radiomics.enabled:
        stages.append(Stage("radiomics_or", run_radiomics_or, deps=("split",), sections=("radiomics",), pins=pins("radiomics_features_or"),
                            apply=Apply(apply_radiomics("or"))))
        rad_deps = ["split", "radiomics_or"]
        if cfg.sr.enabled:
            stages.append(Stage("radiomics_sr", run_radiomics_sr, deps=("sr",), sections=("radiomics",), pins=pins("radiomics_features_sr"),
                                apply=Apply(apply_radiomics("sr"))))
            rad_deps.append("radiomics_sr")
        stages.append(Stage("radiomics_models", run_radiomics_models, deps=tuple(rad_deps), sections=("radiomics", "board"),
                            extra_key=_seed_key, version="5", pins=_radiomics_pins(cfg), apply=Apply(apply_radiomics_models)))
        model_deps.append("radiomics_models")
    if cfg.deep.enabled:
        for images in cfg.deep.images:
            for arch in cfg.deep.archs:
                name = f"deep_{names.model_id(images, arch)}"
                deps = ("split", "sr") if images == "sr" else ("split",)
                stages.append(Stage(name, make_deep_stage(images, arch), deps=deps, extra_key=_deep_key, version="3", pins=_deep_pins(images, arch),
                                    apply=Apply(apply_deep(images, arch))))
                model_deps.append(name)
    stages.append(Stage("table2", run_table2, deps=("split", *model_deps), sections=("nomogram",), version="5",
                        pins=(*pins("scores", "scores_oof", "model_aucs"), Pin("model_labels", read=_model_labels,
                                                                            title="Display label of every model id"),
                              Pin("table2", section="tables", order=20, title=TITLES["table2"]),
                              Pin("score_check", section="tables", order=30, title=TITLES["score_check"])),
                        apply=Apply(apply_table2, version="2")))
    stages.append(Stage("clinical", run_clinical, deps=("split", "table2"), sections=("cohort",), extra_key=_alpha_key, version="2",
                        pins=(Pin("table1", section="tables", order=10, title=TITLES["table1"]),
                              Pin("table_s2", section="tables", order=40, title=TITLES["table_s2"]))))
    stages.append(Stage("nomogram", run_nomogram, deps=("split", "table2"), sections=("cohort", "nomogram"), extra_key=_seed_key, version="9",
                        pins=(*pins("predictions", "nomogram_points", "clinical_points", "calibration"),
                              *(Pin(n, section="tables", order=o, title=TITLES[n]) for o, n in zip(range(50, 150, 10), NOMOGRAM_TABLES)),
                              Pin("decision_curves", section="tables", order=150, show=False,
                                  title="Decision curves (net benefit per threshold) of the clinical model and the nomogram")),
                        apply=Apply(apply_nomogram, version="3", pins=APPLY_NOMOGRAM_PINS)))
    from ..freeze import application_stage  # what `srnomogram validate/predict` needs, frozen

    stages.append(application_stage(stages))
    from ..main_result import main_result_stage  # the paper's two questions, the TRIPOD+AI flow and sample size

    stages.append(main_result_stage(cfg))
    return stages


def _cohort_pin(result) -> pd.DataFrame:
    return pd.read_csv(result.file("cohort.csv"), dtype={"case_id": str})


def _alpha_key(cfg, results):
    return {"alpha": cfg.nomogram.alpha}  # Table S2's intervals


def _split_key(cfg, results):
    # the split seed and the cross-fitting folds (stratified k-fold from the study seed)
    return {"split_seed": cfg.split_seed, "folds": cfg.validation.folds, "fold_seed": cfg.study.seed}


def _seed_key(cfg, results):
    return {"seed": cfg.study.seed, "device": cfg.deep.device}


def _deep_key(cfg, results):
    # one CNN's result does not depend on which other CNNs the study trains
    deep = {k: v for k, v in cfg.to_dict()["deep"].items() if k not in ("archs", "images", "enabled")}
    return {"seed": cfg.study.seed, "deterministic": cfg.study.deterministic, "deep": deep}


# ------------------------------------------------------------------------------------ apply mode
# `srnomogram validate` and `predict` run the stages above in apply mode (Stage.apply, Stage.applied):
# the same names and dependencies, each stage's apply half reading the frozen study instead of fitting,
# as Pipeline.predict runs a fitted pipeline's steps. ctx.config is then the application run
# (srnomogram.study.external.ApplyRun): .study (the FinishedStudy: app, summary, design, file()),
# .manifest, .out, .need_label, .options.
SPACING_TOLERANCE = 0.25  # relative: warn when external spacing leaves the training range by more
SIZE_TOLERANCE = 0.5  # relative, for image width/height


def load_apply_cohort(path, need_label: bool, clinical=()) -> pd.DataFrame:
    """A cohort to apply a finished study to, read by the study's loader and checked by its clinical check.

    :func:`~srnomogram.data.manifest.load_manifest` with ``require_label=False`` (``label`` is
    needed only to validate: ``need_label``), and :func:`~srnomogram.data.check.check_clinical` on
    the study's ``clinical`` factors the manifest has: a value that is not a number is refused with its
    row and column, as ``srnomogram run`` refuses it. A factor the manifest lacks, or leaves empty, is
    no error: the clinical model and the nomogram are then skipped (:func:`apply_nomogram`). SR
    columns are dropped: the study makes its own SR images.

    ``clinical``: the study's :class:`~srnomogram.data.clinical.ClinicalSchema`, or its factors'
    names (numeric). Its cells get the schema's own check (:meth:`ClinicalSchema.check
    <srnomogram.data.clinical.ClinicalSchema.check>`, as ``check_clinical`` does at study time): a
    value that is not a number, or a level the study did not declare, is refused with its row and
    column rather than silently becoming missing.
    """
    from ...data.clinical import ClinicalSchema
    from ...data.manifest import load_manifest

    df = load_manifest(path, require_label=False, check_files=False)
    has_label = "label" in df.columns and df["label"].notna().all()
    if need_label and not has_label:  # said before any missing file: the wrong command is the first thing to fix
        raise ManifestError(f"{path}: no 'label' column (or empty labels), so there is nothing to validate against; "
                            "score unlabelled lesions with 'srnomogram predict STUDY_DIR MANIFEST -o scores.csv'.")
    df = load_manifest(path, require_label=False)
    df = df.drop(columns=[c for c in ("image_sr", "mask_sr") if c in df.columns] + ([] if has_label or "label" not in df.columns else ["label"]))
    schema = ClinicalSchema.parse(clinical)
    present = ClinicalSchema(f for f in schema if f.name in df.columns)
    if present:  # every row kept: numbers as numbers, categories among the study's levels (else an error)
        df = present.check(df, source=str(path), setting="the study's cohort.clinical")
    return df


def _applied_cohort(result) -> pd.DataFrame:
    """The cohort table an apply-mode stage wrote (``cohort.csv``, label optional), paths absolute."""
    from ...data.manifest import load_manifest

    return load_manifest(result.file("cohort.csv"), require_label=False)


def _apply_manifest_inputs(run, results):
    """Hashes of the new cohort's manifest and of every image and mask it names."""
    from ...data.manifest import manifest_hashes

    return manifest_hashes(run.manifest, load_apply_cohort(run.manifest, run.need_label))


def apply_split(ctx):
    """Apply mode of ``split``: load and check the new cohort (no split: every lesion is scored), and
    warn where its clinical values and images leave the training ranges (:func:`range_warnings`)."""
    from ...data.manifest import write_manifest

    run = ctx.config
    factors = run.study.app["clinical_factors"]
    df = load_apply_cohort(run.manifest, run.need_label, clinical=run.study.clinical)
    write_manifest(df, ctx.path("cohort.csv"))
    ctx.write_table("warnings", range_warnings(run.study.summary, df, factors))
    ctx.write_json("cohort_info", {"n": int(len(df)), "missing_clinical": [c for c in factors if c not in df.columns],
                                   "has_label": "label" in df.columns, "has_patient_id": "patient_id" in df.columns})


def range_warnings(summary, df, factors) -> pd.DataFrame:
    """Where a new cohort leaves the training ranges of ``training_summary.json``: clinical values,
    pixel spacing (and its presence), image width and height; one row (and one logged warning) each."""
    from ...data.readers import is_2d_path
    from ..freeze import image_geometry

    rows = []

    def add(kind, column, n_out, train_range, ext_range, message):
        rows.append({"kind": kind, "column": column, "n_outside": int(n_out), "training_range": train_range,
                     "external_range": ext_range, "message": message})

    for c in factors:
        s = summary["clinical"].get(c, {})
        if c not in df.columns or not s.get("n") or "counts" in s:  # a categorical factor's levels were checked on reading
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
    geo = image_geometry(df)
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


def apply_sr(ctx):
    """Apply mode of ``sr``: the study's SR generator on every image, as the study made its SR images
    (the same :meth:`~srnomogram.sr.SuperResolver.apply_manifest` call, region and margin)."""
    from ...sr import SuperResolver

    run = ctx.config
    sr = run.study.app["sr"]
    model = SuperResolver.load(run.study.file(sr["model"]), device=run.options.get("device", "auto"))
    # a study recorded before ROI-only SR made its SR images from whole images
    model.apply_manifest(ctx.inputs["split"].file("cohort.csv"), out_dir=ctx.path("images"), manifest_out=ctx.path("cohort.csv"),
                         region=sr.get("region", "image"), roi_margin=sr.get("roi_margin", 0.1), scheduler=run.options.get("scheduler"))


def apply_radiomics(images):
    """Apply mode of ``radiomics_<images>``: the study's extraction (its PyRadiomics parameter file) on the new cohort."""

    def fn(ctx):
        run = ctx.config
        pf = run.study.app["radiomics"]["params_file"]
        cohort = _applied_cohort(ctx.inputs["sr" if images == "sr" else "split"])
        _write_features(ctx, cohort, images, params=str(run.study.file(pf)) if pf else None, jobs=run.options.get("jobs"),
                        cache=run.out / "cache" / f"radiomics_{images}", scheduler=run.options.get("scheduler"))

    fn.__name__ = f"apply_radiomics_{images}"
    return fn


def apply_radiomics_models(ctx):
    """Apply mode of ``radiomics_models``: each fitted pipeline (skops, hash-checked) scores the new cohort's features."""
    from ...radiomics.persist import load_model

    run = ctx.config
    cohort = _applied_cohort(ctx.inputs["split"])
    scores = cohort[["case_id"]].copy()
    for key, m in run.study.app["models"].items():
        if m["kind"] != "radiomics":
            continue
        pipe, meta = load_model(run.study.file(m["file"]))
        im = m["images"]
        feats = ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id")
        scores[key] = pipe.predict_proba(feats.loc[cohort["case_id"].astype(str), meta["features"]])[:, 1]
    ctx.write_table("radiomics_scores", scores)


def apply_deep(images, arch):
    """Apply mode of ``deep_<images>_<arch>``: the saved CNN scores the new cohort's ROI crops."""
    mid = names.model_id(images, arch)

    def fn(ctx):
        run = ctx.config
        cohort = _applied_cohort(ctx.inputs["sr" if images == "sr" else "split"])
        s = deep_scores(run.study.file(run.study.app["models"][mid]["file"]), cohort, run.options.get("device", "auto"),
                        run.options.get("scheduler"))
        ctx.write_table("deep_scores", cohort[["case_id"]].assign(**{mid: s}))

    fn.__name__ = f"apply_deep_{mid}"
    return fn


def _deep_batch(model_dir, device, rows: pd.DataFrame, start: int) -> tuple:
    """The malignancy scores of ``rows`` (one inference batch) by the CNN saved in ``model_dir``."""
    from ...deep.model import DeepClassifier

    clf = DeepClassifier.load(model_dir, device=device)
    clf.progress = False
    return start, clf.predict_proba(rows)[:, 1]


def deep_scores(model_dir, cohort: pd.DataFrame, device, scheduler) -> np.ndarray:
    """A saved CNN's scores of every lesion: here, or one inference batch per task on a Dask cluster.

    The cluster's tasks are the local run's batches (``eval_batch_size`` lesions from the first), so
    every lesion meets the network beside the same lesions as locally.
    """
    from tqdm.auto import tqdm

    from ...deep.model import DeepClassifier
    from ...parallel import CHECKED_PACKAGES, imap_unordered, resolve_scheduler

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


APPLY_SPLIT_PINS = ()  # its warnings reach the board through the nomogram's apply half, with the score shifts
APPLY_NOMOGRAM_PINS = (  # in the report of `srnomogram validate` after the external statistics' pins
    Pin("external_scores", table="scores", title="Scores of every model, deep-learning score, clinical model and nomogram "
        "risk and points per lesion (the frozen study applied)", section="external", order=90, show=False),
    Pin("score_distribution", title="Score distributions: training against external (quantiles)", section="external", order=80),
    # shown as a list at the section's top; here named as its CSV
    Pin("warnings", title="Values outside the training ranges (clinical factors, image spacing and size, scores)",
        section="external", order=95, show=False),
)

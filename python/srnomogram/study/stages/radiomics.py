"""The radiomics stages: ``radiomics_or`` and ``radiomics_sr`` (PyRadiomics features) and
``radiomics_models`` (LR and SVM on them); in apply mode, the same extraction and the fitted pipelines' scores."""

from __future__ import annotations

from pathlib import Path

from ... import names
from ..cache import Pin
from ..freeze import load_cohort
from ._common import _applied_cohort, _write_timing


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
    from ...data.manifest import patient_ids
    from ...radiomics import fit_or_sr_models
    from ...radiomics.persist import save_model  # skops, hash-checked: what `validate` applies

    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"])
    patients = patient_ids(cohort).set_axis(cohort["case_id"]) if "patient_id" in cohort.columns else None
    cohort = cohort.set_index("case_id")
    feats = {im: ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id")
             for im in ("or", "sr") if f"radiomics_{im}" in ctx.inputs}
    res = fit_or_sr_models(cohort["label"], cohort["split"], feats["or"], feats.get("sr"), random_state=cfg.study.seed,
                           kinds=cfg.radiomics.models, folds=ctx.inputs["split"].table("folds"), groups=patients)
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

"""The ``sr`` stage: the SR GAN trained (on the training images, or label-free on every image) and
every image super-resolved; in apply mode, the study's generator on the new cohort."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..freeze import load_cohort, sr_region
from ._common import _seed_key

logger = logging.getLogger(__name__)


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

"""The ``deep_<images>_<arch>`` stages: one CNN each, cross-fitted and fitted on the training set; in apply
mode, the saved CNN's scores of the new cohort (here or on a Dask cluster)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ... import names
from ..cache import Pin
from ..freeze import load_cohort
from ._common import _applied_cohort, _scores_frame, _write_timing

logger = logging.getLogger(__name__)


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

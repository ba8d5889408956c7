"""One deep model end to end: train on the manifest's train split, score every lesion, write outputs.

What :func:`train_and_score` writes into ``out_dir``:

``scores.csv``           case_id, split, label, deep_score (malignant probability), model
``loss.csv``             iteration, epoch, loss (training cross-entropy per iteration; Figure 4)
``loss.png``             the same, with the per-epoch mean
``gradcam/*.png``        Grad-CAM of the last conv layer over the ROI, mask outlined (Figure 5)
``table2.csv``           Table 2 rows (AUC with DeLong CI, threshold metrics) via
                         :func:`srnomogram.metrics.table2_rows`
``checkpoint/``          ``model.pt`` (state_dict) + ``meta.json``
``config.json``          the resolved parameters

and, when ``board`` is given, the pins the study's ``deep_<images>_<arch>`` stage writes, under the
same names and schemas (:func:`result_pins`): ``scores_<model_id>`` (``case_id``, ``split``,
``label``, ``score``; e.g. ``scores_sr_mobilenet_v2``), ``loss_history_<model_id>`` and
``model_<model_id>``, with the parameters in the pins' metadata.

:func:`fit_and_score` is the one training routine: the study's CNN stages and ``srnomogram deep
train`` both call it (cross-fitting over given folds, then the full-training-set model).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..errors import InputError, param_error
from ..utils import atomic_path, write_csv_atomic
from .gradcam import save_overlays
from .model import DeepClassifier

log = logging.getLogger(__name__)


def model_id(est: DeepClassifier) -> str:
    """The model's id: ``sr_mobilenet_v2`` for ``arch="mobilenet_v2"`` on ``image_sr``."""
    return names.model_id(names.images_of(est.image_col), est.arch)


def meta_table(meta: dict) -> pd.DataFrame:
    """A checkpoint's ``meta.json`` as one flat row (nested keys joined by dots; lists as JSON): the ``model_<model_id>`` pin."""

    def flat(d, prefix=""):
        out = {}
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            elif isinstance(v, (list, tuple)):
                out[f"{prefix}{k}"] = json.dumps(v)
            else:
                out[f"{prefix}{k}"] = v
        return out

    return pd.DataFrame([flat(meta)])


def result_pins(mid: str, scores: pd.DataFrame, loss: pd.DataFrame, meta: dict) -> dict:
    """The pins of one trained CNN, by name: ``scores_<mid>``, ``loss_history_<mid>``, ``model_<mid>``.

    Parameters
    ----------
    mid : str
        Model id (:func:`model_id`).
    scores : pandas.DataFrame
        ``case_id``, ``split``, ``label`` and a column ``mid`` (the full-training-set model's scores).
    loss : pandas.DataFrame
        :func:`loss_table`.
    meta : dict
        The checkpoint's ``meta.json``.
    """
    from ..board import model_scores, scores_pin_name

    return {scores_pin_name(mid): model_scores(scores, mid), f"loss_history_{mid}": loss, f"model_{mid}": meta_table(meta)}


def fit_and_score(est: DeepClassifier, cohort: pd.DataFrame, image_col: str | None = None, *, folds: pd.DataFrame | None = None, cache=None, label: str = "") -> dict:
    """Cross-fit (with ``folds``), then fit ``est`` on the training split and score every lesion.

    Parameters
    ----------
    est : DeepClassifier
        Unfitted; fitted in place on the lesions with ``split == "train"``.
    cohort : pandas.DataFrame
        A manifest with ``split``.
    image_col : str, optional
        ``image`` (OR) or ``image_sr`` (SR); sets ``est``'s ``image_col`` when given (default: its own).
    folds : pandas.DataFrame, optional
        Cross-fitting folds of the training lesions (:func:`~srnomogram.validation.training_folds`).
    cache : srnomogram.validation.FoldCache, optional
        Finished folds, so that a killed run resumes at the fold it was in.
    label : str
        Name in the log.

    Returns
    -------
    dict
        ``estimator``, ``rois`` (:class:`~srnomogram.deep.data.RoiSet` of every lesion), ``score``
        (the full-training-set model's malignant probability per lesion), ``score_oof`` (training
        rows out-of-fold, test rows as ``score``; None without ``folds``) and ``timing``
        (``cross_fit_s``, ``full_fit_s``).
    """
    import time

    from ..validation import cross_fit, folds_of

    if image_col is not None:
        est.set_params(image_col=image_col)
    # every ROI read once; the k fold models and the full model train on subsets of this tensor
    rois = est._rois(cohort)
    train = (cohort["split"] == "train").to_numpy()
    if not train.any():
        raise InputError("The manifest's split column has no 'train' row.")
    y = cohort["label"].to_numpy()
    t0 = time.perf_counter()
    oof = None
    if folds is not None:
        oof = np.full(len(cohort), np.nan)
        tr = rois.subset(train)
        oof[train] = cross_fit(est, tr, y[train], folds_of(folds, tr.case_ids), ids=tr.case_ids, cache=cache, label=label)
    t1 = time.perf_counter()
    est.fit(rois.subset(train))
    proba = est.predict_proba(rois)[:, 1]
    t2 = time.perf_counter()
    if oof is not None:
        oof[~train] = proba[~train]
    return {"estimator": est, "rois": rois, "score": proba, "score_oof": oof, "timing": {"cross_fit_s": t1 - t0, "full_fit_s": t2 - t1}}


def loss_table(est: DeepClassifier) -> pd.DataFrame:
    """Per-iteration training loss as a tidy table (iteration from 1)."""
    return pd.DataFrame({"iteration": np.arange(1, len(est.loss_history_) + 1), "epoch": est.epoch_of_iteration_ + 1, "loss": est.loss_history_.astype(float)})


def plot_loss(loss: pd.DataFrame, path, title: str = "") -> Path:
    """Loss per iteration (the paper's Figure 4) with the per-epoch mean; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=150)
    ax = fig.subplots()
    ax.plot(loss["iteration"], loss["loss"], lw=0.6, color="0.6", label="iteration")
    per_epoch = loss.groupby("epoch").agg(iteration=("iteration", "max"), loss=("loss", "mean"))
    ax.plot(per_epoch["iteration"], per_epoch["loss"], lw=1.5, color="C0", label="epoch mean")
    ax.set_xlabel("Iteration")
    ax.set_ylabel("Training loss (cross-entropy)")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _table2(name, scores: pd.DataFrame):
    """Table 2 rows through the metrics module (None with a warning when it is unavailable)."""
    try:
        from ..metrics import table2_rows
    except ImportError:  # pragma: no cover - only in a partial install
        log.warning("srnomogram.metrics is not available; table2.csv not written")
        return None
    tr, te = scores[scores["split"] == "train"], scores[scores["split"] == "test"]
    if te["label"].nunique() < 2 or tr["label"].nunique() < 2:
        log.warning("table2.csv not written: the train or test split lacks one class")
        return None
    return table2_rows(name, tr["label"].to_numpy(), tr["deep_score"].to_numpy(), te["label"].to_numpy(), te["deep_score"].to_numpy())


PIN_TITLES = {"scores": "deep-learning scores", "loss_history": "training loss", "model": "fitted-model metadata"}


def train_and_score(manifest, out_dir, *, name=None, board=None, gradcam="test", folds=None, **params) -> dict:
    """Train a :class:`DeepClassifier` on the train split and write scores, loss, Grad-CAM and checkpoint.

    Parameters
    ----------
    manifest : path-like or pandas.DataFrame
        A manifest with a ``split`` column (``srnomogram cohort split``).
    out_dir : path-like
    name : str, optional
        Model name in the outputs; default the paper's label (``SRMobileNet_v2``;
        :func:`srnomogram.names.label` with ``style="paper"``).
    board : path-like, optional
        A pins board; the scores, loss and model metadata go there as the study writes them
        (:func:`result_pins`).
    gradcam : {"test", "all", "none"} or int
        Lesions to draw Grad-CAM for: the test split, all, none, or the first N test lesions.
    folds : int or pandas.DataFrame, optional
        Cross-fit first: k stratified folds of the training lesions (seeded with ``seed``) or a
        :func:`~srnomogram.validation.training_folds` table; ``scores.csv`` then has a
        ``deep_score_oof`` column (training rows out-of-fold).
    **params
        :class:`DeepClassifier` parameters (``image_col="image_sr"`` for the SR model).

    Returns
    -------
    dict
        ``estimator``, ``scores`` (DataFrame), ``table2`` (DataFrame or None) and the written ``paths``.
    """
    from ..data.manifest import load_manifest

    df = manifest if isinstance(manifest, pd.DataFrame) else load_manifest(manifest)
    if "split" not in df.columns:
        raise InputError("The manifest has no 'split' column; write one with 'srnomogram cohort split MANIFEST'.")
    if not (isinstance(gradcam, (int, np.integer)) and gradcam >= 0) and gradcam not in ("test", "all", "none"):
        raise param_error("gradcam", "train_and_score", "'test', 'all', 'none' or an int >= 0", gradcam)
    est = DeepClassifier(**params)
    est._check_params()
    image_col = est.image_col
    name = name or names.label(model_id(est), style="paper")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        from ..validation import training_folds

        folds = training_folds(df, n_splits=int(folds), seed=int(est.seed))
    is_train = (df["split"] == "train").to_numpy()
    log.info("%s: training on %d lesions (%s)", name, int(is_train.sum()), image_col)
    fitted = fit_and_score(est, df, folds=folds, label=name)
    rois, proba = fitted["rois"], fitted["score"]
    scores = pd.DataFrame({"case_id": rois.case_ids, "split": df["split"].to_numpy(), "label": df["label"].to_numpy(), "deep_score": proba, "model": name})
    if fitted["score_oof"] is not None:
        scores["deep_score_oof"] = fitted["score_oof"]
    paths = {"scores": write_csv_atomic(scores, out / "scores.csv")}
    loss = loss_table(est)
    paths["loss"] = write_csv_atomic(loss, out / "loss.csv")
    paths["loss_plot"] = plot_loss(loss, out / "loss.png", title=f"{name}: training loss")
    paths["checkpoint"] = est.save(out / "checkpoint")
    config = {"name": name, "image_col": image_col, "params": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in est.get_params().items()}, "roi": est.roi_meta_}
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1), encoding="utf-8")
    paths["config"] = out / "config.json"
    table2 = _table2(model_id(est), scores)
    if table2 is not None:
        table2.insert(1, "label", name)  # keyed by the model id; the label is the run's name
        paths["table2"] = write_csv_atomic(table2, out / "table2.csv")
    if gradcam != "none" and gradcam != 0:
        sel = ~is_train if gradcam != "all" else np.ones(len(df), bool)
        idx = np.flatnonzero(sel)
        if isinstance(gradcam, (int, np.integer)):
            idx = idx[: int(gradcam)]
        if len(idx):
            res = est.gradcam(rois.subset(idx))
            paths["gradcam"] = save_overlays(res, out / "gradcam")
    if board is not None:
        from ..board import write_pin

        mid = model_id(est)
        meta = json.loads((out / "checkpoint" / "meta.json").read_text(encoding="utf-8"))
        wide = scores[["case_id", "split", "label"]].assign(**{mid: proba})
        pin_meta = {"model": name, "image_col": image_col, **config["params"], "loss_final_epoch": float(loss[loss.epoch == loss.epoch.max()].loss.mean())}
        paths["pins"] = {
            pin: f"{pin}@{write_pin(board, pin, frame, metadata=pin_meta, title=f'{name} {PIN_TITLES[pin[: -len(mid) - 1]]}')}"
            for pin, frame in result_pins(mid, wide, loss, meta).items()
        }
    return {"estimator": est, "scores": scores, "table2": table2, "paths": paths}

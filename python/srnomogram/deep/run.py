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

and, when ``board`` is given, the scores as pin ``deep_scores_<model id>`` (e.g.
``deep_scores_sr_mobilenet_v2``; :func:`srnomogram.names.model_id`) with the parameters in the pin's
metadata.
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


def pin_name(est: DeepClassifier) -> str:
    """``deep_scores_sr_mobilenet_v2``: the pin of the model's scores."""
    return "deep_scores_" + model_id(est)


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


def train_and_score(manifest, out_dir, *, name=None, board=None, gradcam="test", **params) -> dict:
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
        The study's pins board; the scores go there as ``deep_scores_<model id>``.
    gradcam : {"test", "all", "none"} or int
        Lesions to draw Grad-CAM for: the test split, all, none, or the first N test lesions.
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
    rois = est._rois(df)
    is_train = (df["split"] == "train").to_numpy()
    if not is_train.any():
        raise InputError("The manifest's split column has no 'train' row.")
    log.info("%s: training on %d lesions (%s)", name, int(is_train.sum()), image_col)
    est.fit(rois.subset(is_train))
    proba = est.predict_proba(rois)[:, 1]
    scores = pd.DataFrame({"case_id": rois.case_ids, "split": df["split"].to_numpy(), "label": df["label"].to_numpy(), "deep_score": proba, "model": name})
    paths = {"scores": write_csv_atomic(scores, out / "scores.csv")}
    loss = loss_table(est)
    paths["loss"] = write_csv_atomic(loss, out / "loss.csv")
    paths["loss_plot"] = plot_loss(loss, out / "loss.png", title=f"{name}: training loss")
    paths["checkpoint"] = est.save(out / "checkpoint")
    config = {"name": name, "image_col": image_col, "params": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in est.get_params().items()}, "roi": est.roi_meta_}
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1), encoding="utf-8")
    paths["config"] = out / "config.json"
    table2 = _table2(name, scores)
    if table2 is not None:
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

        version = write_pin(board, pin_name(est), scores, metadata={"model": name, "image_col": image_col, **config["params"], "loss_final_epoch": float(loss[loss.epoch == loss.epoch.max()].loss.mean())}, title=f"{name} deep-learning scores")
        paths["pin"] = f"{pin_name(est)}@{version}"
    return {"estimator": est, "scores": scores, "table2": table2, "paths": paths}

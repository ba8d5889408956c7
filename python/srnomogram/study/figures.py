"""Publication figures of a study.

Figures 3, 6 and 7, the statistics, are drawn in R, as the paper drew them: the R package's ggplot2
functions (``roc_plot``, ``nomogram_plot`` of the rms nomogram, ``calibration_plot``, ``dca_plot``)
through ``board_figures()``, from the study's board (:func:`r_figures`). matplotlib draws the image
and training panels: Figure 4 (CNN loss), Figure 5 (Grad-CAM) and the repeated-splits figure.
:func:`study_figures` draws them all from a board, for the report and for
``inst/scripts/figures_from_board.py``; in R, ``study_figures(board, out_dir)`` does the same.

Figure 3: ROC curves of the radiomics and deep-learning models (train, test).
Figure 4: training loss of the CNNs.
Figure 5: Grad-CAM of test lesions (from the deep stages' ``gradcam.npz``).
Figure 6: the deep-learning nomogram (rms points scales).
Figure 7: clinical model vs nomogram: ROC, calibration and decision curves (with bootstrap bands), train and test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..names import label as model_label


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _roc_xy(y, s):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


R_FIGURES = ("figure3_roc_models", "figure6_nomogram", "figure7_validation")
#: The pin each R figure starts from (the study has the figure when it declares this pin).
R_FIGURE_PIN = {"figure3_roc_models": "scores", "figure6_nomogram": "nomogram_points", "figure7_validation": "predictions"}
#: The report's figures, in order; ``figure_repeated_splits`` is shown in the repeated-splits section.
FIGURES = ("figure3_roc_models", "figure4_loss", "figure5_gradcam", "figure6_nomogram", "figure7_validation",
           "figure_repeated_splits")


def study_figures(board, folder, formats=("png", "pdf"), pins=None, labels: dict | None = None) -> dict:
    """Every figure of a study, drawn from its board alone; returns ``{name: path of the first format}``.

    The one function behind the report's ``figures/`` and ``inst/scripts/figures_from_board.py``:
    Figures 3, 6 and 7 in R (:func:`r_figures`); Figure 4 from the ``loss_history_<model>`` pins,
    Figure 5 from the ``gradcam_<model>`` file pins, and the repeated-splits figure from the
    ``repeated_splits`` pin, with matplotlib. ``pins`` limits the figures to those pins (the pins
    this run's stages declare: a board keeps an earlier run's pins too); None uses the whole board.
    ``labels`` adds display names for R (see :func:`r_figures`); model legends come from model ids
    through :func:`srnomogram.names.label`, and in R from the ``model_labels`` pin.
    """
    from ..board import list_pins, read_file_pin, read_pin
    from ..names import labels as model_labels

    board, folder = Path(board), Path(folder)
    have = set(list_pins(board)) if board.is_dir() else set()
    usable = have if pins is None else have & set(pins)
    formats = tuple(dict.fromkeys(formats))
    made = r_figures(board, folder, labels, formats, names=[n for n in R_FIGURES if R_FIGURE_PIN[n] in usable])

    def keep(name, fig):
        if fig is not None:
            folder.mkdir(parents=True, exist_ok=True)
            made[name] = save(fig, folder / name, formats=formats)[0]

    loss = sorted(p for p in usable if p.startswith("loss_history_"))
    if loss:
        keep("figure4_loss", figure4_loss(pd.concat([read_pin(board, p).assign(model=model_label(p[len("loss_history_"):]))
                                                     for p in loss], ignore_index=True)))
    maps = sorted(p for p in usable if p.startswith("gradcam_"))
    if maps:
        keep("figure5_gradcam", figure5_gradcam({model_label(p[len("gradcam_"):]): read_file_pin(board, p) for p in maps}))
    if "repeated_splits" in usable:
        keep("figure_repeated_splits", figure_repeated_splits(read_pin(board, "repeated_splits"), model_labels()))
    return {n: made[n] for n in FIGURES if n in made}


def r_figures(board, folder, labels: dict | None = None, formats=("png", "pdf"), names=R_FIGURES) -> dict:
    """Figures 3, 6 and 7 drawn in R (ggplot2) from a study's board; returns ``{name: path}``.

    Calls the R package's ``board_figures()`` through :mod:`srnomogram.stats`: it reads the pins
    (``scores``, ``model_aucs``, ``nomogram_points``, ``predictions``, ``calibration``,
    ``calibration_summary``, ``hosmer_lemeshow``, ``decision_curves``) and writes
    ``folder/<name>.<format>`` (PNG at 300 dpi, PDF) atomically. A figure whose pins are not on the
    board is skipped, and so is one not in ``names``. ``labels`` maps model columns and predictors
    to display names (``{"or_lr": "OR-LR", "age": "Age (years)"}``); the path returned is the
    first format's.
    """
    from .. import stats

    if not names:
        return {}
    paths = stats.call("board_figures", str(board), str(folder), labels={str(k): str(v) for k, v in (labels or {}).items()},
                       formats=list(formats), names=list(names))
    if isinstance(paths, pd.Series):
        return {str(k): Path(v) for k, v in paths.items()}
    return {}


def figure4_loss(loss: pd.DataFrame):
    """Training cross-entropy per iteration of each CNN (``model``, ``iteration``, ``loss``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, part in loss.groupby("model", sort=False):
        ax.plot(part["iteration"], part["loss"], lw=1, label=m)
    ax.set(xlabel="Iteration", ylabel="Training loss (cross-entropy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure5_gradcam(npz_files: dict):
    """Grad-CAM heat maps over the ROI for a few test lesions, one row per CNN."""
    plt = _plt()
    loaded = {k: np.load(v) for k, v in npz_files.items() if Path(v).exists()}
    if not loaded:
        return None
    ncol = max(len(d["case_id"]) for d in loaded.values())
    fig, axes = plt.subplots(len(loaded), ncol, figsize=(2.2 * ncol, 2.3 * len(loaded)), squeeze=False)
    for r, (name, d) in enumerate(loaded.items()):
        for c in range(ncol):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(d["case_id"]):
                continue
            ax.imshow(d["image"][c], cmap="gray")
            ax.imshow(d["cam"][c], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.set_title(f"{name}\n{d['case_id'][c]}", fontsize=7)
    fig.tight_layout()
    return fig


def figure_repeated_splits(rows: pd.DataFrame, labels: dict):
    """Test AUC of every model, the clinical model and the nomogram across split seeds (one dot per
    seed, ringed where the model was chosen; bar: the mean). ``rows`` is ``repeated_splits.csv``."""
    plt = _plt()
    per_seed = rows.drop_duplicates("seed")
    series = [(labels.get(m, m), g["test_auc"].to_numpy(), g["chosen"].astype(bool).to_numpy()) for m, g in rows.groupby("model", sort=False)]
    series += [(model_label(m), per_seed[f"{m}_test_auc"].to_numpy(), None) for m in ("clinical", "nomogram")]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(series) + 1.5), 4.2))
    rng = np.random.default_rng(0)
    for i, (name, v, chosen) in enumerate(series):
        x = i + rng.uniform(-0.15, 0.15, len(v))
        ax.scatter(x, v, s=14, alpha=0.75, color="C0" if chosen is not None else "C3", zorder=2)
        if chosen is not None and chosen.any():
            ax.scatter(x[chosen], v[chosen], s=46, facecolors="none", edgecolors="k", lw=0.8, zorder=3)
        ax.plot([i - 0.3, i + 0.3], [np.nanmean(v)] * 2, color="k", lw=1.6, zorder=4)
    ax.axhline(0.5, ls=":", c="grey", lw=1)
    ax.set_xticks(range(len(series)), [s[0] for s in series], rotation=35, ha="right")
    ax.set(ylabel="Test AUC", title=f"Test AUC over {per_seed['seed'].nunique()} split seeds (ring: chosen model)")
    fig.tight_layout()
    return fig


def save(fig, stem, formats=("png", "pdf")) -> list[Path]:
    """Write ``stem.png`` / ``stem.pdf`` (atomic) and close the figure."""
    from ..utils import atomic_path

    out = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150 if fmt == "png" else None, format=fmt, bbox_inches="tight")
        out.append(path)
    _plt().close(fig)
    return out

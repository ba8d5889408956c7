"""Publication figures of a study, every one drawn in R from the study's board.

The R package draws them with ggplot2 (``roc_plot``, ``nomogram_plot`` of the rms nomogram,
``calibration_plot``, ``dca_plot``, and the loss, Grad-CAM and repeated-splits panels) in its
``study_figures()``, from the board's pins alone; :func:`study_figures` calls it for the report, and
``inst/scripts/figures_from_board.py`` / ``figures_from_board.R`` call the same function, so each
figure is assembled once. The matplotlib helpers below (:func:`save`) serve the external
validation's figures.

Figure 3: ROC curves of the radiomics and deep-learning models (train, test).
Figure 4: training loss of the CNNs (pins ``loss_history_<model>``).
Figure 5: Grad-CAM of test lesions (file pins ``gradcam_<model>``, the deep stages' ``gradcam.npz``).
Figure 6: the deep-learning nomogram (rms points scales).
Figure 7: clinical model vs nomogram: ROC, calibration and decision curves (with bootstrap bands), train and test.
Repeated splits: test AUC of every model over split seeds (pin ``repeated_splits``).
IECV: forest plots of the held-out AUC, calibration-in-the-large and slope across centres (declared beside the
stage that pins their data, :data:`srnomogram.study.iecv.IECV_FIGURES`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .iecv import IECV_FIGURE_PINS, IECV_FIGURES


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _roc_xy(y, s):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


#: The study's figures, in the report's order, all drawn in R from the board (``study_figures()``);
#: ``figure_repeated_splits`` is shown in the report's repeated-splits section, the IECV forest plots in its own.
FIGURES = ("figure3_roc_models", "figure4_loss", "figure5_gradcam", "figure6_nomogram", "figure7_validation",
           "figure_repeated_splits", *IECV_FIGURES)
#: The report's titles of the paper's figures (the IECV figures' titles: :data:`IECV_FIGURES`).
FIGURE_TITLES = {
    "figure3_roc_models": "Figure 3. ROC curves of the radiomics and deep-learning models",
    "figure4_loss": "Figure 4. Training loss of the CNNs",
    "figure5_gradcam": "Figure 5. Grad-CAM of test lesions",
    "figure6_nomogram": "Figure 6. Deep-learning nomogram",
    "figure7_validation": "Figure 7. ROC, calibration and decision curves: clinical model vs nomogram",
}
#: The pins each figure needs; a name ending in ``_`` is a prefix (one pin per model, at least one).
FIGURE_PINS = {
    "figure3_roc_models": ("scores", "model_aucs"),
    "figure4_loss": ("loss_history_",),
    "figure5_gradcam": ("gradcam_",),
    "figure6_nomogram": ("nomogram_points",),
    "figure7_validation": ("predictions", "calibration", "calibration_summary", "hosmer_lemeshow", "decision_curves"),
    "figure_repeated_splits": ("repeated_splits",),
    **dict.fromkeys(IECV_FIGURES, IECV_FIGURE_PINS),
}


def _has_pins(name: str, pins) -> bool:
    return all(any(p.startswith(need) for p in pins) if need.endswith("_") else need in pins for need in FIGURE_PINS[name])


def study_figures(board, folder, formats=("png", "pdf"), pins=None, labels: dict | None = None) -> dict:
    """Every figure of a study, drawn from its board alone; returns ``{name: path of the first format}``.

    The one function behind the report's ``figures/`` and ``inst/scripts/figures_from_board.py``: it
    calls the R package's ``study_figures()`` (through :mod:`srnomogram.stats`), which R users call
    themselves (``inst/scripts/figures_from_board.R``). ``pins`` limits the figures to those pins (the
    pins this run's stages declare: a board keeps an earlier run's pins too); None uses the whole
    board. A figure whose pins are absent is skipped. ``labels`` adds display names (see
    :func:`r_figures`); models take theirs from the ``model_labels`` pin, by id.
    """
    from ..board import list_pins

    board = Path(board)
    have = set(list_pins(board)) if board.is_dir() else set()
    usable = have if pins is None else have & set(pins)
    wanted = [n for n in FIGURES if _has_pins(n, usable)]
    return r_figures(board, folder, labels, tuple(dict.fromkeys(formats)), names=wanted,
                     pins=None if pins is None else sorted(usable))


def r_figures(board, folder, labels: dict | None = None, formats=("png", "pdf"), names=FIGURES, pins=None) -> dict:
    """Figures drawn in R (ggplot2) from a study's board; returns ``{name: path}``.

    Calls the R package's ``study_figures()`` through :mod:`srnomogram.stats`: it reads the pins
    (``scores``, ``model_aucs``, ``model_labels``, ``loss_history_<model>``, ``gradcam_<model>``,
    ``nomogram_points``, ``predictions``, ``calibration``, ``calibration_summary``,
    ``hosmer_lemeshow``, ``decision_curves``, ``repeated_splits``, ``iecv_centres``, ``iecv_pooled``) and writes
    ``folder/<name>.<format>`` (PNG at 300 dpi, PDF) atomically. A figure whose pins are not on the
    board (or not among ``pins``) is skipped, and so is one not in ``names``. ``labels`` maps model
    ids and predictors to display names (``{"age": "Age (years)"}``); the path returned is the
    first format's.
    """
    from .. import stats

    if not names:
        return {}
    kw = {} if pins is None else {"pins": [str(p) for p in pins]}
    paths = stats.call("study_figures", str(board), str(folder), labels={str(k): str(v) for k, v in (labels or {}).items()},
                       formats=list(formats), names=list(names), **kw)
    if isinstance(paths, pd.Series):
        return {str(k): Path(v) for k, v in paths.items()}
    return {}


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

"""Publication figures from the board's tables (matplotlib; the R package draws the same in ggplot2).

Each function takes the tables as the board holds them (``read_pin`` output) and returns a
matplotlib Figure; :func:`save` writes it as PNG and/or PDF. ``inst/scripts/figure*.py`` call
these on a finished study's board.

Figure 3: ROC curves of the 8 models (train, test).
Figure 4: training loss of the CNNs.
Figure 5: Grad-CAM of test lesions (from the deep stages' ``gradcam.npz``).
Figure 6: the deep-learning nomogram (points scales).
Figure 7: clinical model vs nomogram: ROC, calibration and decision curves (with bootstrap bands), train and test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _roc_xy(y, s):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def figure3_roc(scores: pd.DataFrame, aucs: pd.DataFrame, labels: dict):
    """ROC curves of every model, train and test panels; legend with AUC."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    models = [m for m in labels if m in scores.columns]
    for ax, s in zip(axes, ("train", "test")):
        part = scores[scores["split"] == s]
        for m in models:
            fpr, tpr = _roc_xy(part["label"], part[m])
            a = aucs.loc[aucs["model"] == m, f"{s}_auc"]
            ax.plot(fpr, tpr, lw=1.4, label=f"{labels[m]} (AUC {float(a.iloc[0]):.3f})")
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
        ax.set(title=f"{s.capitalize()} set", xlabel="1 - specificity", ylabel="Sensitivity", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


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


def figure6_nomogram(points: pd.DataFrame, labels: dict | None = None):
    """The nomogram drawn from its points table (R's ``nomogram_points_table``)."""
    plt = _plt()
    labels = labels or {}
    axes_rows = points[points["axis"].isin(["predictor", "total_points", "risk"])]
    groups = list(dict.fromkeys(axes_rows["variable"]))
    fig, ax = plt.subplots(figsize=(8, 0.8 * (len(groups) + 1) + 0.6))
    ax.set_xlim(-0.28, 1.02)
    y = len(groups)
    ax.text(-0.27, y, "Points", va="center", fontsize=9)
    ax.plot([0, 1], [y, y], c="k", lw=1)
    for t in np.linspace(0, 100, 11):
        ax.plot([t / 100] * 2, [y, y + 0.12], c="k", lw=0.8)
        ax.text(t / 100, y + 0.2, f"{t:g}", ha="center", fontsize=7)
    tot = axes_rows[axes_rows["axis"] == "total_points"]
    tot_max = float(tot["points"].max()) if len(tot) else 100.0
    for i, g in enumerate(groups):
        yy = len(groups) - 1 - i
        part = axes_rows[axes_rows["variable"] == g]
        kind = part["axis"].iloc[0]
        pts = part["points"].to_numpy(dtype=float)
        x = pts / 100.0 if kind == "predictor" else pts / tot_max
        ax.plot([x.min(), x.max()], [yy, yy], c="k", lw=1)
        last = -np.inf
        for xi, v in zip(x, part["value"]):
            ax.plot([xi, xi], [yy, yy + 0.12], c="k", lw=0.8)
            try:
                txt = f"{float(v):g}"
            except ValueError:
                txt = str(v)
            if abs(xi - last) >= 0.035:  # skip labels that would overlap on a short axis
                ax.text(xi, yy + 0.2, txt, ha="center", fontsize=7)
                last = xi
        ax.text(-0.27, yy, labels.get(g, g), va="center", fontsize=9)
    ax.set_ylim(-0.6, len(groups) + 0.6)
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure7_validation(predictions: pd.DataFrame, calibration: pd.DataFrame, dca: pd.DataFrame, roc: pd.DataFrame):
    """Clinical model vs nomogram: ROC, calibration and decision curves (rows), train and test (columns).

    Where ``dca`` holds bootstrap bounds (``NB_lower``, ``NB_upper``), each model's decision curve is
    drawn with its band, labelled with the table's ``conf_level`` when it has one.
    """
    plt = _plt()
    cl = dca["conf_level"].dropna() if "conf_level" in dca.columns else pd.Series(dtype=float)
    level = f"{100 * float(cl.iloc[0]):g}" if len(cl) else None
    fig, axes = plt.subplots(3, 2, figsize=(10, 12))
    names = {"clinical": "Clinical model", "nomogram": "Nomogram"}
    for j, s in enumerate(("train", "test")):
        part = predictions[predictions["split"] == s]
        ax = axes[0, j]
        for m in names:
            fpr, tpr = _roc_xy(part["label"], part[f"risk_{m}"])
            a = roc[(roc["set"] == s) & (roc["model"] == m)]["auc"]
            ax.plot(fpr, tpr, label=f"{names[m]} (AUC {float(a.iloc[0]):.3f})")
        ax.plot([0, 1], [0, 1], ls=":", c="grey")
        ax.set(title=f"ROC, {s} set", xlabel="1 - specificity", ylabel="Sensitivity")
        ax.legend(fontsize=8, loc="lower right")
        ax = axes[1, j]
        cal = calibration[calibration["set"] == s]
        for m in names:
            c = cal[cal["model"] == m]
            xcol = "predicted" if "predicted" in c.columns else c.columns[0]
            for col, ls in (("bias_corrected", "-"), ("apparent", "--"), ("smoothed", "-")):
                if col in c.columns and c[col].notna().any():
                    ax.plot(c[xcol], c[col], ls=ls, label=f"{names[m]} ({col.replace('_', '-')})")
        ax.plot([0, 1], [0, 1], ls=":", c="grey", label="Ideal")
        ax.set(title=f"Calibration, {s} set", xlabel="Predicted probability", ylabel="Observed probability", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
        ax = axes[2, j]
        d = dca[dca["set"] == s]
        tcol = "thresholds" if "thresholds" in d.columns else "threshold"
        # rmda's curve names: the model's formula, "All" and "None" (which CSV readers turn into NA)
        curve = d["curve"].fillna("None").astype(str) if "curve" in d.columns else pd.Series("~", index=d.index)
        for m in names:
            c = d[(d["model"] == m) & curve.str.contains("~", regex=False)]
            (line,) = ax.plot(c[tcol], c["NB"], label=names[m])
            if {"NB_lower", "NB_upper"} <= set(c.columns) and c["NB_lower"].notna().any():
                # bootstrap percentile band of the net benefit (decision_curve's NB_lower/NB_upper)
                ax.fill_between(c[tcol], c["NB_lower"], c["NB_upper"], color=line.get_color(), alpha=0.18, lw=0,
                                label=f"{names[m]} ({level}% CI)" if level else f"{names[m]} (bootstrap band)")
        allrows = d[(curve == "All") & (d["model"] == "nomogram")]
        if len(allrows):
            ax.plot(allrows[tcol], allrows["NB"], c="grey", lw=1, label="Treat all")
        ax.axhline(0, c="k", lw=1, label="Treat none")
        prev = part["label"].mean()
        ax.set(title=f"Decision curve, {s} set", xlabel="Threshold probability", ylabel="Net benefit", ylim=(-0.05, max(0.1, prev + 0.05)))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_repeated_splits(rows: pd.DataFrame, labels: dict):
    """Test AUC of every model, the clinical model and the nomogram across split seeds (one dot per
    seed, ringed where the model was chosen; bar: the mean). ``rows`` is ``repeated_splits.csv``."""
    plt = _plt()
    per_seed = rows.drop_duplicates("seed")
    series = [(labels.get(m, m), g["test_auc"].to_numpy(), g["chosen"].astype(bool).to_numpy()) for m, g in rows.groupby("model", sort=False)]
    series += [("Clinical model", per_seed["clinical_test_auc"].to_numpy(), None), ("Nomogram", per_seed["nomogram_test_auc"].to_numpy(), None)]
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

"""Every figure drawn in R from a study's board: the two inst/scripts, and the plotted numbers.

A tiny study (radiomics only, 60 demo lesions, about 15 s) writes a real board; both scripts redraw
the report's figures from it, and the data of the ggplot layers are compared with the board's pins.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srnomogram.board import read_pin, write_file_pin, write_pin

from .conftest import run_small_study

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "inst" / "scripts"
R_FIGURES = ("figure3_roc_models", "figure6_nomogram", "figure7_validation")
# srn_palette(): the first model of a panel is drawn in Okabe-Ito blue, the second in vermilion
BLUE, VERMILION = "#0072B2", "#D55E00"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("fig_study")
    report = run_small_study(root, {
        "study": {"name": "tiny"},
        "cohort": {"clinical_labels": {"age": "Age (years)"}},
        "sr": {"enabled": False},
        "radiomics": {"jobs": 1},
        "deep": {"enabled": False},
        "validation": {"folds": 3},
        "nomogram": {"calibration_b": 20, "dca_bootstraps": 20, "alpha": 0.1},
    }, n=60)
    return root / "out", report


def _png_size(path):
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _assert_pdf(path):
    data = Path(path).read_bytes()
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-64:], f"{path} is not a complete PDF"


def test_report_figures_3_6_7_come_from_r_and_the_methods_say_so(study):
    out, report = study
    # 300 dpi: 11 x 5.6 in, 8 in x 0.42 in per nomogram axis (6 axes + 1), 10 x 14 in
    sizes = {"figure3_roc_models": (3300, 1680), "figure6_nomogram": (2400, 882), "figure7_validation": (3000, 4200)}
    for name in R_FIGURES:
        assert _png_size(out / "figures" / f"{name}.png") == sizes[name]
        _assert_pdf(out / "figures" / f"{name}.pdf")
    text = report.read_text(encoding="utf-8")
    assert "Figures 3, 6 and 7 were drawn in R" in text and "with ggplot2 3." in text
    assert "nomogram_plot for the rms" in text and "inst/scripts/figures_from_board.R" in text


@pytest.mark.parametrize("script", ["figures_from_board.R", "figures_from_board.py"])
def test_scripts_rebuild_every_figure_from_the_board(study, tmp_path, script):
    out, _ = study
    board = tmp_path / "board"
    shutil.copytree(out / "board", board)  # the board alone (no stages/ or tables/ beside it)
    # the pins of a study with a CNN and repeated splits (figures 4, 5 and the repeated-splits figure)
    write_pin(board, "loss_history_or_mobilenet_v2", pd.DataFrame({"iteration": [1, 2, 3], "loss": [0.7, 0.6, 0.5]}))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "gradcam.npz", case_id=np.array(["demo001", "demo002"]), image=rng.random((2, 16, 16)),
             cam=rng.random((2, 16, 16)), mask=np.ones((2, 16, 16), dtype=bool))
    write_file_pin(board, "gradcam_or_mobilenet_v2", tmp_path / "gradcam.npz")
    write_pin(board, "repeated_splits", pd.DataFrame({
        "seed": [0, 0, 1, 1], "model": ["or_lr", "or_svm"] * 2, "test_auc": [0.8, 0.7, 0.75, 0.85],
        "chosen": [True, False, False, True], "clinical_test_auc": [0.7, 0.7, 0.72, 0.72],
        "nomogram_test_auc": [0.85, 0.85, 0.8, 0.8]}))
    cmd = ["Rscript", str(SCRIPTS / script)] if script.endswith(".R") else [sys.executable, str(SCRIPTS / script)]
    res = subprocess.run([*cmd, str(board), str(tmp_path / "figs")], capture_output=True, encoding="utf-8", timeout=300,
                         cwd=REPO, env={**os.environ, "MPLBACKEND": "Agg"})
    assert res.returncode == 0, res.stderr[-2000:]
    # both scripts call the one function that draws every figure (R's study_figures), so both give all six
    names = [*R_FIGURES, "figure4_loss", "figure5_gradcam", "figure_repeated_splits"]
    listed = {Path(line).name for line in res.stdout.split()}
    sizes = {"figure4_loss": (1800, 1200), "figure5_gradcam": (1320, 690), "figure_repeated_splits": (1530, 1260)}
    for name in names:
        assert {f"{name}.png", f"{name}.pdf"} <= listed
        if name in R_FIGURES:  # the same figure as the report's, drawn from the board alone
            assert _png_size(tmp_path / "figs" / f"{name}.png") == _png_size(out / "figures" / f"{name}.png")
        else:  # 300 dpi: 6 x 4 in; 2.2 in per lesion x 2.3 in per CNN; max(5, 0.9 x 4 series + 1.5) x 4.2 in
            assert _png_size(tmp_path / "figs" / f"{name}.png") == sizes[name]
        _assert_pdf(tmp_path / "figs" / f"{name}.pdf")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(f"{n}.{e}" for n in names for e in ("png", "pdf"))


def test_figures_4_5_and_repeated_splits_plot_the_pins_numbers_under_the_model_labels_pin(tmp_path):
    import rpy2.robjects as ro

    from srnomogram import stats

    board = tmp_path / "board"
    write_pin(board, "model_labels", pd.DataFrame({"model": ["or_lr", "or_svm", "sr_resnet101", "clinical", "nomogram"],
                                                    "label": ["LR on OR", "SVM on OR", "ResNet on SR", "Clin", "Nomo"]}))
    loss = pd.DataFrame({"iteration": [1, 2, 3, 4], "loss": [0.71, 0.62, 0.55, 0.5]})
    write_pin(board, "loss_history_sr_resnet101", loss)
    fig = stats.figure("board_figure", str(board), "figure4_loss")
    got = _layers(fig, 0, "GeomLine")
    np.testing.assert_allclose(got["y"], loss["loss"], rtol=0, atol=1e-12)
    assert list(ro.r("function(p) levels(p$data$model)")(fig.r)) == ["ResNet on SR"]  # the label pin's, by id
    # Grad-CAM: one panel per lesion, titled with the model's label and the case id read from the npz
    rng = np.random.default_rng(1)
    np.savez_compressed(tmp_path / "g.npz", case_id=np.array(["c1", "c2", "c3"]), image=rng.random((3, 8, 6)).astype(np.float32),
                        cam=rng.random((3, 8, 6)).astype(np.float32), mask=np.ones((3, 8, 6), dtype=bool))
    write_file_pin(board, "gradcam_sr_resnet101", tmp_path / "g.npz")
    cam = stats.figure("board_figure", str(board), "figure5_gradcam")
    titles = [ro.r("function(p, i) p[[i]]$labels$title")(cam.r, i)[0] for i in (1, 2, 3)]
    assert titles == ["ResNet on SR\nc1", "ResNet on SR\nc2", "ResNet on SR\nc3"]
    # repeated splits: the bar of each series is the mean test AUC over seeds; the rings mark the chosen models
    rows = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "model": ["or_lr", "or_svm"] * 3, "test_auc": [0.8, 0.7, 0.75, 0.85, 0.6, 0.9],
                         "chosen": [True, False, False, True, False, True], "clinical_test_auc": [0.7, 0.7, 0.72, 0.72, 0.65, 0.65],
                         "nomogram_test_auc": [0.85, 0.85, 0.8, 0.8, 0.9, 0.9]})
    write_pin(board, "repeated_splits", rows)
    rep = stats.figure("board_figure", str(board), "figure_repeated_splits")
    bars = _layers(rep, 0, "GeomSegment").sort_values("x")
    want = [np.mean([0.8, 0.75, 0.6]), np.mean([0.7, 0.85, 0.9]), np.mean([0.7, 0.72, 0.65]), np.mean([0.85, 0.8, 0.9])]
    np.testing.assert_allclose(bars["y"], want, rtol=0, atol=1e-12)
    labels = list(ro.r("function(p) levels(p$data$series)")(rep.r))
    assert labels == ["LR on OR", "SVM on OR", "Clin", "Nomo"]
    rings = ro.r("function(p) ggplot2::layer_data(p, 3)$y")(rep.r)
    assert sorted(rings) == pytest.approx(sorted([0.8, 0.85, 0.9]), abs=1e-12)


def test_a_board_without_the_pins_says_which_are_missing(tmp_path):
    from srnomogram import stats

    write_pin(tmp_path / "board", "scores", pd.DataFrame({"label": [0, 1], "split": ["train", "test"]}))
    with pytest.raises(stats.RBridgeError, match=r"has no pin.*model_aucs.*figure3_roc_models"):
        stats.figure("board_figure", str(tmp_path / "board"), "figure3_roc_models")
    from srnomogram.study.figures import r_figures

    assert r_figures(tmp_path / "board", tmp_path / "f") == {}  # nothing to draw: nothing written
    assert not (tmp_path / "f").exists() or not any((tmp_path / "f").iterdir())


# ---------------------------------------------------------------- the plotted numbers are the board's
def _layers(fig, panel, geom):
    """``ggplot2::layer_data`` of the ``geom`` layers of panel ``panel`` (1-based; 0: a single plot)."""
    import rpy2.robjects as ro

    from srnomogram import stats

    fn = ro.r("""function(p, i, geom) {
      q <- if (i > 0) p[[i]] else p
      k <- which(vapply(q$layers, function(l) class(l$geom)[1], "") == geom)
      do.call(rbind, lapply(k, function(j) {
        d <- ggplot2::layer_data(q, j)
        d[, intersect(names(d), c("x", "y", "xend", "yend", "ymin", "ymax", "colour", "fill", "linetype", "group",
                                  "label"))]
      }))
    }""")
    return stats._from_r(fn(fig.r, panel, geom))


def _auc_of_path(d):
    d = d.reset_index(drop=True)
    return float(np.sum(np.diff(d["x"]) * (d["y"].to_numpy()[1:] + d["y"].to_numpy()[:-1]) / 2))


def test_figure7_layers_hold_the_boards_roc_calibration_and_decision_curves(study):
    import rpy2.robjects as ro

    from srnomogram import stats

    out, _ = study
    board = out / "board"
    fig = stats.figure("board_figure", str(board), "figure7_validation")
    roc, cal, cal_sum = read_pin(board, "roc_auc"), read_pin(board, "calibration"), read_pin(board, "calibration_summary")
    dca = read_pin(board, "decision_curves")
    models = {"clinical": BLUE, "nomogram": VERMILION}
    for j, s in enumerate(("train", "test")):
        # A/B: the area under each plotted ROC path is the pin's AUC; the legend gives its 90% DeLong CI
        paths = _layers(fig, 1 + j, "GeomPath")
        legend = " ".join(ro.r("function(p, i) levels(p[[i]]$data$label)")(fig.r, 1 + j))
        for m, colour in models.items():
            row = roc[(roc["set"] == s) & (roc["model"] == m)].iloc[0]
            assert _auc_of_path(paths[paths["colour"] == colour]) == pytest.approx(row["auc"], abs=1e-12)
            assert f"(AUC {row['auc']:.3f}, 90% CI {row['lower']:.3f}\u2013{row['upper']:.3f})" in legend
        # C/D: bootstrap (apparent, bias-corrected) or lowess curves, exactly the pin's rows
        lines = _layers(fig, 3 + j, "GeomLine")
        for m, colour in models.items():
            pin = cal[(cal["set"] == s) & (cal["model"] == m)].sort_values("predicted")
            curves = {"solid": "bias_corrected", "dotted": "apparent"} if s == "train" else {"solid": "smoothed"}
            for lty, col in curves.items():
                got = lines[(lines["colour"] == colour) & (lines["linetype"] == lty)].sort_values("x")
                np.testing.assert_allclose(got["x"], pin["predicted"], rtol=0, atol=1e-12)
                np.testing.assert_allclose(got["y"], pin[col], rtol=0, atol=1e-12)
        assert (cal_sum.loc[cal_sum["set"] == s, "mode"] == ("bootstrap" if s == "train" else "external")).all()
        if s == "test":  # D: each held-out curve's bootstrap band, exactly the pin's lower/upper
            ribbons = _layers(fig, 4, "GeomRibbon")
            for m, colour in models.items():
                pin = cal[(cal["set"] == s) & (cal["model"] == m)].dropna(subset=["lower", "upper"]).sort_values("predicted")
                got = ribbons[ribbons["fill"] == colour].sort_values("x")
                assert len(pin) > 5
                np.testing.assert_allclose(got["x"], pin["predicted"], rtol=0, atol=1e-12)
                np.testing.assert_allclose(got["ymin"], pin["lower"], rtol=0, atol=1e-12)
                np.testing.assert_allclose(got["ymax"], pin["upper"], rtol=0, atol=1e-12)
            sub = ro.r("function(p, i) p[[i]]$labels$subtitle")(fig.r, 4)[0]
            assert "Shaded: 90% bootstrap band of the smoothed curve (B = 20)" in sub
        # E/F: net benefit lines and their bootstrap bands
        lines, bands = _layers(fig, 5 + j, "GeomLine"), _layers(fig, 5 + j, "GeomRibbon")
        for m, colour in models.items():
            pin = dca[(dca["set"] == s) & (dca["model"] == m) & dca["curve"].str.contains("~", na=False)]
            pin = pin.sort_values("thresholds")
            got = lines[lines["colour"] == colour].sort_values("x")
            np.testing.assert_allclose(got["x"], pin["thresholds"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(got["y"], pin["NB"], rtol=0, atol=1e-12)
            band = bands[bands["fill"] == colour].sort_values("x")
            np.testing.assert_allclose(band["ymin"], pin["NB_lower"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(band["ymax"], pin["NB_upper"], rtol=0, atol=1e-12)
        caption = ro.r("function(p, i) p[[i]]$labels$caption")(fig.r, 5 + j)[0]
        assert caption == "Bands: 90% bootstrap percentile intervals (20 resamples)"  # nomogram.alpha = 0.1
        treat_all = dca[(dca["set"] == s) & (dca["model"] == "clinical") & (dca["curve"] == "All")].sort_values("thresholds")
        got = lines[lines["colour"] == "grey40"].sort_values("x")
        np.testing.assert_allclose(got["y"], treat_all["NB"], rtol=0, atol=1e-12)


def test_figure3_paths_have_table2_aucs_and_figure6_ticks_are_the_points_table(study):
    from srnomogram import stats

    out, _ = study
    board = out / "board"
    aucs = read_pin(board, "model_aucs")
    fig = stats.figure("board_figure", str(board), "figure3_roc_models")
    for j, s in enumerate(("train", "test")):
        paths = _layers(fig, 1 + j, "GeomPath")
        for colour, row in zip((BLUE, VERMILION), aucs.itertuples()):
            assert _auc_of_path(paths[paths["colour"] == colour]) == pytest.approx(getattr(row, f"{s}_auc"), abs=1e-12)
    pts = read_pin(board, "nomogram_points")
    nom = stats.figure("board_figure", str(board), "figure6_nomogram")
    ticks = _layers(nom, 0, "GeomSegment")
    ticks = ticks[ticks["yend"] > ticks["y"]]  # the tick marks (the axes are horizontal segments)
    text = _layers(nom, 0, "GeomText")
    predictors = list(dict.fromkeys(pts.loc[pts["axis"] == "predictor", "variable"]))
    for i, v in enumerate(predictors):  # row 1 is the Points axis
        pin = pts[(pts["axis"] == "predictor") & (pts["variable"] == v)]
        np.testing.assert_allclose(ticks.loc[ticks["y"] == -(i + 2), "x"], pin["points"], rtol=0, atol=1e-12)
    axes = list(dict.fromkeys(stats._from_r(nom.r.rx2("data"))["axis"]))
    assert axes == ["Points", "Age (years)", "max_diameter_cm", "Deep-learning score", "Total Points", "Risk of malignancy"]
    assert set(text["label"]) >= {"0.1", "0.5", "0.9"}
    # risk axis: total points where the risk is reached, from the pin's scaling rows (15 significant digits)
    sc = pts[pts["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    total = pts.loc[pts["axis"] == "total_points", "points"].astype(float)
    risk_row = -(len(predictors) + 3)
    got = np.sort(ticks.loc[ticks["y"] == risk_row, "x"].to_numpy())
    fun_at = np.array([0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
    want = (np.log(fun_at / (1 - fun_at)) - sc["intercept"]) * sc["points_per_lp"]
    want = want[(want >= total.min()) & (want <= total.max())] * 100 / total.max()
    np.testing.assert_allclose(got, np.sort(want), rtol=0, atol=1e-9)
    # the pin's own risk rows (rms's choice of risks) lie on that same axis, to rms's precision
    for r in pts[pts["axis"] == "risk"].itertuples():
        # rms::nomogram places them by linear interpolation on a grid of the linear predictor: within 1e-3 points
        assert (np.log(float(r.value) / (1 - float(r.value))) - sc["intercept"]) * sc["points_per_lp"] == pytest.approx(r.points, abs=1e-3)

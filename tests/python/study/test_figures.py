"""Figures from board pins, through the Python scripts of inst/scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from srnomogram.board import write_pin
from srnomogram.metrics import choose_best

SCRIPTS = Path(__file__).resolve().parents[3] / "inst" / "scripts"


def _board(tmp_path):
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 30)
    scores = pd.DataFrame({
        "case_id": [f"c{i:02d}" for i in range(60)],
        "split": np.where(np.arange(60) < 45, "train", "test"),
        "label": y,
        "or_lr": y + rng.normal(0, 0.8, 60),
        "sr_lr": y + rng.normal(0, 0.5, 60),
    })
    _, aucs = choose_best(scores, ["or_lr", "sr_lr"], "test_auc")
    board = tmp_path / "board"
    write_pin(board, "scores", scores)
    write_pin(board, "model_aucs", aucs)
    points = pd.DataFrame({
        "axis": ["predictor"] * 4 + ["total_points"] * 2 + ["risk"] * 2,
        "variable": ["age", "age", "deep_score", "deep_score", "Total Points", "Total Points", "Risk", "Risk"],
        "value": ["20", "80", "0", "1", "0", "160", "0.1", "0.9"],
        "points": [0, 100, 0, 60, 0, 160, 40, 120],
    })
    write_pin(board, "nomogram_points", points)
    write_pin(board, "loss_history_or_mobilenet_v2", pd.DataFrame({"iteration": [1, 2, 3], "loss": [0.7, 0.6, 0.5]}))
    return board


def test_python_figure_scripts_draw_from_a_board(tmp_path):
    board = _board(tmp_path)
    for script in ("figure3_roc.py", "figure4_loss.py", "figure6_nomogram.py"):
        stem = tmp_path / script[:-3]
        out = subprocess.run([sys.executable, str(SCRIPTS / script), str(board), str(stem)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        for ext in ("png", "pdf"):
            assert Path(f"{stem}.{ext}").stat().st_size > 1000

"""Every figure of a study's report, redrawn from its board.

Figures 3, 6 and 7 (ROC of the models, the rms nomogram, clinical model vs nomogram) are drawn in R by
the package's ``board_figures()`` through the rpy2 bridge, the same function as
``figures_from_board.R``; Figure 4 (CNN training loss, pins ``loss_history_<images>_<arch>``) by
matplotlib. Figure 5 (Grad-CAM) and the repeated-splits figure need files beside the board
(``stages/deep_*/gradcam.npz``, ``tables/repeated_splits.csv`` of the study folder that holds it); they
are drawn when those are there. Files keep the report's names, as PNG (300 dpi) and PDF.

Usage: python inst/scripts/figures_from_board.py STUDY_OUTPUT/board OUT_DIR
"""

import sys
from pathlib import Path

import pandas as pd

from srnomogram.board import list_pins, read_pin
from srnomogram.study import figures as F
from srnomogram.study.stages import MODEL_LABELS

if len(sys.argv) != 3:
    sys.exit("usage: python figures_from_board.py STUDY_OUTPUT/board OUT_DIR")
board, out = Path(sys.argv[1]), Path(sys.argv[2])
study = board.parent
made = [p.with_suffix(ext) for p in F.r_figures(board, out, MODEL_LABELS).values() for ext in (".png", ".pdf")]
loss = [p for p in list_pins(board) if p.startswith("loss_history_")]
if loss:
    parts = [read_pin(board, p).assign(model=MODEL_LABELS.get(p[len("loss_history_"):], p)) for p in loss]
    made += F.save(F.figure4_loss(pd.concat(parts, ignore_index=True)), out / "figure4_loss")
maps = {MODEL_LABELS.get(d.name[5:], d.name): d / "gradcam.npz" for d in sorted((study / "stages").glob("deep_*"))}
if maps and (fig := F.figure5_gradcam(maps)) is not None:
    made += F.save(fig, out / "figure5_gradcam")
if (study / "tables" / "repeated_splits.csv").is_file():
    rows = pd.read_csv(study / "tables" / "repeated_splits.csv")
    made += F.save(F.figure_repeated_splits(rows, MODEL_LABELS), out / "figure_repeated_splits")
if not made:
    sys.exit(f"no figure drawn: board {board} holds none of the pins they need")
print(*made, sep="\n")

"""Every figure of a study's report, redrawn from its board alone.

Figures 3, 6 and 7 (ROC of the models, the rms nomogram, clinical model vs nomogram) are drawn in R by
the package's ``board_figures()`` through the rpy2 bridge, the same function as
``figures_from_board.R``. matplotlib draws Figure 4 (CNN training loss, pins
``loss_history_<images>_<arch>``), Figure 5 (Grad-CAM, file pins ``gradcam_<images>_<arch>``) and the
repeated-splits figure (pin ``repeated_splits``), when the study has them. Files keep the report's
names, as PNG and PDF.

Usage: python inst/scripts/figures_from_board.py STUDY_OUTPUT/board OUT_DIR
"""

import sys
from pathlib import Path

import pandas as pd

from srnomogram.board import list_pins, read_file_pin, read_pin
from srnomogram.study import figures as F
from srnomogram.study.stages import MODEL_LABELS

if len(sys.argv) != 3:
    sys.exit("usage: python figures_from_board.py STUDY_OUTPUT/board OUT_DIR")
board, out = Path(sys.argv[1]), Path(sys.argv[2])
made = [p.with_suffix(ext) for p in F.r_figures(board, out, MODEL_LABELS).values() for ext in (".png", ".pdf")]
pins = list_pins(board)
loss = [p for p in pins if p.startswith("loss_history_")]
if loss:
    parts = [read_pin(board, p).assign(model=MODEL_LABELS.get(p[len("loss_history_"):], p)) for p in loss]
    made += F.save(F.figure4_loss(pd.concat(parts, ignore_index=True)), out / "figure4_loss")
maps = {MODEL_LABELS.get(p[len("gradcam_"):], p): read_file_pin(board, p) for p in pins if p.startswith("gradcam_")}
if maps and (fig := F.figure5_gradcam(maps)) is not None:
    made += F.save(fig, out / "figure5_gradcam")
if "repeated_splits" in pins:
    made += F.save(F.figure_repeated_splits(read_pin(board, "repeated_splits"), MODEL_LABELS), out / "figure_repeated_splits")
if not made:
    sys.exit(f"no figure drawn: board {board} holds none of the pins they need")
print(*made, sep="\n")

"""Figure 4: training loss of the CNNs, from a study's board (pins ``loss_history_<images>_<arch>``).

Usage: python inst/scripts/figure4_loss.py STUDY_OUTPUT/board [OUT_STEM]
"""

import sys

import pandas as pd

from srnomogram.board import list_pins, read_pin
from srnomogram.study.figures import figure4_loss, save
from srnomogram.names import label

board = sys.argv[1]
stem = sys.argv[2] if len(sys.argv) > 2 else "figure4_loss"
names = [p for p in list_pins(board) if p.startswith("loss_history_")]
if not names:
    sys.exit("no CNN loss histories on this board (deep learning disabled?)")
parts = [read_pin(board, p).assign(model=label(p[len("loss_history_"):])) for p in names]
print(*save(figure4_loss(pd.concat(parts, ignore_index=True)), stem), sep="\n")

"""Figure 3: ROC curves of the 8 models (train, test), from a study's board.

Usage: python inst/scripts/figure3_roc.py STUDY_OUTPUT/board [OUT_STEM]
"""

import sys

from srnomogram.board import read_pin
from srnomogram.study.figures import figure3_roc, save
from srnomogram.names import labels

board = sys.argv[1]
stem = sys.argv[2] if len(sys.argv) > 2 else "figure3_roc_models"
fig = figure3_roc(read_pin(board, "scores"), read_pin(board, "model_aucs"), labels())
print(*save(fig, stem), sep="\n")

"""Figure 7: clinical model vs nomogram: ROC, calibration and decision curves, train and test.

Usage: python inst/scripts/figure7_validation.py STUDY_OUTPUT/board [OUT_STEM]
"""

import sys

from srnomogram.board import read_pin
from srnomogram.study.figures import figure7_validation, save

board = sys.argv[1]
stem = sys.argv[2] if len(sys.argv) > 2 else "figure7_validation"
fig = figure7_validation(
    read_pin(board, "predictions"),
    read_pin(board, "calibration"),
    read_pin(board, "decision_curves"),
    read_pin(board, "roc_auc"),
)
print(*save(fig, stem), sep="\n")

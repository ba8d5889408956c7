"""Figure 6: the deep-learning nomogram, drawn from the board's points table.

Usage: python inst/scripts/figure6_nomogram.py STUDY_OUTPUT/board [OUT_STEM]
"""

import sys

from srnomogram.board import read_pin
from srnomogram.study.figures import figure6_nomogram, save

board = sys.argv[1]
stem = sys.argv[2] if len(sys.argv) > 2 else "figure6_nomogram"
labels = {"age": "Age (years)", "max_diameter_cm": "Maximum diameter (cm)", "deep_score": "Deep-learning score"}
print(*save(figure6_nomogram(read_pin(board, "nomogram_points"), labels), stem), sep="\n")

"""Every figure of a study's report, redrawn from its board alone.

Calls :func:`srnomogram.study.figures.study_figures`, the function the study's own run uses: Figures 3,
6 and 7 (ROC of the models, the rms nomogram, clinical model vs nomogram) are drawn in R by the
package's ``board_figures()`` through the rpy2 bridge, the same function as ``figures_from_board.R``;
matplotlib draws Figure 4 (CNN training loss, pins ``loss_history_<images>_<arch>``), Figure 5
(Grad-CAM, file pins ``gradcam_<images>_<arch>``) and the repeated-splits figure (pin
``repeated_splits``), when the study has them. Files keep the report's names, as PNG and PDF.

Usage: python inst/scripts/figures_from_board.py STUDY_OUTPUT/board OUT_DIR
"""

import sys
from pathlib import Path

from srnomogram.study.figures import study_figures

if len(sys.argv) != 3:
    sys.exit("usage: python figures_from_board.py STUDY_OUTPUT/board OUT_DIR")
board, out = Path(sys.argv[1]), Path(sys.argv[2])
made = study_figures(board, out)
if not made:
    sys.exit(f"no figure drawn: board {board} holds none of the pins they need")
print(*(p.with_suffix(ext) for p in made.values() for ext in (".png", ".pdf")), sep="\n")

"""Figure 5: Grad-CAM of test lesions for each CNN (gradcam.npz of the deep stages).

Usage: python inst/scripts/figure5_gradcam.py STUDY_OUTPUT [OUT_STEM]
"""

import sys
from pathlib import Path

from srnomogram.study.figures import figure5_gradcam, save
from srnomogram.names import label

study = Path(sys.argv[1])
stem = sys.argv[2] if len(sys.argv) > 2 else "figure5_gradcam"
maps = {label(d.name[5:]): d / "gradcam.npz" for d in sorted((study / "stages").glob("deep_*"))}
fig = figure5_gradcam(maps)
if fig is None:
    sys.exit("no Grad-CAM maps in this study (deep learning disabled?)")
print(*save(fig, stem), sep="\n")

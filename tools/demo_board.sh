#!/usr/bin/env bash
# Regenerate inst/extdata/demo: the small pins board the R vignettes read, written by the Python
# side (`srnomogram run`) on the synthetic demo cohort.
#
# The study is inst/study/demo.yaml (seed 0) on `srnomogram cohort demo` (120 lesions, seed 0), without
# super-resolution and CNN training (sr.enabled=false, deep.enabled=false), so that it runs in about
# 1.5 min on 2 cores: the nomogram's score (`deep_score`) is then the radiomics model (OR-LR or OR-SVM)
# with the highest cross-validated training AUC, cross-fitted on training rows. Only the pins the
# vignettes read are kept (the latest, and only, version of each), about 90 KB; the rest of the board
# (radiomics features, decision curves with their bootstrap bands: half a megabyte) stays out of the
# R package. The metadata of each pin (data.txt) is kept as written: package versions, git SHA, seed and
# the resolved configuration, whose paths are those of the temporary folder the script ran in.
#
# Usage (from the repository, after setup.sh):
#   bash tools/demo_board.sh            # rewrites inst/extdata/demo
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
export PYTHONPATH="$repo/python${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
if [ -d "$repo/.venv/R-library" ]; then export R_LIBS="$repo/.venv/R-library${R_LIBS:+:$R_LIBS}"; fi

pins=(manifest scores model_labels model_aucs table2 nomogram_coefficients nomogram_points predictions
      roc_auc internal_validation heldout_validation)

work="$(mktemp -d "${TMPDIR:-/tmp}/srnomogram-demo-board.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$py" -m srnomogram cohort demo "$work/demo_cohort" --n 120 --seed 0 --volumes 0
"$py" -m srnomogram run "$repo/inst/study/demo.yaml" -o "$work/study" \
  --set cohort.manifest="$work/demo_cohort/manifest.csv" \
  --set sr.enabled=false --set deep.enabled=false \
  --set nomogram.dca_bootstraps=100 --set "report.formats=[png]" --threads 2

# Stage the kept pins beside the old board, then swap, so that a failure leaves the old board whole.
dest="$repo/inst/extdata/demo"
new="$work/demo_board"
mkdir -p "$new" "$(dirname "$dest")"
for p in "${pins[@]}"; do
  n=$(find "$work/study/board/$p" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$n" -eq 1 ] || { echo "demo_board.sh: pin $p has $n versions, expected 1" >&2; exit 1; }
  cp -R "$work/study/board/$p" "$new/$p"
done
cp "$repo/tools/demo_board.README" "$new/README"
rm -rf "$dest.old"
if [ -d "$dest" ]; then mv "$dest" "$dest.old"; fi
mv "$new" "$dest"
rm -rf "$dest.old"
echo "demo_board.sh: wrote ${#pins[@]} pins to $dest ($(du -sk "$dest" | cut -f1) KB on disk)"

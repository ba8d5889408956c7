#!/usr/bin/env Rscript
# Every figure of a study's report, redrawn in R from the study's board alone, by one call:
# study_figures(BOARD, OUT_DIR).
#
# Input: the pins folder board that `srnomogram run` writes (STUDY_OUTPUT/board).
# Output (in OUT_DIR), as PNG (300 dpi) and PDF, by the package's ggplot2 functions:
#   figure3_roc_models      ROC curves of every radiomics and deep-learning model, training and test panels
#   figure4_loss            training loss of the CNNs (pins loss_history_<model>)
#   figure5_gradcam         Grad-CAM of test lesions (file pins gradcam_<model>, NumPy .npz read by read_npz())
#   figure6_nomogram        the rms nomogram of the deep-learning nomogram
#   figure7_validation      clinical model vs nomogram: ROC, calibration (bootstrap bias-corrected on training,
#                           lowess on test) and decision curves with bootstrap bands, training and test
#   figure_repeated_splits  test AUC of every model over split seeds (pin repeated_splits)
#   figure_iecv_auc, figure_iecv_citl, figure_iecv_slope
#                           forest plots of the internal-external cross-validation (split.method: centre):
#                           each held-out centre and the pooled rows of pin iecv_pooled (iecv_forest())
# These are the files of the report's figures/ folder, with the same names, drawn by the same function.
# Each figure is also a ggplot to restyle: p <- board_figure(BOARD, "figure7_validation").
#
# Usage:
#   Rscript inst/scripts/figures_from_board.R STUDY_OUTPUT/board OUT_DIR

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)[1]))
source(file.path(script_dir, "load_package.R"))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) stop("usage: figures_from_board.R STUDY_OUTPUT/board OUT_DIR", call. = FALSE)
paths <- study_figures(args[1], args[2])
if (!length(paths)) stop("no figure drawn: board ", args[1], " holds none of the pins they need", call. = FALSE)
for (p in paths) cat(p, sub("\\.png$", ".pdf", p), sep = "\n")

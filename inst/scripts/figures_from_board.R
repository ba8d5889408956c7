#!/usr/bin/env Rscript
# The study's statistical figures (the paper's Figures 3, 6 and 7), redrawn in R from a study's board.
#
# Input: the pins folder board that `srnomogram run` writes (STUDY_OUTPUT/board).
# Output (in OUT_DIR), as PNG (300 dpi) and PDF, by the package's ggplot2 functions through board_figures():
#   figure3_roc_models  ROC curves of every radiomics and deep-learning model, training and test panels
#   figure6_nomogram    the rms nomogram of the deep-learning nomogram
#   figure7_validation  clinical model vs nomogram: ROC, calibration (bootstrap bias-corrected on training,
#                       lowess on test) and decision curves with bootstrap bands, training and test
# These are the files of the report's figures/ folder, with the same names. The matplotlib panels (CNN loss,
# Grad-CAM) are redrawn by figures_from_board.py, which calls this same board_figures() through rpy2.
# Each figure is also a ggplot to restyle: p <- board_figure(BOARD, "figure7_validation").
#
# Usage:
#   Rscript inst/scripts/figures_from_board.R STUDY_OUTPUT/board OUT_DIR

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)[1]))
source(file.path(script_dir, "load_package.R"))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) stop("usage: figures_from_board.R STUDY_OUTPUT/board OUT_DIR", call. = FALSE)
paths <- board_figures(args[1], args[2])
if (!length(paths)) stop("no figure drawn: board ", args[1], " holds none of the pins they need", call. = FALSE)
for (p in paths) cat(p, sub("\\.png$", ".pdf", p), sep = "\n")

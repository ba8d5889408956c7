#' srnomogram: validated diagnostic nomograms from super-resolution ultrasound scores
#'
#' The statistics of Yang & Ma's study in R 4.2: `hl_test()`, `decision_curve()`,
#' `fit_nomogram()`, `calibrate_nomogram()`, `roc_auc()`, `compare_roc()`,
#' `baseline_table()`, `logistic_table()` and `read_board()`.
#' @keywords internal
"_PACKAGE"

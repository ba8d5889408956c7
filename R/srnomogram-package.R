#' srnomogram: validated diagnostic nomograms from super-resolution ultrasound scores
#'
#' The statistics of Yang & Ma's study in R 4.2: [hl_test()] (equal to
#' ResourceSelection), [decision_curve()] (equal to rmda), [fit_nomogram()] and
#' [calibrate_nomogram()] (rms), [roc_auc()] and [compare_roc()] (pROC, DeLong),
#' [classification_metrics()], [iecv_pool()] and [meta_pool()] (metafor,
#' REML with Knapp-Hartung), [update_closed_test()], [baseline_table()], [logistic_table()],
#' publication figures ([roc_plot()], [calibration_plot()], [dca_plot()],
#' [nomogram_plot()], [save_figure()]) and [read_pin()] for the pins board
#' written by the Python side.
#' @keywords internal
#' @importFrom rlang .data
"_PACKAGE"

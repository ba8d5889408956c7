#' Out-of-fold risks of a nomogram over given folds
#'
#' Cross-fitting: for each fold `k`, the logistic model `formula` is refitted
#' by [fit_nomogram()] (`rms::lrm`) on the rows of the other folds and predicts
#' the rows of fold `k`. The risks are those of a model that never saw the row,
#' so cut-offs chosen on them (e.g. the Youden index) are not chosen on
#' in-sample risks.
#'
#' A small fold can separate the outcome completely, where no maximum
#' likelihood estimate exists and `rms::lrm` stops (an error of class
#' `srnomogram_error_fit` or `srnomogram_error_separation`). That fold is then
#' fitted by `stats::glm()`, whose iterations stop at large coefficients (the
#' divergent estimate's limit: risks near 0 and 1, which is what such a model
#' would predict), and the fold is named in `fitted_by` and in a warning of
#' class `srnomogram_warning_separation`.
#'
#' @param formula `outcome ~ predictors`, as for [fit_nomogram()].
#' @param data A data frame with the variables of `formula`.
#' @param folds Fold of each row of `data` (integers or labels; at least two).
#' @return A data frame, one row per row of `data`: `fold`, `risk` (the
#'   out-of-fold risk; `NA` where a predictor is missing) and `fitted_by`
#'   (`"rms::lrm"` or `"stats::glm (separation)"`).
#' @references Chernozhukov V et al. (2018). Double/debiased machine learning.
#'   Econom J 21:C1-C68 (cross-fitting).
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' head(cross_fit_risk(y ~ score + age, d, folds = rep(1:5, length.out = 120)))
#' @export
cross_fit_risk <- function(formula, data, folds) {
  formula <- as_two_sided_formula(formula)
  data <- check_data_frame(data)
  check_columns(data, all.vars(formula))
  if (length(folds) != nrow(data) || anyNA(folds)) {
    abort_input("{.arg folds} must give a fold for each of the {nrow(data)} rows of {.arg data}, without NA.")
  }
  ks <- sort(unique(folds))
  if (length(ks) < 2L) abort_input("{.arg folds} must hold at least two folds, not {length(ks)}.")
  risk <- rep(NA_real_, nrow(data))
  by <- rep("rms::lrm", nrow(data))
  for (k in ks) {
    held <- folds == k
    fit_rows <- data[!held, , drop = FALSE]
    fit <- tryCatch(fit_nomogram(formula, fit_rows),
                    srnomogram_error_fit = function(e) NULL, srnomogram_error_separation = function(e) NULL)
    if (is.null(fit)) {
      g <- suppressWarnings(stats::glm(formula, family = stats::binomial(), data = fit_rows))
      risk[held] <- stats::predict(g, data[held, , drop = FALSE], type = "response")
      by[held] <- "stats::glm (separation)"
    } else {
      risk[held] <- stats::predict(fit, data[held, , drop = FALSE])
    }
  }
  glm_folds <- unique(folds[by != "rms::lrm"])
  if (length(glm_folds)) {
    warn_classed(c("{.code {deparse1(formula)}} separates the outcome without fold{?s} {.val {glm_folds}}: rms::lrm has no estimate there.",
                   i = "Those folds' out-of-fold risks come from stats::glm (near 0 or 1)."), "separation")
  }
  data.frame(fold = folds, risk = risk, fitted_by = by, stringsAsFactors = FALSE)
}

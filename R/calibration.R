#' Bootstrap calibration of a nomogram, and external validation
#'
#' Internal mode (no `newdata`): `rms::calibrate(fit, method = "boot", B = B)`,
#' the overfitting-corrected calibration curve, run under `seed` without
#' changing the caller's random number stream. External mode (`newdata` given,
#' e.g. the test cohort): predicted risks of `fit` on `newdata` against the
#' observed outcome, with a lowess smooth (`iter = 0`, as `rms::val.prob`), the
#' calibration intercept and slope of `rms::val.prob()`, and the
#' Hosmer-Lemeshow test ([hl_test()]) on `g` groups.
#'
#' @param fit A `srnomogram_nomogram` from [fit_nomogram()].
#' @param B Bootstrap repetitions (internal mode; a whole number >= 1).
#' @param seed Random seed of the bootstrap (internal mode; a whole number), or
#'   `NULL` to draw from the current random number stream (set it with
#'   [set.seed()] for reproducible numbers). There is no default: internal mode
#'   requires it; external mode ignores it.
#' @param cluster Optional patient of each observation of `fit` (internal
#'   mode): the bootstrap resamples patients, each with all their rows (`rms`'s
#'   cluster bootstrap, `predab.resample(cluster = )`). `NULL` (default)
#'   resamples rows; one distinct value per row gives the same numbers as
#'   `NULL` under the same seed. See [validate_nomogram()].
#' @param newdata Optional external cohort (data frame with the outcome and
#'   the predictors).
#' @param g Groups for the Hosmer-Lemeshow test (external mode).
#' @return An object of class `srnomogram_calibration` with `mode`
#'   (`"bootstrap"` or `"external"`), `table` (data frame: `predicted`,
#'   `apparent`, `bias_corrected` for bootstrap; `predicted`, `observed`,
#'   `smoothed` for external), `mae` and `q90` (mean and 0.9 quantile of the
#'   absolute calibration error, as `rms` plot.calibrate reports them), and, for
#'   bootstrap, `calibrate` (the rms object), or, for external, `intercept`,
#'   `slope`, `val_prob` (the `rms::val.prob` statistics) and `hl` (an `htest`).
#' @references Harrell FE, Lee KL, Mark DB (1996). Multivariable prognostic
#'   models. Stat Med 15:361-387.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(150))
#' d$y <- rbinom(150, 1, plogis(-3 + 6 * d$score))
#' fit <- fit_nomogram(y ~ score, d[1:100, ])
#' cal <- calibrate_nomogram(fit, B = 50, seed = 1)
#' cal
#' ext <- calibrate_nomogram(fit, newdata = d[101:150, ], g = 5)
#' ext$hl
#' @export
calibrate_nomogram <- function(fit, B = 1000, seed, newdata = NULL, g = 10, cluster = NULL) {
  check_nomogram_fit(fit)
  if (!is.null(newdata)) return(validate_external(fit, newdata, g))
  B <- check_bootstraps(B)
  if (missing(seed)) abort_missing_seed("calibrate_nomogram", B)
  cluster <- check_cluster(cluster, length(fit$y))
  boot <- rms_bootstrap(rms::calibrate, fit, B, seed, cluster)
  cal <- boot$value
  note <- boot$note
  p <- attr(cal, "predicted")
  s <- stats::approx(cal[, "predy"], cal[, "calibrated.corrected"], xout = p, ties = mean)$y
  err <- abs(p - s)
  tab <- data.frame(predicted = unname(cal[, "predy"]),
                    apparent = unname(cal[, "calibrated.orig"]),
                    bias_corrected = unname(cal[, "calibrated.corrected"]))
  structure(list(mode = "bootstrap", table = tab, calibrate = cal, B = as.integer(B), seed = seed,
                 n = length(p), n_clusters = if (is.null(cluster)) length(fit$y) else max(cluster), mae = mean(err, na.rm = TRUE),
                 q90 = unname(stats::quantile(err, 0.9, na.rm = TRUE)), predicted = p,
                 note = note),
            class = "srnomogram_calibration")
}

validate_external <- function(fit, newdata, g) {
  newdata <- check_data_frame(newdata)
  yname <- all.vars(fit$srn_formula[[2]])
  check_columns(newdata, all.vars(fit$srn_formula), arg = "newdata")
  newdata <- complete_rows(newdata, all.vars(fit$srn_formula))
  y <- check_binary(newdata[[yname]], arg = "outcome")
  p <- stats::predict(fit, newdata)
  external_calibration(y, p, g)
}

#' External calibration from outcomes and predicted risks
#'
#' The external mode of [calibrate_nomogram()] for risks computed elsewhere.
#'
#' @param y Binary outcome (0/1).
#' @param score Predicted risks in \[0, 1\] (called `prob` until 0.1.0; that
#'   name still works, with a warning of class `srnomogram_warning_deprecated`).
#' @param g Hosmer-Lemeshow groups.
#' @param ... Only the deprecated `prob`; any other argument is an error.
#' @return A `srnomogram_calibration` in `"external"` mode.
#' @examples
#' set.seed(2)
#' p <- runif(80)
#' y <- rbinom(80, 1, p)
#' external_calibration(y, p, g = 5)
#' @export
external_calibration <- function(y, score, g = 10, ...) {
  score <- renamed_argument(list(...), c(prob = "score"), "external_calibration",
                            missing_value = if (!missing(score)) score)
  cc <- check_outcome_score(y, score, "score", probability = TRUE)
  y <- cc$y
  p <- cc$score
  vp <- rms::val.prob(p, y, pl = FALSE)
  sm <- stats::lowess(p, y, iter = 0)
  o <- order(p)
  tab <- data.frame(predicted = p[o], observed = y[o],
                    smoothed = stats::approx(sm$x, sm$y, xout = p[o], ties = mean)$y)
  err <- abs(tab$smoothed - tab$predicted)
  hl <- hl_test(y, p, g = g)
  hl$data.name <- "external outcome, predicted risk"
  structure(list(mode = "external", table = tab, n = length(y),
                 intercept = unname(vp["Intercept"]), slope = unname(vp["Slope"]),
                 val_prob = vp, hl = hl, mae = mean(err), q90 = unname(stats::quantile(err, 0.9))),
            class = "srnomogram_calibration")
}

#' @export
print.srnomogram_calibration <- function(x, ...) {
  if (x$mode == "bootstrap") {
    cat(sprintf("Bootstrap calibration (rms::calibrate, B = %d, n = %d%s)\n", x$B, x$n,
                if (!is.null(x$n_clusters) && x$n_clusters != x$n) sprintf(", %d patients resampled", x$n_clusters) else ""))
    if (nzchar(x$note)) cat(" ", x$note, "\n")
  } else {
    cat(sprintf("External calibration (n = %d)\n", x$n))
    cat(sprintf("  intercept %.3f, slope %.3f; Hosmer-Lemeshow X2 = %.3f, df = %d, p = %.4g\n",
                x$intercept, x$slope, x$hl$statistic, x$hl$parameter, x$hl$p.value))
  }
  cat(sprintf("  mean absolute error %.4f, 0.9 quantile %.4f\n", x$mae, x$q90))
  invisible(x)
}

#' @export
summary.srnomogram_calibration <- function(object, ...) {
  out <- data.frame(mode = object$mode, n = object$n, mae = object$mae, q90 = object$q90)
  if (object$mode == "external") {
    out$intercept <- object$intercept
    out$slope <- object$slope
    out$hl_statistic <- unname(object$hl$statistic)
    out$hl_df <- unname(object$hl$parameter)
    out$hl_p <- object$hl$p.value
  } else {
    out$B <- object$B
  }
  out
}

#' @export
as.data.frame.srnomogram_calibration <- function(x, ...) x$table

#' @rdname calibration_plot
#' @export
plot.srnomogram_calibration <- function(x, ...) calibration_plot(x, ...)

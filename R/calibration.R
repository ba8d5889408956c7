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
#'   mode) or of each row of `newdata` (external mode): the bootstrap resamples
#'   patients, each with all their rows (internal: `rms`'s cluster bootstrap,
#'   `predab.resample(cluster = )`; external: the band's resamples). `NULL`
#'   (default) resamples rows; one distinct value per row gives the same numbers
#'   as `NULL` under the same seed. See [validate_nomogram()].
#' @param newdata Optional external cohort (data frame with the outcome and
#'   the predictors).
#' @param g Groups for the Hosmer-Lemeshow test (external mode).
#' @param conf_level Level of the external curve's bootstrap band (external
#'   mode, when `seed` is given: `B` resamples of `newdata`, see
#'   [external_calibration()]).
#' @return An object of class `srnomogram_calibration` with `mode`
#'   (`"bootstrap"` or `"external"`), `table` (data frame: `predicted`,
#'   `apparent`, `bias_corrected` for bootstrap; `predicted`, `observed`,
#'   `smoothed` (and `lower`, `upper` with a band) for external), `mae` and
#'   `q90` (mean and 0.9 quantile of the absolute calibration error, as `rms`
#'   plot.calibrate reports them), and, for bootstrap, `calibrate` (the rms
#'   object), or, for external, the fields of [external_calibration()].
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
calibrate_nomogram <- function(fit, B = 1000, seed, newdata = NULL, g = 10, cluster = NULL, conf_level = 0.95) {
  check_nomogram_fit(fit)
  # external mode: with a seed, B resamples of newdata give the smoothed curve's band
  if (!is.null(newdata)) return(validate_external(fit, newdata, g, B = if (missing(seed)) 0L else B,
                                                  seed = if (missing(seed)) NULL else seed, conf_level = conf_level,
                                                  cluster = cluster))
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

validate_external <- function(fit, newdata, g, B = 0L, seed = NULL, conf_level = 0.95, cluster = NULL) {
  newdata <- check_data_frame(newdata)
  yname <- all.vars(fit$srn_formula[[2]])
  check_columns(newdata, all.vars(fit$srn_formula), arg = "newdata")
  if (!is.null(cluster)) {
    check_same_length(newdata[[yname]], cluster, "newdata", "cluster")
    # the band resamples the patients of the rows that are kept
    cluster <- cluster[stats::complete.cases(newdata[all.vars(fit$srn_formula)])]
  }
  newdata <- complete_rows(newdata, all.vars(fit$srn_formula))
  y <- check_binary(newdata[[yname]], arg = "outcome")
  p <- stats::predict(fit, newdata)
  external_calibration(y, p, g, B = B, seed = seed, conf_level = conf_level, cluster = cluster)
}

#' External calibration from outcomes and predicted risks
#'
#' The external mode of [calibrate_nomogram()] for risks computed elsewhere,
#' on held-out data (the study's test set, an external cohort): the lowess
#' smooth of the outcome on the risks (`iter = 0`, as `rms::val.prob`), the
#' statistics of `rms::val.prob()`, calibration-in-the-large (`citl`: the
#' intercept of `glm(y ~ 1 + offset(qlogis(score)), binomial)`) and the
#' Hosmer-Lemeshow test ([hl_test()]) with `df = g` (the number of groups):
#' on data the model was not fitted to, no degrees of freedom are spent on
#' estimation (Hosmer & Lemeshow 2000, section 5.2.2).
#'
#' With `B > 0`, a percentile bootstrap band of the smoothed curve, as
#' `CalibrationCurves::val.prob.ci.2` draws one: `B` resamples of the rows (of
#' the clusters, with `cluster`), each smoothed again by lowess and read at the
#' points of `grid` (by linear interpolation; a point outside a resample's range
#' of risks is missing in that resample), then the `(1 - conf_level) / 2` and
#' `1 - (1 - conf_level) / 2` quantiles (type 7) of the resamples at each point.
#'
#' @param y Binary outcome (0/1).
#' @param score Predicted risks in \[0, 1\] (called `prob` until 0.1.0; that
#'   name still works, with a warning of class `srnomogram_warning_deprecated`).
#' @param g Hosmer-Lemeshow groups.
#' @param B Bootstrap resamples of the band (0: no band).
#' @param seed Seed of the band's bootstrap (a whole number; the caller's random
#'   stream is left alone), or `NULL` for the current stream. Required when
#'   `B > 0`; there is no default seed.
#' @param conf_level Level of the band.
#' @param cluster Optional cluster id per row (e.g. the patient): the band then
#'   resamples clusters.
#' @param grid Risks at which the band is read (default: the distinct risks of
#'   `score`).
#' @param ... Only the deprecated `prob`; any other argument is an error.
#' @return A `srnomogram_calibration` in `"external"` mode: `table`
#'   (`predicted`, `observed`, `smoothed`, and with a band `lower`, `upper`
#'   read at each row's risk), `band` (`NULL`, or a data frame `predicted`,
#'   `lower`, `upper`, `n_resamples` at `grid`), `B`, `conf_level`, `n`, `citl`,
#'   `recalibration_intercept` and `slope` (`rms::val.prob`'s "Intercept" and
#'   "Slope": the logistic recalibration `glm(y ~ qlogis(score))`; that intercept
#'   is not calibration-in-the-large), `val_prob`, `hl` (an `htest`), `mae`, `q90`.
#' @references Van Calster B, Nieboer D, Vergouwe Y, De Cock B, Pencina MJ,
#'   Steyerberg EW (2016). A calibration hierarchy for risk models was defined.
#'   J Clin Epidemiol 74:167-176 (CalibrationCurves).
#' @examples
#' set.seed(2)
#' p <- runif(80)
#' y <- rbinom(80, 1, p)
#' external_calibration(y, p, g = 5)
#' external_calibration(y, p, g = 5, B = 50, seed = 1)$band
#' @export
external_calibration <- function(y, score, g = 10, B = 0, seed, conf_level = 0.95, cluster = NULL,
                                 grid = NULL, ...) {
  score <- renamed_argument(list(...), c(prob = "score"), "external_calibration",
                            missing_value = if (!missing(score)) score)
  check_conf_level(conf_level)
  band_wanted <- !identical(B, 0) && !identical(B, 0L)
  if (band_wanted) {
    B <- check_bootstraps(B)
    if (missing(seed)) abort_missing_seed("external_calibration", B, example_args = "y, score")
    check_seed(seed)
  }
  if (!is.null(cluster)) check_same_length(y, cluster, "y", "cluster")
  keep <- !(is.na(y) | is.na(score))
  cc <- check_outcome_score(y, score, "score", probability = TRUE)
  y <- cc$y
  p <- cc$score
  if (!is.null(cluster)) cluster <- cluster[keep]
  vp <- rms::val.prob(p, y, pl = FALSE)
  sm <- stats::lowess(p, y, iter = 0)
  o <- order(p)
  tab <- data.frame(predicted = p[o], observed = y[o],
                    smoothed = stats::approx(sm$x, sm$y, xout = p[o], ties = mean)$y)
  err <- abs(tab$smoothed - tab$predicted)
  band <- NULL
  if (band_wanted) {
    band <- calibration_band(y, p, B, seed, conf_level, cluster, grid %||% sort(unique(p)))
    at <- function(v) stats::approx(band$predicted, v, xout = tab$predicted, ties = mean)$y
    tab$lower <- at(band$lower)
    tab$upper <- at(band$upper)
  }
  hl <- heldout_hl(hl_test(y, p, g = g))
  hl$data.name <- "held-out outcome, predicted risk"
  lp <- stats::qlogis(pmin(pmax(p, 1e-8), 1 - 1e-8))
  citl <- unname(stats::coef(stats::glm(y ~ 1 + offset(lp), family = stats::binomial()))[1])
  structure(list(mode = "external", table = tab, band = band, B = if (band_wanted) B else 0L,
                 conf_level = conf_level, n = length(y), citl = citl,
                 recalibration_intercept = unname(vp["Intercept"]), slope = unname(vp["Slope"]),
                 val_prob = vp, hl = hl, mae = mean(err), q90 = unname(stats::quantile(err, 0.9))),
            class = "srnomogram_calibration")
}

# The Hosmer-Lemeshow test of risks on held-out data: the same statistic, referred to
# chi-square with as many df as groups (none is spent on fitting these risks to this data).
heldout_hl <- function(h) {
  if (!is.finite(unname(h$statistic)) || is.null(h$groups)) return(h)
  h$parameter <- c(df = as.numeric(h$groups))
  h$p.value <- stats::pchisq(unname(h$statistic), h$parameter, lower.tail = FALSE)
  h$method <- paste(h$method, "(held-out data: df = groups)")
  h
}

calibration_band <- function(y, p, B, seed, conf_level, cluster, grid) {
  ids <- if (is.null(cluster)) seq_along(y) else unique(cluster)
  rows <- if (!is.null(cluster)) split(seq_along(y), factor(cluster, levels = ids))
  one <- function() {
    i <- if (is.null(cluster)) sample.int(length(y), replace = TRUE) else
      unlist(rows[sample.int(length(ids), replace = TRUE)], use.names = FALSE)
    if (length(unique(p[i])) < 2L) return(rep(NA_real_, length(grid)))
    sm <- stats::lowess(p[i], y[i], iter = 0)
    stats::approx(sm$x, sm$y, xout = grid, ties = mean)$y
  }
  run <- function() matrix(vapply(seq_len(B), function(b) one(), numeric(length(grid))), nrow = length(grid))
  curves <- if (is.null(seed)) run() else withr::with_seed(seed, run())
  q <- c((1 - conf_level) / 2, 1 - (1 - conf_level) / 2)
  lim <- t(apply(curves, 1, function(v) {
    if (all(is.na(v))) return(c(NA_real_, NA_real_))
    stats::quantile(v, q, na.rm = TRUE, names = FALSE)
  }))
  data.frame(predicted = grid, lower = lim[, 1], upper = lim[, 2], n_resamples = rowSums(!is.na(curves)))
}

#' @export
print.srnomogram_calibration <- function(x, ...) {
  if (x$mode == "bootstrap") {
    cat(sprintf("Bootstrap calibration (rms::calibrate, B = %d, n = %d%s)\n", x$B, x$n,
                if (!is.null(x$n_clusters) && x$n_clusters != x$n) sprintf(", %d patients resampled", x$n_clusters) else ""))
    if (nzchar(x$note)) cat(" ", x$note, "\n")
  } else {
    cat(sprintf("External calibration (n = %d)\n", x$n))
    cat(sprintf("  calibration-in-the-large %.3f, slope %.3f; Hosmer-Lemeshow X2 = %.3f, df = %d, p = %.4g\n",
                x$citl %||% NA_real_, x$slope, x$hl$statistic, x$hl$parameter, x$hl$p.value))
    if (!is.null(x$band)) cat(sprintf("  %g%% bootstrap band of the smoothed curve, B = %d\n", 100 * x$conf_level, x$B))
  }
  cat(sprintf("  mean absolute error %.4f, 0.9 quantile %.4f\n", x$mae, x$q90))
  invisible(x)
}

#' @export
summary.srnomogram_calibration <- function(object, ...) {
  out <- data.frame(mode = object$mode, n = object$n, mae = object$mae, q90 = object$q90)
  if (object$mode == "external") {
    out$citl <- object$citl %||% NA_real_
    out$recalibration_intercept <- object$recalibration_intercept
    out$slope <- object$slope
    out$hl_statistic <- unname(object$hl$statistic)
    out$hl_df <- unname(object$hl$parameter)
    out$hl_p <- object$hl$p.value
    out$band_B <- object$B %||% 0L
    out$band_conf_level <- if (is.null(object$band)) NA_real_ else object$conf_level
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

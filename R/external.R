#' External validation of predicted risks
#'
#' Every statistic of a model's external validation (TRIPOD type 4) from the
#' outcomes of a new cohort and the risks a frozen model gave them:
#' discrimination ([roc_auc()]: AUC with DeLong CI), calibration-in-the-large
#' (the intercept of `glm(y ~ offset(qlogis(score)))`) and calibration slope
#' (`glm(y ~ qlogis(score))`), both with Wald CIs, the statistics of
#' `rms::val.prob()` (Dxy, C, R2, Brier, intercept, slope, Emax, E90, Eavg,
#' Spiegelhalter z) and its smoothed calibration curve
#' ([external_calibration()]), the Hosmer-Lemeshow test ([hl_test()]; on
#' held-out data its df is the number of groups) and, when `threshold` is
#' given, accuracy, sensitivity, specificity, PPV and NPV at that frozen
#' cut-off ([classification_metrics()], with Wilson CIs).
#'
#' With `cluster` (e.g. a patient id when a patient has several lesions), every
#' CI comes from one percentile bootstrap over clusters (`B` resamples under
#' `seed`; each replicate draws clusters with replacement and keeps all their
#' rows): the AUC, calibration-in-the-large, slope, Brier score and, with
#' `threshold`, the threshold metrics, instead of DeLong, Wald and Wilson, which
#' assume independent rows. Without `cluster` the Brier score has no CI
#' (`brier_lower`, `brier_upper` are `NA`). With one row per cluster, in the
#' order of the rows, the replicates are those of an ordinary row bootstrap
#' (`sample.int(n, replace = TRUE)`) under the same seed.
#'
#' Risks of exactly 0 or 1 (a saturated CNN softmax) have no logit; for the
#' calibration statistics they are moved to `eps` and `1 - eps` and counted in
#' `n_clipped`. The AUC and the threshold metrics use the risks unchanged.
#'
#' @param y Binary outcome (0/1).
#' @param score Predicted risks in \[0, 1\] (called `prob` until 0.1.0; that
#'   name still works, with a warning of class `srnomogram_warning_deprecated`).
#' @param threshold Optional frozen cut-off (from the training cohort).
#' @param g Hosmer-Lemeshow groups.
#' @param cluster Optional cluster id per row (bootstrap CIs over clusters).
#' @param B Bootstrap resamples when `cluster` is given.
#' @param seed Seed of that bootstrap (a whole number; the caller's random
#'   stream is left alone), or `NULL` for the current random number stream.
#'   Required when `cluster` is given; there is no default seed.
#' @param conf_level Confidence level.
#' @param calibration_B Bootstrap resamples of the smoothed calibration curve's
#'   band ([external_calibration()]'s `B`, over `cluster` when given, under
#'   `seed`); 0 (default): no band.
#' @param eps Clipping of risks for the logit-based statistics.
#' @param ... Only the deprecated `prob`; any other argument is an error.
#' @return An object of class `srnomogram_external`: `summary` (a one-row
#'   data frame of every number; `ci_method` says how its CIs were obtained),
#'   `calibration` (the [external_calibration()] object), `roc` (the
#'   [roc_auc()] object) and `classification` (a one-row data frame of
#'   [classification_metrics()] with its own `ci_method`, or `NULL`).
#' @references Van Calster B et al. (2016). A calibration hierarchy for risk
#'   models was defined. J Clin Epidemiol 74:167-176. Harrell FE, rms::val.prob.
#' @examples
#' set.seed(3)
#' p <- runif(150)
#' y <- rbinom(150, 1, plogis(0.3 + 1.4 * qlogis(p)))
#' external_validation(y, p, threshold = 0.5)
#' @export
external_validation <- function(y, score, threshold = NULL, g = 10, cluster = NULL, B = 1000,
                                seed, conf_level = 0.95, calibration_B = 0, eps = 1e-8, ...) {
  score <- renamed_argument(list(...), c(prob = "score"), "external_validation",
                            missing_value = if (!missing(score)) score)
  check_conf_level(conf_level)
  if (!is.null(cluster)) {
    check_same_length(y, cluster, "y", "cluster")
    B <- check_bootstraps(B)
    if (missing(seed)) abort_missing_seed("external_validation", B, example_args = "y, score, cluster = id")
    check_seed(seed)
  }
  keep <- !(is.na(y) | is.na(score))
  cc <- check_outcome_score(y, score, "score", probability = TRUE)
  y <- cc$y
  raw <- cc$score
  if (!is.null(cluster)) cluster <- cluster[keep]
  p <- pmin(pmax(raw, eps), 1 - eps)
  roc <- roc_auc(y, raw, conf_level = conf_level)
  # rms::val.prob fails on risks without spread (an untrained CNN); keep the other statistics then
  note <- ""
  band <- list()
  if (!identical(calibration_B, 0) && !identical(calibration_B, 0L)) {
    if (missing(seed)) abort_missing_seed("external_validation", calibration_B, example_args = "y, score")
    band <- list(B = calibration_B, seed = seed, conf_level = conf_level, cluster = cluster)
  }
  cal <- tryCatch(do.call(external_calibration, c(list(y, p, g = g), band)), error = function(e) {
    note <<- paste("rms::val.prob failed:", conditionMessage(e))
    degenerate_calibration(y, p, g)
  })
  lp <- stats::qlogis(p)
  z <- stats::qnorm(1 - (1 - conf_level) / 2)
  citl_fit <- stats::glm(y ~ 1 + offset(lp), family = stats::binomial())
  slope_fit <- stats::glm(y ~ lp, family = stats::binomial())
  wald <- function(fit, i) {
    b <- unname(stats::coef(fit)[i])
    if (is.na(b)) return(c(NA_real_, NA_real_, NA_real_))
    se <- unname(sqrt(diag(stats::vcov(fit)))[i])
    c(b, b - z * se, b + z * se)
  }
  citl <- wald(citl_fit, 1L)
  slope <- wald(slope_fit, 2L)
  auc <- c(roc$auc, roc$lower, roc$upper)
  vp <- cal$val_prob
  brier <- c(unname(vp["Brier"]), NA_real_, NA_real_)
  ci_method <- "DeLong (AUC), Wald (calibration); no CI for Brier"
  cls <- if (is.null(threshold)) NULL else classification_metrics(y, raw, threshold = threshold, conf_level = conf_level)
  if (!is.null(cls)) cls$ci_method <- "Wilson score"
  if (!is.null(cluster)) {
    boot <- cluster_bootstrap(y, raw, p, cluster, B, seed, threshold = threshold)
    q <- c((1 - conf_level) / 2, 1 - (1 - conf_level) / 2)
    limits <- function(stat) stats::quantile(boot[, stat], q, na.rm = TRUE, names = FALSE)
    auc[2:3] <- limits("auc")
    citl[2:3] <- limits("citl")
    slope[2:3] <- limits("slope")
    brier[2:3] <- limits("brier")
    ci_method <- sprintf("percentile bootstrap over %d clusters (B = %d)", length(unique(cluster)), B)
    if (!is.null(cls)) {
      for (m in CLUSTER_THRESHOLD_METRICS) cls[paste0(m, c("_lower", "_upper"))] <- as.list(limits(m))
      cls$ci_method <- ci_method
    }
  }
  out <- data.frame(
    n = length(y), n_events = sum(y == 1),
    auc = auc[1], auc_lower = auc[2], auc_upper = auc[3],
    citl = citl[1], citl_lower = citl[2], citl_upper = citl[3],
    slope = slope[1], slope_lower = slope[2], slope_upper = slope[3],
    recalibration_intercept = unname(stats::coef(slope_fit)[1]),
    brier = brier[1], brier_lower = brier[2], brier_upper = brier[3], dxy = unname(vp["Dxy"]), c_index = unname(vp["C (ROC)"]),
    r2 = unname(vp["R2"]), emax = unname(vp["Emax"]), e90 = unname(vp["E90"]),
    eavg = unname(vp["Eavg"]), spiegelhalter_z = unname(vp["S:z"]), spiegelhalter_p = unname(vp["S:p"]),
    hl_statistic = unname(cal$hl$statistic), hl_df = unname(cal$hl$parameter), hl_p = cal$hl$p.value,
    n_clipped = sum(raw < eps | raw > 1 - eps), ci_method = ci_method, conf_level = conf_level,
    note = note, stringsAsFactors = FALSE)
  structure(list(summary = out, calibration = cal, roc = roc, classification = cls,
                 recalibration = c(intercept = unname(stats::coef(slope_fit)[1]),
                                   slope = unname(stats::coef(slope_fit)[2]))),
            class = "srnomogram_external")
}

degenerate_calibration <- function(y, p, g) {
  vp <- stats::setNames(rep(NA_real_, 5), c("Brier", "Dxy", "C (ROC)", "R2", "Emax"))
  vp["Brier"] <- mean((p - y)^2)
  hl <- tryCatch(heldout_hl(hl_test(y, p, g = g)), error = function(e) list(statistic = NA_real_, parameter = NA_real_, p.value = NA_real_))
  o <- order(p)
  structure(list(mode = "external", table = data.frame(predicted = p[o], observed = y[o], smoothed = NA_real_),
                 n = length(y), citl = NA_real_, recalibration_intercept = NA_real_, slope = NA_real_,
                 band = NULL, B = 0L, val_prob = vp, hl = hl,
                 mae = NA_real_, q90 = NA_real_),
            class = "srnomogram_calibration")
}

# The threshold metrics bootstrapped over clusters (with `threshold`).
CLUSTER_THRESHOLD_METRICS <- c("accuracy", "sensitivity", "specificity", "ppv", "npv")

# B percentile-bootstrap replicates over clusters: each draws length(unique(cluster))
# clusters with replacement (sample.int, in order of first appearance) and keeps every
# row of each. Columns: auc (Mann-Whitney), citl and slope (glm on the logit of the
# clipped risks `p`), brier (of `p`, as rms::val.prob) and, with `threshold`, the
# CLUSTER_THRESHOLD_METRICS (a row is positive when score >= threshold, as
# classification_metrics()). A replicate with one outcome class is NA throughout.
cluster_bootstrap <- function(y, score, p, cluster, B, seed, threshold = NULL) {
  ids <- unique(cluster)
  rows <- split(seq_along(y), factor(cluster, levels = ids))
  lp <- stats::qlogis(p)
  stat_names <- c("auc", "citl", "slope", "brier", if (!is.null(threshold)) CLUSTER_THRESHOLD_METRICS)
  empty <- stats::setNames(rep(NA_real_, length(stat_names)), stat_names)
  one <- function() {
    i <- unlist(rows[sample.int(length(ids), replace = TRUE)], use.names = FALSE)
    yy <- y[i]
    n1 <- sum(yy == 1)
    n0 <- length(yy) - n1
    if (n1 == 0 || n0 == 0) return(empty)
    r <- rank(score[i])
    auc <- (sum(r[yy == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
    l <- lp[i]
    citl <- unname(stats::coef(suppressWarnings(stats::glm(yy ~ 1 + offset(l), family = stats::binomial())))[1])
    slope <- unname(stats::coef(suppressWarnings(stats::glm(yy ~ l, family = stats::binomial())))[2])
    out <- c(auc = auc, citl = citl, slope = slope, brier = mean((p[i] - yy)^2))
    if (is.null(threshold)) return(out)
    pos <- score[i] >= threshold
    tp <- sum(pos & yy == 1)
    fp <- sum(pos & yy == 0)
    tn <- n0 - fp
    ratio <- function(a, b) if (b > 0) a / b else NA_real_
    c(out, accuracy = (tp + tn) / length(yy), sensitivity = tp / n1, specificity = tn / n0,
      ppv = ratio(tp, tp + fp), npv = ratio(tn, n1 - tp + tn))
  }
  run <- function() matrix(vapply(seq_len(B), function(b) one(), empty), nrow = B, byrow = TRUE,
                           dimnames = list(NULL, stat_names))
  if (is.null(seed)) run() else withr::with_seed(seed, run())
}

#' Logistic recalibration of predicted risks
#'
#' Refits the intercept and slope of a model on the logit of its risks,
#' `glm(y ~ qlogis(score))`, and returns the recalibrated risks
#' `plogis(a + b * qlogis(score))`. Measured on the cohort it was fitted on,
#' the result is apparent; report it apart from the frozen model's figures.
#'
#' @inheritParams external_validation
#' @return A list: `intercept`, `slope`, `score` (recalibrated risks, same
#'   order as the input; `NA` where `score` or `y` was missing). When the score's
#'   logit has no spread (SD at most 1e-6) or the fit does not converge, all three
#'   are `NA`, with a warning of class `srnomogram_warning_no_spread`.
#' @examples
#' set.seed(4)
#' p <- runif(100)
#' y <- rbinom(100, 1, plogis(-0.5 + 0.7 * qlogis(p)))
#' recalibrate_risk(y, p)[c("intercept", "slope")]
#' @export
recalibrate_risk <- function(y, score, eps = 1e-8, ...) {
  score <- renamed_argument(list(...), c(prob = "score"), "recalibrate_risk",
                            missing_value = if (!missing(score)) score)
  cc <- check_outcome_score(y, score, "score", probability = TRUE)
  lp <- stats::qlogis(pmin(pmax(cc$score, eps), 1 - eps))
  yy <- cc$y
  # A score with (almost) no spread on this cohort, e.g. a CNN that collapsed to one
  # output, has no estimable slope: glm() would return a huge, meaningless one.
  spread <- if (length(lp) > 1) stats::sd(lp) else 0
  fit <- if (spread > 1e-6) stats::glm(yy ~ lp, family = stats::binomial())
  if (is.null(fit) || !fit$converged || !all(is.finite(stats::coef(fit)))) {
    warn_classed(c("The score has no usable spread on this cohort (SD of its logit {signif(spread, 3)}); its logistic recalibration is not estimable.",
                   i = "The intercept, slope and recalibrated risks are NA."), "no_spread")
    return(list(intercept = NA_real_, slope = NA_real_, score = rep(NA_real_, length(score))))
  }
  b <- unname(stats::coef(fit))
  all_lp <- stats::qlogis(pmin(pmax(score, eps), 1 - eps))
  list(intercept = b[1], slope = b[2], score = stats::plogis(b[1] + b[2] * all_lp))
}

#' @export
print.srnomogram_external <- function(x, ...) {
  s <- x$summary
  cat(sprintf("External validation (n = %d, %d events)\n", s$n, s$n_events))
  cat(sprintf("  AUC %.3f (%.3f-%.3f); calibration-in-the-large %.3f (%.3f-%.3f); slope %.3f (%.3f-%.3f)\n",
              s$auc, s$auc_lower, s$auc_upper, s$citl, s$citl_lower, s$citl_upper,
              s$slope, s$slope_lower, s$slope_upper))
  cat(sprintf("  Brier %.4f; Hosmer-Lemeshow X2 = %.3f, df = %d, p = %.4g; CIs: %s\n",
              s$brier, s$hl_statistic, s$hl_df, s$hl_p, s$ci_method))
  invisible(x)
}

#' @export
summary.srnomogram_external <- function(object, ...) object$summary

#' Tables of an external validation
#'
#' @param x A `srnomogram_external` from [external_validation()].
#' @param ... Unused.
#' @param what `"summary"` (one row of every number, as `summary()`),
#'   `"calibration"` (the smoothed calibration curve: `predicted`, `observed`,
#'   `smoothed`) or `"classification"` (the metrics at `threshold`; no rows
#'   when no threshold was given).
#' @return A data frame.
#' @export
as.data.frame.srnomogram_external <- function(x, ..., what = c("summary", "calibration", "classification")) {
  what <- rlang::arg_match(what)
  switch(what,
         summary = x$summary,
         calibration = x$calibration$table,
         classification = x$classification %||% empty_classification())
}

# The columns of classification_metrics() (and ci_method), without rows.
empty_classification <- function() {
  m <- c("accuracy", "sensitivity", "specificity", "ppv", "npv")
  num <- c("threshold", as.vector(rbind(m, paste0(m, "_lower"), paste0(m, "_upper"))))
  cbind(as.data.frame(stats::setNames(rep(list(numeric()), length(num)), num)),
        data.frame(tp = integer(), fp = integer(), tn = integer(), fn = integer(), n = integer(),
                   ci_method = character()))
}

#' @export
plot.srnomogram_external <- function(x, ...) calibration_plot(x$calibration, ...)

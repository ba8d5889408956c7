#' Closed testing procedure to choose how to update a prediction model
#'
#' The procedure of Vergouwe et al. (2017) for a logistic model applied to a
#' new population (a new centre, or the pooled centres of an internal-external
#' cross-validation). Four candidate models, from least to most extensive:
#'
#' * `"none"`: the original model, `plogis(lp)` (no parameter estimated);
#' * `"intercept"`: recalibration in the large, `glm(y ~ 1 + offset(lp))`
#'   (1 parameter);
#' * `"recalibration"`: logistic recalibration, `glm(y ~ lp)` (intercept and
#'   calibration slope, 2 parameters);
#' * `"refit"`: model revision, `glm(y ~ X)`, every coefficient re-estimated
#'   (p + 1 parameters).
#'
#' Each step is a likelihood-ratio test of a candidate against the most
#' extensive model, and the procedure stops at the first candidate that is not
#' rejected at `alpha`:
#'
#' 1. `"none"` against `"refit"` (df p + 1): not rejected, keep the original
#'    model. This test of the intersection of every null hypothesis is what
#'    makes the sequence a closed test that keeps the family-wise error rate
#'    at about `alpha`.
#' 2. `"intercept"` against `"refit"` (df p): not rejected, update the
#'    intercept only.
#' 3. `"recalibration"` against `"refit"` (df p - 1): not rejected, recalibrate
#'    intercept and slope; rejected, refit.
#'
#' Without `X` the most extensive model is `"recalibration"`: step 1 tests
#' `"none"` against it (df 2), step 2 `"intercept"` against it (df 1), and
#' `"recalibration"` is chosen when both are rejected. With a single predictor
#' (p = 1) the refit model is the recalibrated one (df of step 3 is 0): step 3
#' is not performed and `"recalibration"` is chosen.
#'
#' @param y Binary outcome (0/1) in the new data.
#' @param lp The original model's linear predictor (log-odds) for the same
#'   rows.
#' @param X Optional predictors of the original model for the same rows (a
#'   numeric matrix, or a data frame, expanded by [stats::model.matrix()]),
#'   for the refit model. `lp` must be a linear function of them (the
#'   original model's own predictors), so that the candidates are nested.
#' @param alpha Level of each likelihood-ratio test.
#' @return An object of class `srnomogram_update_test`: `method` (the chosen
#'   candidate), `tests` (one row per step: `step`, `null_model`,
#'   `alternative`, `statistic` (LR chi-square), `df`, `p_value`, `performed`
#'   (whether the procedure reached it) and `rejected` (`NA` when not
#'   performed); `summary()` returns it), `loglik` (the log-likelihood of each
#'   candidate), `coefficients` (of the chosen model: none for `"none"`;
#'   `intercept` added to `lp`; `intercept` and `slope` on `lp`; the refit
#'   coefficients of `X`), `lp` (the chosen model's linear predictor on these
#'   rows), `alpha` and `n`.
#' @details Incomplete rows are dropped with a warning of class
#'   `srnomogram_warning_missing`. A candidate whose fit does not converge
#'   (e.g. complete separation in a small centre) is an error of class
#'   `srnomogram_error_fit`.
#' @references Vergouwe Y, Nieboer D, Oostenbrink R, et al. (2017). A closed
#'   testing procedure to select an appropriate method for updating prediction
#'   models. Stat Med 36:4529-4539. Steyerberg EW (2019). Clinical Prediction
#'   Models, 2nd ed., chapter 20.
#' @examples
#' set.seed(2)
#' X <- cbind(age = rnorm(300), size = rnorm(300))
#' lp <- drop(-0.5 + X %*% c(0.8, 1.2))
#' y <- rbinom(300, 1, plogis(1 + lp))   # the new centre has a higher baseline risk
#' update_closed_test(y, lp, X)
#' @export
update_closed_test <- function(y, lp, X = NULL, alpha = 0.05) {
  if (!is.numeric(alpha) || length(alpha) != 1L || is.na(alpha) || alpha <= 0 || alpha >= 1) {
    abort_input("{.arg alpha} must be a number in (0, 1), e.g. 0.05, not {.val {format(alpha)}}.")
  }
  y <- check_binary(y, arg = "y")
  check_numeric(lp, arg = "lp")
  check_same_length(y, lp, "y", "lp")
  if (!is.null(X)) {
    X <- update_design(X)
    if (nrow(X) != length(y)) abort_input("{.arg X} must have one row per element of {.arg y} ({nrow(X)} vs {length(y)}).")
  }
  ok <- !is.na(y) & !is.na(lp) & (if (is.null(X)) TRUE else stats::complete.cases(X))
  if (!all(ok)) warn_classed("{sum(!ok)} row{?s} with missing data removed.", "missing")
  y <- y[ok]
  lp <- lp[ok]
  if (!is.null(X)) X <- X[ok, , drop = FALSE]
  if (any(!is.finite(lp))) abort_input("{.arg lp} must be finite log-odds; row {which(!is.finite(lp))[1]} is {.val {lp[!is.finite(lp)][1]}}.")
  if (!is.null(X)) check_nested(lp, X)

  here <- rlang::current_env()
  fit_glm <- function(fit, name) {
    if (!fit$converged || any(!is.finite(stats::coef(fit)[!is.na(stats::coef(fit))]))) {
      abort_fit(c("The {name} model did not converge on these {length(y)} rows.",
                  i = "Complete separation or too few events; the closed test cannot compare the candidates here."),
                call = here)
    }
    fit
  }
  fits <- list(
    intercept = fit_glm(suppressWarnings(stats::glm(y ~ 1, offset = lp, family = stats::binomial())), "intercept"),
    recalibration = fit_glm(suppressWarnings(stats::glm(y ~ lp, family = stats::binomial())), "recalibration"))
  if (!is.null(X)) fits$refit <- fit_glm(suppressWarnings(stats::glm(y ~ X, family = stats::binomial())), "refit")
  loglik <- c(none = sum(stats::plogis((2 * y - 1) * lp, log.p = TRUE)),
              vapply(fits, function(f) as.numeric(stats::logLik(f)), numeric(1)))
  n_par <- c(none = 0, intercept = 1, recalibration = 2, refit = if (!is.null(X)) fits$refit$rank)[names(loglik)]
  top <- names(loglik)[length(loglik)]
  candidates <- setdiff(names(loglik), top)
  tests <- data.frame(step = seq_along(candidates), null_model = candidates, alternative = top,
                      statistic = 2 * (loglik[[top]] - loglik[candidates]),
                      df = as.integer(n_par[[top]] - n_par[candidates]), stringsAsFactors = FALSE)
  tests$statistic <- pmax(tests$statistic, 0)  # equal fits may differ by rounding below zero
  tests$p_value <- ifelse(tests$df > 0, stats::pchisq(tests$statistic, tests$df, lower.tail = FALSE), NA_real_)
  tests$performed <- FALSE
  tests$rejected <- NA
  method <- top
  for (i in seq_len(nrow(tests))) {
    if (tests$df[i] == 0) {  # the candidate is the most extensive model itself (one predictor)
      method <- tests$null_model[i]
      break
    }
    tests$performed[i] <- TRUE
    tests$rejected[i] <- tests$p_value[i] < alpha
    if (!tests$rejected[i]) {
      method <- tests$null_model[i]
      break
    }
  }
  rownames(tests) <- NULL
  coefs <- switch(method,
                  none = numeric(0),
                  intercept = c(intercept = unname(stats::coef(fits$intercept))),
                  recalibration = stats::setNames(unname(stats::coef(fits$recalibration)), c("intercept", "slope")),
                  refit = stats::setNames(stats::coef(fits$refit), c("(Intercept)", colnames(X))))
  updated <- if (method == "none") lp else unname(stats::predict(fits[[method]], type = "link"))
  structure(list(method = method, tests = tests, loglik = loglik, n_par = n_par, coefficients = coefs,
                 lp = updated, alpha = alpha, n = length(y)),
            class = "srnomogram_update_test")
}

# X as a numeric design matrix without intercept (a data frame through model.matrix).
update_design <- function(X, call = rlang::caller_env()) {
  if (is.data.frame(X)) {
    mf <- stats::model.frame(~ ., data = X, na.action = stats::na.pass)
    X <- stats::model.matrix(~ ., data = mf)[, -1, drop = FALSE]
  }
  if (!is.matrix(X) || !is.numeric(X)) {
    abort_input("{.arg X} must be a numeric matrix or a data frame of the original model's predictors, not {.cls {class(X)}}.", call = call)
  }
  if (is.null(colnames(X))) colnames(X) <- paste0("x", seq_len(ncol(X)))
  X
}

# The candidates are nested only when lp is a linear function of X (the original model's predictors).
check_nested <- function(lp, X, call = rlang::caller_env()) {
  res <- stats::lm.fit(cbind(1, X), lp)$residuals
  if (sqrt(mean(res^2)) > 1e-6 * max(1, stats::sd(lp))) {
    abort_input(c("{.arg lp} is not a linear function of {.arg X}, so the refit model does not nest the recalibrated one.",
                  i = "Give in {.arg X} the original model's predictors, coded as in that model (e.g. its spline terms)."),
                call = call)
  }
}

METHOD_LABELS <- c(none = "original model (no update)", intercept = "recalibration in the large (intercept)",
                   recalibration = "logistic recalibration (intercept and slope)", refit = "model revision (refit)")

#' @export
print.srnomogram_update_test <- function(x, ...) {
  cat(sprintf("Closed testing procedure for model updating (Vergouwe et al. 2017), n = %d, alpha = %g\n", x$n, x$alpha))
  t <- x$tests
  for (i in seq_len(nrow(t))) {
    verdict <- if (!t$performed[i]) "not performed" else if (t$rejected[i]) "rejected" else "not rejected"
    cat(sprintf("  Step %d: %s vs %s: LR chi2 = %.3f, df = %d, p = %s (%s)\n", t$step[i], t$null_model[i],
                t$alternative[i], t$statistic[i], t$df[i], format.pval(t$p_value[i], digits = 4), verdict))
  }
  cat(sprintf("Chosen: %s\n", METHOD_LABELS[[x$method]]))
  if (length(x$coefficients)) print(round(x$coefficients, 4))
  invisible(x)
}

#' @export
summary.srnomogram_update_test <- function(object, ...) object$tests

#' @export
as.data.frame.srnomogram_update_test <- function(x, ...) x$tests

#' @export
plot.srnomogram_update_test <- function(x, ...) {
  t <- x$tests
  t$critical <- ifelse(t$df > 0, stats::qchisq(1 - x$alpha, pmax(t$df, 1)), NA_real_)
  t$label <- factor(sprintf("Step %d: %s vs %s (df %d)", t$step, t$null_model, t$alternative, t$df),
                    levels = rev(sprintf("Step %d: %s vs %s (df %d)", t$step, t$null_model, t$alternative, t$df)))
  t$verdict <- ifelse(!t$performed, "not performed", ifelse(t$rejected, "rejected", "not rejected"))
  ggplot2::ggplot(t, ggplot2::aes(y = .data$label)) +
    ggplot2::geom_point(ggplot2::aes(x = .data$critical), shape = 124, size = 6, colour = "grey40", na.rm = TRUE) +
    ggplot2::geom_point(ggplot2::aes(x = .data$statistic, colour = .data$verdict), size = 3) +
    ggplot2::scale_colour_manual(values = c(rejected = "#D55E00", `not rejected` = "#0072B2", `not performed` = "grey60"),
                                 name = NULL) +
    ggplot2::labs(x = "Likelihood-ratio chi-square (bar: critical value)", y = NULL,
                  title = sprintf("Chosen: %s", METHOD_LABELS[[x$method]])) +
    theme_srnomogram()
}

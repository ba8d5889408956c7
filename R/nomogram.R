#' Fit the logistic nomogram model
#'
#' Fits `rms::lrm(formula, data, x = TRUE, y = TRUE)` with an [rms::datadist()]
#' of `data` set only for the duration of the call (and of every later
#' `nomogram`, `predict` and `summary` call on the fit): no global
#' `options(datadist = )` is left behind. The arguments come in the order of
#' `rms::lrm()` and [decision_curve()]: formula, then data.
#'
#' @param formula Model formula, e.g. `y ~ score + age + size` (or its text).
#' @param data A data frame with the outcome (0/1) and the predictors.
#'   Incomplete rows are dropped with a warning giving their count.
#' @return The `rms::lrm` fit with class `srnomogram_nomogram` prepended, so
#'   every rms function still applies; the datadist is kept in `$datadist`.
#'   `summary()` gives its odds ratios as a data frame, `predict()` its risks.
#' @details Complete separation (a linear predictor that splits the classes
#'   perfectly) is an error of class `srnomogram_error_separation`: the maximum
#'   likelihood estimates do not exist.
#'
#'   Until version 0.1.0 the order was `fit_nomogram(data, formula)`. That
#'   call (a data frame first, a formula second) still fits the same model,
#'   with a warning of class `srnomogram_warning_deprecated`; it will become an
#'   error.
#' @references Harrell FE (2023). rms: Regression Modeling Strategies, 6.5-0.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' fit <- fit_nomogram(y ~ score + age, d)
#' fit
#' head(predict(fit, d))
#' nomogram_points_table(fit)
#' @export
fit_nomogram <- function(formula, data) {
  if (is.data.frame(formula) && !is.data.frame(data)) {
    warn_classed(c("{.fn fit_nomogram} now takes the formula first, as {.fn rms::lrm} does.",
                   i = "Call {.code fit_nomogram(formula, data)}; the order {.code (data, formula)} will become an error."),
                 "deprecated")
    swap <- formula
    formula <- data
    data <- swap
  }
  formula <- as_two_sided_formula(formula)
  data <- check_data_frame(data)
  vars <- all.vars(formula)
  check_columns(data, vars)
  d <- complete_rows(data[, vars, drop = FALSE], vars)
  yname <- all.vars(formula[[2]])
  d[[yname]] <- check_binary(d[[yname]], arg = "outcome")
  check_separation(formula, d, yname)
  dd <- rms::datadist(d)
  fit <- with_datadist(dd, rms::lrm(formula, data = d, x = TRUE, y = TRUE))
  if (isTRUE(fit$fail)) {
    abort_fit("{.fn rms::lrm} failed to converge for {.code {deparse1(formula)}}.")
  }
  fit$datadist <- dd
  fit$srn_formula <- formula
  class(fit) <- c("srnomogram_nomogram", class(fit))
  fit
}

with_datadist <- function(dd, expr) {
  old <- options(datadist = dd)
  on.exit(options(old), add = TRUE)
  force(expr)
}

check_separation <- function(formula, d, yname) {
  X <- stats::model.matrix(formula, d)
  y <- d[[yname]]
  fit <- suppressWarnings(stats::glm.fit(X, y, family = stats::binomial()))
  lp <- fit$linear.predictors
  if (min(lp[y == 1]) > max(lp[y == 0])) {
    abort_separation(c("Complete separation: the predictors of {.code {deparse1(formula)}} split the outcome perfectly.",
                     i = "Maximum likelihood estimates do not exist; remove the separating predictor or use penalisation."))
  }
  if (min(lp[y == 1]) >= max(lp[y == 0])) {
    warn_classed("Quasi-complete separation in {.code {deparse1(formula)}}: estimates may be unstable.", "separation")
  }
  invisible(NULL)
}

strip_class <- function(x) {
  class(x) <- setdiff(class(x), "srnomogram_nomogram")
  x
}

#' @export
print.srnomogram_nomogram <- function(x, ...) {
  cat("Logistic nomogram model (rms::lrm)\n")
  with_datadist(x$datadist, print(strip_class(x), ...))
  invisible(x)
}

#' @export
formula.srnomogram_nomogram <- function(x, ...) x$srn_formula

#' Predicted risk from a nomogram fit
#'
#' @param object A `srnomogram_nomogram` from [fit_nomogram()].
#' @param newdata A data frame with the predictors; `NULL` gives the fitted
#'   risks of the training data.
#' @param type `"fitted"` (probability, default) or `"lp"` (linear predictor).
#' @param ... Passed to `rms::predict.lrm()`.
#' @return A numeric vector.
#' @export
predict.srnomogram_nomogram <- function(object, newdata = NULL, type = c("fitted", "lp"), ...) {
  type <- rlang::arg_match(type)
  fit <- strip_class(object)
  if (is.null(newdata)) {
    lp <- as.vector(fit$linear.predictors)
    return(if (type == "lp") lp else stats::plogis(lp))
  }
  newdata <- check_data_frame(newdata)
  check_columns(newdata, setdiff(all.vars(object$srn_formula), all.vars(object$srn_formula[[2]])),
                arg = "newdata")
  as.vector(with_datadist(object$datadist, stats::predict(fit, newdata = newdata, type = type, ...)))
}

#' Odds ratios of a nomogram fit
#'
#' @param object A `srnomogram_nomogram`.
#' @param conf_level Confidence level of the Wald intervals.
#' @param ... Unused.
#' @return A data frame: `term`, `coef`, `se`, `odds_ratio`, `lower`, `upper`
#'   (Wald `conf_level` CI per unit, `exp(b -/+ z se)`), `p_value`.
#' @export
summary.srnomogram_nomogram <- function(object, conf_level = 0.95, ...) {
  z_ci <- check_conf_level(conf_level)
  b <- stats::coef(object)
  se <- sqrt(diag(stats::vcov(object)))
  z <- b / se
  data.frame(term = names(b), coef = unname(b), se = unname(se),
             odds_ratio = unname(exp(b)), lower = unname(exp(b - z_ci * se)),
             upper = unname(exp(b + z_ci * se)),
             p_value = unname(2 * stats::pnorm(-abs(z))), stringsAsFactors = FALSE)
}

#' The rms nomogram of a fit
#'
#' Calls `rms::nomogram(fit, fun = plogis, ...)` with the fit's datadist.
#'
#' @param fit A `srnomogram_nomogram`.
#' @param fun_at Probabilities to mark on the risk axis (`NULL`: rms's choice).
#' @param ... Passed to `rms::nomogram()`.
#' @return An rms `nomogram` object.
#' @export
nomogram_rms <- function(fit, fun_at = NULL, ...) {
  check_nomogram_fit(fit)
  args <- list(strip_class(fit), fun = stats::plogis, funlabel = "Risk", ...)
  if (!is.null(fun_at)) args$fun.at <- fun_at
  with_datadist(fit$datadist, do.call(rms::nomogram, args))
}

check_nomogram_fit <- function(fit, arg = rlang::caller_arg(fit), call = rlang::caller_env()) {
  if (!inherits(fit, "srnomogram_nomogram")) {
    abort_input("{.arg {arg}} must come from {.fn fit_nomogram}, not {.cls {class(fit)}}.", call = call)
  }
}

#' Nomogram axes as a data frame (for calculators and plots)
#'
#' Every axis of the rms nomogram as rows: predictor values with their points,
#' the total-points axis, and the risk axis (total points at which each risk is
#' reached). The attribute `scaling` (also returned as rows of type
#' `"scaling"`) gives the mapping from total points to risk:
#' `risk = plogis(intercept + total_points / points_per_lp)`.
#'
#' @param fit A `srnomogram_nomogram`.
#' @param fun_at Risk values for the risk axis (`NULL`: rms's choice).
#' @return A data frame with columns `axis` (`"predictor"`, `"total_points"`,
#'   `"risk"`, `"scaling"`), `variable`, `value` (character, as axis labels)
#'   and `points`. Predictor points are linear in the value between axis
#'   ticks (for linear terms), so a calculator interpolates them. For
#'   `scaling` rows `variable` is `"intercept"`, `"points_per_lp"` or
#'   `"coef:<term>"` (the lrm coefficients) and `value` holds the number.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(100), age = round(rnorm(100, 50, 10)))
#' d$y <- rbinom(100, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' tab <- nomogram_points_table(fit_nomogram(y ~ score + age, d))
#' sc <- attr(tab, "scaling")
#' plogis(sc$intercept + 100 / sc$points_per_lp) # risk at 100 total points
#' @export
nomogram_points_table <- function(fit, fun_at = NULL) {
  nm <- nomogram_rms(fit, fun_at = fun_at)
  info <- attr(nm, "info")
  preds <- names(info$discrete)
  rows <- lapply(preds, function(v) {
    a <- nm[[v]]
    data.frame(axis = "predictor", variable = v, value = as.character(a[[v]]),
               points = unname(a$points), stringsAsFactors = FALSE)
  })
  tot <- nm[["total.points"]]$x
  rows[[length(rows) + 1L]] <- data.frame(axis = "total_points", variable = "Total Points",
                                          value = as.character(tot), points = tot,
                                          stringsAsFactors = FALSE)
  fx <- nm[[length(nm)]]
  rows[[length(rows) + 1L]] <- data.frame(axis = "risk", variable = "Risk",
                                          value = as.character(fx$x.real), points = fx$x,
                                          stringsAsFactors = FALSE)
  b <- stats::coef(fit)
  sc <- data.frame(axis = "scaling",
                   variable = c("intercept", "points_per_lp", paste0("coef:", names(b))),
                   value = as.character(c(unname(info$Intercept), info$sc, unname(b))),
                   points = NA_real_, stringsAsFactors = FALSE)
  rows[[length(rows) + 1L]] <- sc
  out <- do.call(rbind, rows)
  rownames(out) <- NULL
  attr(out, "scaling") <- list(intercept = unname(info$Intercept), points_per_lp = info$sc)
  out
}

#' @rdname nomogram_plot
#' @param x A `srnomogram_nomogram`.
#' @export
plot.srnomogram_nomogram <- function(x, ...) nomogram_plot(x, ...)

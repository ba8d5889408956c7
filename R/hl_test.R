#' Hosmer-Lemeshow goodness-of-fit test
#'
#' The test of `ResourceSelection::hoslem.test()` (version 0.3.6), reimplemented
#' because that package is not available here and proven equal to it on the
#' project's golden cases (where it is installed, `engine = "ResourceSelection"`
#' calls it instead). Observations are grouped by [cut()] at the unique
#' type-7 quantiles `seq(0, 1, 1/g)` of the predicted probabilities
#' (`include.lowest = TRUE`); the statistic sums \eqn{(O - E)^2 / E} over both
#' outcome columns of the observed and expected tables; the degrees of freedom
#' are the number of non-empty groups minus 2.
#'
#' @param y Binary outcome, 0/1 (numeric, logical or a two-level factor).
#' @param score Predicted probabilities in \[0, 1\] (values outside are an
#'   error: the expected counts of outcome 0 would be negative). Called `prob`
#'   until 0.1.0; that name still works, with a warning of class
#'   `srnomogram_warning_deprecated`.
#' @param g Number of groups (default 10).
#' @param engine `"srnomogram"` (default) computes the test here; this
#'   implementation is proven equal to `ResourceSelection::hoslem.test()` 0.3.6
#'   on the project's golden data (statistic and p-value to 1e-10).
#'   `"ResourceSelection"` calls `ResourceSelection::hoslem.test()` itself on the
#'   same checked, complete data (it must be installed:
#'   `install.packages("ResourceSelection")`; otherwise an error of class
#'   `srnomogram_error_engine`). Both return the same `htest`.
#' @param ... Only the deprecated `prob`; any other argument is an error.
#' @return An object of class `c("srnomogram_htest", "htest")` (it prints as
#'   [stats::chisq.test()] does; `as.data.frame()` gives one row) with `statistic` (X-squared),
#'   `parameter` (df), `p.value`, `method`, `data.name`, and the
#'   `observed` and `expected` tables (one row per group, columns for
#'   outcome 0 and 1), `groups` (the number of non-empty groups) and `engine`.
#' @details When tied predictions make fewer than `g` distinct quantiles, fewer
#'   groups are formed (as `hoslem.test` does) and a warning says so. When an
#'   interpolated quantile leaves a group empty, or a group has an expected
#'   count of zero, the statistic is `NaN`, as in the reference.
#' @references Hosmer DW, Lemeshow S (2000). Applied Logistic Regression.
#'   Lele SR, Keim JL, Solymos P (2019). ResourceSelection, version 0.3-6.
#' @examples
#' set.seed(1)
#' x <- rnorm(200)
#' y <- rbinom(200, 1, plogis(x))
#' p <- fitted(glm(y ~ x, family = binomial))
#' hl_test(y, p, g = 10)
#' @export
hl_test <- function(y, score, g = 10, engine = c("srnomogram", "ResourceSelection"), ...) {
  score_expr <- if (missing(score)) match.call(expand.dots = FALSE)$...$prob else substitute(score)
  DNAME <- paste(deparse1(substitute(y)), deparse1(score_expr), sep = ", ")
  prob <- renamed_argument(list(...), c(prob = "score"), "hl_test", missing_value = if (!missing(score)) score)
  if (is.null(prob)) abort_input("{.arg score} is missing: give the predicted probabilities.")
  engine <- rlang::arg_match(engine)
  if (engine == "ResourceSelection") check_engine_installed("ResourceSelection", "hl_test")
  y <- check_binary(y, arg = "y", allow_single_class = TRUE)
  check_probability(prob, arg = "score")
  check_same_length(y, prob, "y", "score")
  if (!is.numeric(g) || length(g) != 1L || is.na(g) || g < 3 || g != round(g)) {
    abort_input("{.arg g} must be a single integer >= 3, not {.val {g}}.")
  }
  cc <- drop_missing(y, prob)
  y <- cc[[1]]
  yhat <- cc[[2]]
  if (length(y) < g) {
    abort_input("{.arg y} has {length(y)} complete observation{?s}; at least {.arg g} = {g} are needed.")
  }
  qq <- unique(stats::quantile(yhat, probs = seq(0, 1, 1 / g)))
  if (length(qq) < 4L) {
    abort_input("{.arg score} has too few distinct values to form 3 groups.")
  }
  cutyhat <- cut(yhat, breaks = qq, include.lowest = TRUE)
  # Interpolated quantiles can fall between tied values and leave a group empty;
  # the reference keeps the empty row (statistic NaN) and counts only non-empty
  # groups in the degrees of freedom.
  n_groups <- length(unique(cutyhat))
  n_empty <- nlevels(cutyhat) - n_groups
  if (n_groups < g) {
    warn_classed(c("Only {n_groups} non-empty group{?s} can be formed from tied predictions, fewer than {.arg g} = {g}.",
                    i = "The degrees of freedom are {n_groups} - 2 = {n_groups - 2}.",
                    if (n_empty > 0) c(x = "{n_empty} group{?s} {?is/are} empty, so the statistic is NaN (as in ResourceSelection::hoslem.test); try a smaller {.arg g}.")), "groups")
  }
  if (engine == "ResourceSelection") {
    ref <- ResourceSelection::hoslem.test(y, yhat, g = g)
    ref$data.name <- DNAME
    ref$groups <- n_groups
    ref$engine <- engine
    class(ref) <- c("srnomogram_htest", "htest")
    return(ref)
  }
  observed <- stats::xtabs(cbind(y0 = 1 - y, y1 = y) ~ cutyhat)
  expected <- stats::xtabs(cbind(yhat0 = 1 - yhat, yhat1 = yhat) ~ cutyhat)
  chisq <- sum((observed - expected)^2 / expected)
  df <- n_groups - 2L
  PVAL <- 1 - stats::pchisq(chisq, df)
  names(chisq) <- "X-squared"
  PARAMETER <- df
  names(PARAMETER) <- "df"
  structure(list(statistic = chisq, parameter = PARAMETER, p.value = PVAL,
                 method = "Hosmer and Lemeshow goodness of fit (GOF) test",
                 data.name = DNAME, observed = observed, expected = expected,
                 groups = n_groups, engine = engine),
            class = c("srnomogram_htest", "htest"))
}

#' One-row data frame of a test
#'
#' The numbers of an [hl_test()] or [compare_roc()] result as one row, for
#' tables and for the Python bridge: `statistic`, `df` (the `parameter`, `NA`
#' when the test has none), `p_value`, one column per `estimate` (its name in
#' lower case, non-alphanumerics as `_`, e.g. `auc_of_score1`), `null_value`,
#' `alternative` and `method`.
#'
#' @param x A `srnomogram_htest`.
#' @param ... Unused.
#' @return A one-row data frame.
#' @examples
#' set.seed(1)
#' p <- runif(100)
#' as.data.frame(hl_test(rbinom(100, 1, p), p))
#' @export
as.data.frame.srnomogram_htest <- function(x, ...) {
  num <- function(v) if (is.null(v)) NA_real_ else unname(as.numeric(v))
  out <- data.frame(statistic = num(x$statistic), df = num(x$parameter), p_value = num(x$p.value))
  if (!is.null(x$estimate)) {
    est <- as.list(unname(x$estimate))
    names(est) <- gsub("[^a-z0-9]+", "_", tolower(names(x$estimate)))
    out <- cbind(out, as.data.frame(est))
  }
  out$null_value <- num(x$null.value)
  out$alternative <- x$alternative %||% NA_character_
  out$method <- x$method
  out
}

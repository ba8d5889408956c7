#' Likelihood-ratio test of nested nomograms
#'
#' Does the larger model add to the smaller one? The likelihood-ratio test of
#' two nested logistic models fitted to the same rows by [fit_nomogram()]
#' (e.g. the deep-learning nomogram against the clinical model): the statistic
#' is the difference of their model likelihood-ratio chi-squares,
#' \eqn{2 (\log L_{big} - \log L_{small})}, on as many degrees of freedom as
#' the larger model has extra coefficients; equal to `rms::lrtest(fit_big,
#' fit_small)`. On the data both models were fitted to, this is the valid test
#' of an added predictor; comparing the two models' training AUCs by DeLong's
#' test is not (Demler, Pencina & D'Agostino 2012).
#'
#' @param fit_big,fit_small `srnomogram_nomogram` fits from [fit_nomogram()]
#'   with the same outcome on the same rows, the predictors of `fit_small` a
#'   subset of those of `fit_big`.
#' @return A `c("srnomogram_htest", "htest")`: `statistic` (L.R. Chisq),
#'   `parameter` (df), `p.value`, `method`, `data.name` (the two formulas);
#'   `as.data.frame()` gives one row.
#' @references Demler OV, Pencina MJ, D'Agostino RB Sr (2012). Misuse of DeLong
#'   test to compare AUCs for nested models. Stat Med 31:2577-2587. Harrell FE,
#'   rms::lrtest.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(150), age = round(rnorm(150, 50, 10)))
#' d$y <- rbinom(150, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' lr_test(fit_nomogram(y ~ age + score, d), fit_nomogram(y ~ age, d))
#' @export
lr_test <- function(fit_big, fit_small) {
  check_nomogram_fit(fit_big)
  check_nomogram_fit(fit_small)
  big <- fit_big$srn_formula
  small <- fit_small$srn_formula
  terms_of <- function(f) attr(stats::terms(f), "term.labels")
  extra <- setdiff(terms_of(small), terms_of(big))
  if (!identical(all.vars(big[[2]]), all.vars(small[[2]])) || length(extra)) {
    abort_input(c("{.arg fit_small} must be nested in {.arg fit_big}: the same outcome, its predictors a subset.",
                  x = "{.code {deparse1(small)}} is not nested in {.code {deparse1(big)}}."))
  }
  if (!identical(unname(as.numeric(fit_big$y)), unname(as.numeric(fit_small$y)))) {
    abort_input(c("{.arg fit_big} and {.arg fit_small} must be fitted to the same rows.",
                  x = "Their outcomes differ ({length(fit_big$y)} and {length(fit_small$y)} rows); drop incomplete rows before fitting both."))
  }
  chisq <- unname(fit_big$stats["Model L.R."] - fit_small$stats["Model L.R."])
  df <- unname(fit_big$stats["d.f."] - fit_small$stats["d.f."])
  if (df < 1) abort_input("{.arg fit_big} has no coefficient that {.arg fit_small} lacks; the test needs nested models of different size.")
  structure(list(statistic = c(`L.R. Chisq` = chisq), parameter = c(df = df),
                 p.value = stats::pchisq(chisq, df, lower.tail = FALSE),
                 method = "Likelihood-ratio test of nested logistic models (rms::lrtest)",
                 data.name = paste(deparse1(big), "vs", deparse1(small))),
            class = c("srnomogram_htest", "htest"))
}

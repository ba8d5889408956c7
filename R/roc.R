#' Area under the ROC curve with DeLong confidence interval
#'
#' `pROC::roc()` and `pROC::ci.auc(method = "delong")`.
#'
#' @param y Binary outcome (0/1; 1 = malignant).
#' @param score Predicted risk or score (higher = more likely 1).
#' @param direction `"<"` (default: controls have lower scores), `">"` or `"auto"`.
#' @param conf_level Confidence level.
#' @return An object of class `srnomogram_roc`: `auc`, `lower`, `upper`,
#'   `conf_level`, `n_cases`, `n_controls`, `roc` (the pROC object),
#'   and `curve` (data frame of `threshold`, `sensitivity`, `specificity`).
#' @references DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Biometrics
#'   44:837-845. Robin X et al. (2011). pROC. BMC Bioinformatics 12:77.
#' @examples
#' set.seed(1)
#' y <- rbinom(100, 1, 0.4)
#' s <- y + rnorm(100)
#' roc_auc(y, s)
#' @export
roc_auc <- function(y, score, direction = c("<", ">", "auto"), conf_level = 0.95) {
  direction <- rlang::arg_match(direction)
  check_conf_level(conf_level)
  cc <- check_outcome_score(y, score, "score")
  y <- check_binary(cc$y, arg = "y")
  score <- cc$score
  r <- pROC::roc(y, score, levels = c(0, 1), direction = direction, quiet = TRUE)
  ci <- pROC::ci.auc(r, method = "delong", conf.level = conf_level)
  structure(list(auc = as.numeric(r$auc), lower = ci[1], upper = ci[3], conf_level = conf_level,
                 n_cases = sum(y == 1), n_controls = sum(y == 0), roc = r,
                 curve = data.frame(threshold = r$thresholds, sensitivity = r$sensitivities,
                                    specificity = r$specificities)),
            class = "srnomogram_roc")
}

#' @export
print.srnomogram_roc <- function(x, ...) {
  cat(sprintf("AUC %.3f (%g%% CI %.3f-%.3f, DeLong); %d cases, %d controls\n", x$auc,
              100 * x$conf_level, x$lower, x$upper, x$n_cases, x$n_controls))
  invisible(x)
}

#' @export
summary.srnomogram_roc <- function(object, ...) {
  data.frame(auc = object$auc, lower = object$lower, upper = object$upper,
             conf_level = object$conf_level, n_cases = object$n_cases,
             n_controls = object$n_controls)
}

#' @export
as.data.frame.srnomogram_roc <- function(x, ...) x$curve

#' @rdname roc_plot
#' @export
plot.srnomogram_roc <- function(x, ...) roc_plot(x, ...)

#' Paired DeLong test of two ROC curves
#'
#' `pROC::roc.test(method = "delong", paired = TRUE)` on two scores of the
#' same patients.
#'
#' @param y Binary outcome (0/1).
#' @param score1,score2 Two scores of the same patients.
#' @param direction Direction of both curves, as in [roc_auc()].
#' @return A `c("srnomogram_htest", "htest")` with `statistic` (Z), `p.value`,
#'   `estimate` (both AUCs), `method` and `data.name`; `as.data.frame()` gives
#'   one row ([as.data.frame.srnomogram_htest()]).
#' @examples
#' set.seed(1)
#' y <- rbinom(120, 1, 0.4)
#' compare_roc(y, y + rnorm(120), y + rnorm(120, sd = 2))
#' @export
compare_roc <- function(y, score1, score2, direction = c("<", ">", "auto")) {
  direction <- rlang::arg_match(direction)
  dname <- paste(deparse1(substitute(score1)), "vs", deparse1(substitute(score2)))
  y <- check_binary(y)
  check_numeric(score1)
  check_numeric(score2)
  check_same_length(y, score1, "y", "score1")
  check_same_length(y, score2, "y", "score2")
  cc <- drop_missing(y, score1, score2)
  y <- check_binary(cc[[1]], arg = "y")
  r1 <- pROC::roc(y, cc[[2]], levels = c(0, 1), direction = direction, quiet = TRUE)
  r2 <- pROC::roc(y, cc[[3]], levels = c(0, 1), direction = direction, quiet = TRUE)
  tt <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
  out <- list(statistic = tt$statistic, p.value = tt$p.value,
              estimate = c(`AUC of score1` = as.numeric(r1$auc), `AUC of score2` = as.numeric(r2$auc)),
              null.value = c(`difference in AUC` = 0), alternative = "two.sided",
              method = "DeLong's test for two correlated ROC curves", data.name = dname)
  class(out) <- c("srnomogram_htest", "htest")
  out
}

#' Youden-optimal threshold
#'
#' The threshold maximising sensitivity + specificity - 1 (pROC's `coords(...,
#' "best", best.method = "youden")`; pROC thresholds lie midway between
#' consecutive distinct scores). With ties, the lowest such threshold.
#'
#' @inheritParams roc_auc
#' @return A single number.
#' @examples
#' youden_threshold(c(0, 0, 1, 1), c(0.1, 0.4, 0.35, 0.8))
#' @export
youden_threshold <- function(y, score, direction = c("<", ">")) {
  direction <- rlang::arg_match(direction)
  cc <- check_outcome_score(y, score, "score")
  r <- pROC::roc(cc$y, cc$score, levels = c(0, 1), direction = direction, quiet = TRUE)
  j <- r$sensitivities + r$specificities
  th <- r$thresholds[is.finite(r$thresholds)]
  j <- j[is.finite(r$thresholds)]
  min(th[j == max(j)])
}

#' Accuracy, sensitivity, specificity, PPV and NPV at a threshold
#'
#' A patient is called positive when `score >= threshold`. By default the
#' threshold is the Youden cut-off of the data given; for a test cohort pass
#' the training cohort's cut-off (`youden_threshold(y_train, score_train)`) so
#' that it is applied unchanged, as in the paper.
#'
#' Each proportion carries its Wilson score interval at `conf_level` (without
#' continuity correction), the interval of `prop.test(x, n, correct = FALSE)`:
#' with \eqn{\hat p = x/n} and \eqn{z = \Phi^{-1}((1 + c)/2)}, the limits are
#' \eqn{(\hat p + z^2/2n \pm z \sqrt{\hat p(1-\hat p)/n + z^2/4n^2}) / (1 + z^2/n)},
#' with the lower limit 0 when \eqn{x = 0} and the upper limit 1 when
#' \eqn{x = n}. A proportion with an empty denominator (PPV without any
#' positive call) is `NA` with `NA` limits.
#'
#' @inheritParams roc_auc
#' @param threshold Cut-off; default `youden_threshold(y, score)`.
#' @param conf_level Confidence level of the Wilson intervals.
#' @return A one-row data frame: `threshold`; `accuracy`, `sensitivity`,
#'   `specificity`, `ppv`, `npv`, each followed by its `<metric>_lower` and
#'   `<metric>_upper` Wilson limits; `tp`, `fp`, `tn`, `fn`, `n`.
#' @references Wilson EB (1927). Probable inference, the law of succession, and
#'   statistical inference. J Am Stat Assoc 22:209-212. Newcombe RG (1998).
#'   Two-sided confidence intervals for the single proportion: comparison of
#'   seven methods. Stat Med 17:857-872.
#' @examples
#' set.seed(1)
#' y <- rbinom(100, 1, 0.4)
#' s <- y + rnorm(100)
#' classification_metrics(y, s)
#' classification_metrics(y, s, threshold = 0.5)
#' @export
classification_metrics <- function(y, score, threshold = NULL, conf_level = 0.95) {
  check_conf_level(conf_level)
  cc <- check_outcome_score(y, score, "score")
  y <- cc$y
  score <- cc$score
  if (is.null(threshold)) threshold <- youden_threshold(y, score)
  if (!is.numeric(threshold) || length(threshold) != 1L || is.na(threshold)) {
    abort_input("{.arg threshold} must be a single number.")
  }
  pos <- score >= threshold
  tp <- sum(pos & y == 1)
  fp <- sum(pos & y == 0)
  tn <- sum(!pos & y == 0)
  fn <- sum(!pos & y == 1)
  out <- data.frame(threshold = threshold)
  props <- list(accuracy = c(tp + tn, length(y)), sensitivity = c(tp, tp + fn), specificity = c(tn, tn + fp),
                ppv = c(tp, tp + fp), npv = c(tn, tn + fn))
  for (m in names(props)) {
    ci <- wilson_interval(props[[m]][1], props[[m]][2], conf_level)
    out[[m]] <- ci[1]
    out[[paste0(m, "_lower")]] <- ci[2]
    out[[paste0(m, "_upper")]] <- ci[3]
  }
  cbind(out, data.frame(tp = tp, fp = fp, tn = tn, fn = fn, n = length(y)))
}

# The proportion x / n and its Wilson score interval, computed as
# stats::prop.test(x, n, correct = FALSE)$conf.int (same formula, same clamping
# at 0 and 1); all NA when n = 0.
wilson_interval <- function(x, n, conf_level) {
  if (n == 0) return(c(NA_real_, NA_real_, NA_real_))
  p <- x / n
  z <- stats::qnorm((1 + conf_level) / 2)
  z22n <- z^2 / (2 * n)
  half <- z * sqrt(p * (1 - p) / n + z22n / (2 * n))
  lower <- if (p <= 0) 0 else (p + z22n - half) / (1 + 2 * z22n)
  upper <- if (p >= 1) 1 else (p + z22n + half) / (1 + 2 * z22n)
  c(p, max(lower, 0), min(upper, 1))
}

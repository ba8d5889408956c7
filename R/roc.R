#' Area under the ROC curve with DeLong confidence interval
#'
#' `pROC::roc()` and `pROC::ci.auc(method = "delong")`; with `cluster` (the
#' patient of each lesion) and a patient with several lesions, the clustered
#' DeLong interval of Obuchowski (1997), patients as clusters.
#'
#' The clustered variance sums DeLong's placements per patient: with \eqn{M}
#' cases and \eqn{N} controls in \eqn{I} patients (\eqn{I_{10}} of them with a
#' case, \eqn{I_{01}} with a control), \eqn{m_i} and \eqn{n_i} cases and
#' controls of patient \eqn{i}, and \eqn{V_{10}(X_{i\cdot})},
#' \eqn{V_{01}(Y_{i\cdot})} the sums of its cases' and controls' placements,
#' \eqn{S_{10} = I_{10} / ((I_{10} - 1) M) \sum_i (V_{10}(X_{i\cdot}) - m_i
#' \hat\theta)^2}, \eqn{S_{01}} likewise, \eqn{S_{11} = I / (I - 1) \sum_i
#' (V_{10}(X_{i\cdot}) - m_i \hat\theta)(V_{01}(Y_{i\cdot}) - n_i \hat\theta)}
#' and \eqn{var = S_{10}/M + S_{01}/N + 2 S_{11}/(M N)}; with one lesion per
#' patient it is DeLong's variance.
#'
#' @param y Binary outcome (0/1; 1 = malignant).
#' @param score Predicted risk or score (higher = more likely 1).
#' @param direction `"<"` (default: controls have lower scores), `">"` or `"auto"`.
#' @param conf_level Confidence level.
#' @param cluster Optional patient of each lesion (as long as `y`). `NULL`
#'   (default), or one lesion per patient: DeLong's interval, as pROC.
#' @return An object of class `srnomogram_roc`: `auc`, `lower`, `upper`,
#'   `conf_level`, `n_cases`, `n_controls`, `method` (`"DeLong"` or
#'   `"clustered DeLong (Obuchowski 1997), patients as clusters"`), `roc` (the
#'   pROC object), and `curve` (data frame of `threshold`, `sensitivity`,
#'   `specificity`).
#' @references DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Biometrics
#'   44:837-845. Obuchowski NA (1997). Nonparametric analysis of clustered ROC
#'   curve data. Biometrics 53:567-578. Robin X et al. (2011). pROC. BMC
#'   Bioinformatics 12:77.
#' @examples
#' set.seed(1)
#' y <- rbinom(100, 1, 0.4)
#' s <- y + rnorm(100)
#' roc_auc(y, s)
#' roc_auc(y, s, cluster = rep(1:50, each = 2))
#' @export
roc_auc <- function(y, score, direction = c("<", ">", "auto"), conf_level = 0.95, cluster = NULL) {
  direction <- rlang::arg_match(direction)
  check_conf_level(conf_level)
  cluster <- check_cluster(cluster, length(y))
  cc <- check_outcome_score(y, score, "score")
  if (!is.null(cluster)) cluster <- cluster[!is.na(y) & !is.na(score)]
  y <- check_binary(cc$y, arg = "y")
  score <- cc$score
  r <- pROC::roc(y, score, levels = c(0, 1), direction = direction, quiet = TRUE)
  ci <- pROC::ci.auc(r, method = "delong", conf.level = conf_level)
  method <- "DeLong"
  if (is_clustered(cluster)) {
    v <- delong_cov(y, cbind(orient(score, r$direction)), cluster)
    half <- stats::qnorm((1 + conf_level) / 2) * sqrt(v$cov[1, 1])
    ci <- c(max(v$auc - half, 0), v$auc, min(v$auc + half, 1))
    method <- clustered_delong
  }
  structure(list(auc = as.numeric(r$auc), lower = ci[1], upper = ci[3], conf_level = conf_level,
                 n_cases = sum(y == 1), n_controls = sum(y == 0), method = method, roc = r,
                 curve = data.frame(threshold = r$thresholds, sensitivity = r$sensitivities,
                                    specificity = r$specificities)),
            class = "srnomogram_roc")
}

#' @export
print.srnomogram_roc <- function(x, ...) {
  cat(sprintf("AUC %.3f (%g%% CI %.3f-%.3f, %s); %d cases, %d controls\n", x$auc,
              100 * x$conf_level, x$lower, x$upper, if (is.null(x$method)) "DeLong" else x$method,
              x$n_cases, x$n_controls))
  invisible(x)
}

#' @export
summary.srnomogram_roc <- function(object, ...) {
  data.frame(auc = object$auc, lower = object$lower, upper = object$upper,
             conf_level = object$conf_level, n_cases = object$n_cases,
             n_controls = object$n_controls, method = if (is.null(object$method)) "DeLong" else object$method)
}

#' @export
as.data.frame.srnomogram_roc <- function(x, ...) x$curve

#' @rdname roc_plot
#' @export
plot.srnomogram_roc <- function(x, ...) roc_plot(x, ...)

#' Paired DeLong test of two ROC curves
#'
#' `pROC::roc.test(method = "delong", paired = TRUE)` on two scores of the
#' same patients; with `cluster` and a patient with several lesions, the same
#' z test with Obuchowski's (1997) clustered variances and covariance
#' (\eqn{cov = S^{12}_{10}/M + S^{12}_{01}/N + (S^{12}_{11} + S^{21}_{11})/(M N)},
#' see [roc_auc()]).
#'
#' @param y Binary outcome (0/1).
#' @param score1,score2 Two scores of the same patients.
#' @param direction Direction of both curves, as in [roc_auc()].
#' @param cluster Optional patient of each lesion, as in [roc_auc()].
#' @return A `c("srnomogram_htest", "htest")` with `statistic` (Z), `p.value`,
#'   `estimate` (both AUCs), `method` and `data.name`; `as.data.frame()` gives
#'   one row ([as.data.frame.srnomogram_htest()]).
#' @examples
#' set.seed(1)
#' y <- rbinom(120, 1, 0.4)
#' compare_roc(y, y + rnorm(120), y + rnorm(120, sd = 2))
#' @export
compare_roc <- function(y, score1, score2, direction = c("<", ">", "auto"), cluster = NULL) {
  direction <- rlang::arg_match(direction)
  dname <- paste(deparse1(substitute(score1)), "vs", deparse1(substitute(score2)))
  y <- check_binary(y)
  check_numeric(score1)
  check_numeric(score2)
  check_same_length(y, score1, "y", "score1")
  check_same_length(y, score2, "y", "score2")
  cluster <- check_cluster(cluster, length(y))
  cc <- if (is.null(cluster)) drop_missing(y, score1, score2) else drop_missing(y, score1, score2, cluster)
  y <- check_binary(cc[[1]], arg = "y")
  r1 <- pROC::roc(y, cc[[2]], levels = c(0, 1), direction = direction, quiet = TRUE)
  r2 <- pROC::roc(y, cc[[3]], levels = c(0, 1), direction = direction, quiet = TRUE)
  if (!is.null(cluster) && is_clustered(cc[[4]])) {
    v <- delong_cov(y, cbind(orient(cc[[2]], r1$direction), orient(cc[[3]], r2$direction)), cc[[4]])
    se <- sqrt(v$cov[1, 1] + v$cov[2, 2] - 2 * v$cov[1, 2])
    z <- if (isTRUE(se > 0)) (v$auc[1] - v$auc[2]) / se else NA_real_
    tt <- list(statistic = c(Z = z), p.value = 2 * stats::pnorm(-abs(z)))
    method <- "Clustered DeLong test for two correlated ROC curves (Obuchowski 1997), patients as clusters"
  } else {
    tt <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
    method <- "DeLong's test for two correlated ROC curves"
  }
  out <- list(statistic = tt$statistic, p.value = tt$p.value,
              estimate = c(`AUC of score1` = as.numeric(r1$auc), `AUC of score2` = as.numeric(r2$auc)),
              null.value = c(`difference in AUC` = 0), alternative = "two.sided",
              method = method, data.name = dname)
  class(out) <- c("srnomogram_htest", "htest")
  out
}

clustered_delong <- "clustered DeLong (Obuchowski 1997), patients as clusters"

# TRUE when `cluster` (codes from check_cluster(), or NULL) puts two lesions in one patient.
is_clustered <- function(cluster) !is.null(cluster) && anyDuplicated(cluster) > 0L

# A score turned so that cases score higher (pROC's direction "<").
orient <- function(score, direction) if (identical(direction, ">")) -score else score

# DeLong's placements (ties count 1/2): v10 of each case, the share of controls below it; v01 of
# each control, the share of cases above it.
placements <- function(cases, controls) {
  sc <- sort(controls)
  sx <- sort(cases)
  below <- findInterval(cases, sc, left.open = TRUE)
  at_or_below <- findInterval(cases, sc)
  under <- findInterval(controls, sx, left.open = TRUE)
  at_or_under <- findInterval(controls, sx)
  list(v10 = (below + 0.5 * (at_or_below - below)) / length(controls),
       v01 = (length(cases) - at_or_under + 0.5 * (at_or_under - under)) / length(cases))
}

# AUCs of the columns of `scores` (oriented: cases higher) and their clustered DeLong covariance
# matrix (Obuchowski 1997): placements summed per patient, centred at m_i AUC and n_i AUC;
# S10 = I10/((I10-1)M) Dx'Dx, S01 = I01/((I01-1)N) Dy'Dy, S11 = I/(I-1) Dx'Dy,
# cov = S10/M + S01/N + (S11 + S11')/(MN). NA with fewer than two patients holding cases or controls.
delong_cov <- function(y, scores, cluster) {
  cases <- y == 1
  cl <- match(cluster, unique(cluster))
  n_cl <- max(cl)
  m_i <- tabulate(cl[cases], n_cl)
  n_i <- tabulate(cl[!cases], n_cl)
  big_m <- sum(m_i)
  big_n <- sum(n_i)
  per <- function(v, which) vapply(split(v, factor(cl[which], levels = seq_len(n_cl))), sum, numeric(1))
  pl <- lapply(seq_len(ncol(scores)), function(j) placements(scores[cases, j], scores[!cases, j]))
  auc <- vapply(pl, function(p) mean(p$v10), numeric(1))
  k <- length(auc)
  i10 <- sum(m_i > 0)
  i01 <- sum(n_i > 0)
  if (min(i10, i01) < 2) return(list(auc = auc, cov = matrix(NA_real_, k, k)))
  dx <- vapply(pl, function(p) per(p$v10, cases), numeric(n_cl)) - outer(m_i, auc)
  dy <- vapply(pl, function(p) per(p$v01, !cases), numeric(n_cl)) - outer(n_i, auc)
  dx <- matrix(dx, n_cl, k)
  dy <- matrix(dy, n_cl, k)
  s10 <- i10 / ((i10 - 1) * big_m) * crossprod(dx)
  s01 <- i01 / ((i01 - 1) * big_n) * crossprod(dy)
  s11 <- n_cl / (n_cl - 1) * crossprod(dx, dy)
  list(auc = auc, cov = s10 / big_m + s01 / big_n + (s11 + t(s11)) / (big_m * big_n))
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

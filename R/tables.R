#' Baseline characteristics (Table 1)
#'
#' Continuous variables: mean ± SD with Student's t-test (Welch's unequal
#' variance form, `stats::t.test`) when the Shapiro-Wilk test does not reject
#' normality (p > 0.05) in every group, otherwise median \[IQR\] with the
#' Mann-Whitney U test (`stats::wilcox.test`, normal approximation with
#' continuity correction). Categorical variables (factor, character, logical):
#' n (%) per level with Pearson's chi-square test (`stats::chisq.test`, Yates
#' correction for 2x2), or Fisher's exact test when any expected count is below
#' 5. One block per level of `split` (e.g. training and test) and one for all
#' rows (`"overall"`).
#'
#' @param data A data frame.
#' @param group Name of the grouping column (e.g. the benign/malignant
#'   outcome); it must have exactly two levels.
#' @param vars Names of the variables to describe.
#' @param split Optional name of a column splitting the cohort (e.g. `"split"`).
#' @param digits Decimals in the formatted cells.
#' @return A data frame with columns `split`, `variable`, `level` (`""` for
#'   continuous), `summary_type` (`"mean_sd"`, `"median_iqr"`, `"n_pct"`), one
#'   formatted column per group level, `overall`, `test`, `statistic`,
#'   `p_value`, and `n_missing`.
#' @examples
#' set.seed(1)
#' d <- data.frame(label = rep(c("benign", "malignant"), each = 40),
#'                 age = c(rnorm(40, 45, 10), rnorm(40, 55, 10)),
#'                 size = c(rexp(40), rexp(40, 0.5)),
#'                 shape = sample(c("oval", "irregular"), 80, TRUE),
#'                 split = rep(c("train", "test"), 40))
#' baseline_table(d, "label", c("age", "size", "shape"), split = "split")
#' @export
baseline_table <- function(data, group, vars, split = NULL, digits = 1) {
  data <- check_data_frame(data)
  check_columns(data, c(group, vars, split))
  g <- data[[group]]
  g <- if (is.factor(g)) droplevels(g) else factor(g)
  if (nlevels(g) != 2L) {
    abort_input("{.arg group} column {.field {group}} must have exactly two levels, not {nlevels(g)}.")
  }
  data[[group]] <- g
  blocks <- list()
  if (!is.null(split)) {
    sp <- data[[split]]
    levs <- if (is.factor(sp)) levels(droplevels(sp)) else unique(as.character(sp[!is.na(sp)]))
    for (s in levs) {
      blocks[[length(blocks) + 1L]] <- baseline_block(data[!is.na(sp) & as.character(sp) == s, , drop = FALSE],
                                                      group, vars, s, digits)
    }
  }
  blocks[[length(blocks) + 1L]] <- baseline_block(data, group, vars, "overall", digits)
  out <- do.call(rbind, blocks)
  rownames(out) <- NULL
  out
}

fmt <- function(x, digits) formatC(x, format = "f", digits = digits)

baseline_block <- function(d, group, vars, split_name, digits) {
  g <- d[[group]]
  levs <- levels(g)
  rows <- list()
  for (v in vars) {
    x <- d[[v]]
    miss <- sum(is.na(x) | is.na(g))
    ok <- !is.na(x) & !is.na(g)
    x <- x[ok]
    gg <- droplevels(g[ok])
    if (is.numeric(x) && !is.logical(x)) {
      xs <- split(x, factor(gg, levels = levs))
      normal <- all(vapply(xs, function(z) {
        if (length(z) < 3 || length(z) > 5000 || length(unique(z)) < 3) return(FALSE)
        stats::shapiro.test(z)$p.value > 0.05
      }, logical(1)))
      if (normal) {
        cell <- function(z) sprintf("%s \u00b1 %s", fmt(mean(z), digits), fmt(stats::sd(z), digits))
        tt <- stats::t.test(xs[[1]], xs[[2]])
        test <- "t-test"
        stat <- unname(tt$statistic)
        p <- tt$p.value
        type <- "mean_sd"
      } else {
        cell <- function(z) {
          q <- stats::quantile(z, c(0.25, 0.5, 0.75))
          sprintf("%s [%s, %s]", fmt(q[2], digits), fmt(q[1], digits), fmt(q[3], digits))
        }
        wt <- stats::wilcox.test(xs[[1]], xs[[2]], exact = FALSE, correct = TRUE)
        test <- "Mann-Whitney U"
        stat <- unname(wt$statistic)
        p <- wt$p.value
        type <- "median_iqr"
      }
      row <- data.frame(split = split_name, variable = v, level = "", summary_type = type,
                        stringsAsFactors = FALSE, check.names = FALSE)
      for (l in levs) row[[l]] <- if (length(xs[[l]])) cell(xs[[l]]) else NA_character_
      row$overall <- cell(x)
      row$test <- test
      row$statistic <- stat
      row$p_value <- p
      row$n_missing <- miss
      rows[[length(rows) + 1L]] <- row
    } else {
      xf <- if (is.factor(x)) droplevels(x) else factor(x)
      tab <- table(xf, factor(gg, levels = levs))
      expected <- outer(rowSums(tab), colSums(tab)) / sum(tab)
      if (nrow(tab) < 2L) {
        test <- "none"
        stat <- NA_real_
        p <- NA_real_
      } else if (any(expected < 5)) {
        test <- "Fisher's exact"
        ft <- stats::fisher.test(tab)
        stat <- NA_real_
        p <- ft$p.value
      } else {
        test <- "chi-square"
        ct <- stats::chisq.test(tab)
        stat <- unname(ct$statistic)
        p <- ct$p.value
      }
      for (k in seq_len(nrow(tab))) {
        row <- data.frame(split = split_name, variable = v, level = rownames(tab)[k],
                          summary_type = "n_pct", stringsAsFactors = FALSE, check.names = FALSE)
        for (l in levs) {
          row[[l]] <- sprintf("%d (%s%%)", tab[k, l], fmt(100 * tab[k, l] / max(1, sum(tab[, l])), digits))
        }
        row$overall <- sprintf("%d (%s%%)", sum(tab[k, ]), fmt(100 * sum(tab[k, ]) / sum(tab), digits))
        row$test <- test
        row$statistic <- stat
        row$p_value <- p
        row$n_missing <- miss
        rows[[length(rows) + 1L]] <- row
      }
    }
  }
  do.call(rbind, rows)
}

#' Univariate and multivariate logistic regression (Table S2)
#'
#' Each variable alone in `glm(outcome ~ variable, binomial)`; then the
#' variables whose univariate (Wald) p-value is below `alpha` together in one
#' multivariate model. Odds ratios with Wald confidence intervals
#' (`exp(b ± z se)`, \eqn{z} the normal quantile of `conf_level`; 1.96 for 95%), per unit of each variable (per level against the
#' reference for factors), or per `per[[v]]` units of a numeric variable `v`:
#' a 0-1 deep-learning score is best read per 0.1 (`per = c(deep_score = 0.1)`),
#' where the odds ratio and its bounds are those per unit raised to the power 0.1
#' (p-values do not change). Factor, character and logical predictors enter with
#' treatment contrasts (whatever `options(contrasts)` or an ordered factor would
#' give): the reference is the first level present (`levels()` of a factor, the sorted
#' values of a character column, `FALSE` of a logical one).
#' When the rows a multivariate model drops for missing data hold every row of a
#' factor's reference, glm compares with its next level there; a warning of class
#' `srnomogram_warning_reference` says so.
#'
#' @param data A data frame; rows with a missing outcome or variable are
#'   dropped per model with a warning.
#' @param outcome Name of the 0/1 outcome column.
#' @param vars Names of the candidate predictors.
#' @param alpha Univariate p-value below which a variable enters the
#'   multivariate model.
#' @param conf_level Confidence level of the odds ratios' intervals.
#' @param per Named positive numbers (a named vector or list): the unit of the
#'   odds ratio of those numeric variables. Others are per 1 unit.
#' @return A data frame, one row per model term: `term` (the variable's name
#'   for a numeric variable, `variable=level` for a level of a factor or
#'   character one, as `rms::lrm` names them, e.g. `shape=oval`; a logical
#'   one gives `calcified=TRUE`, where rms, taking it as 0/1, says `calcified`),
#'   `variable`, `level` (the level the odds ratio compares
#'   with the reference; `NA` for numeric variables), `unit` (the change the
#'   odds ratio is for; `NA` for factor levels),
#'   `uni_or`, `uni_lower`, `uni_upper`, `uni_p`, `multi_or`, `multi_lower`,
#'   `multi_upper`, `multi_p` (`NA` when the variable is not in the
#'   multivariate model), and formatted `uni` / `multi` strings "OR (lo-hi)".
#' @examples
#' set.seed(1)
#' d <- data.frame(age = rnorm(150, 50, 10), size = rexp(150), noise = rnorm(150))
#' d$y <- rbinom(150, 1, plogis(-5 + 0.08 * d$age + 0.8 * d$size))
#' logistic_table(d, "y", c("age", "size", "noise"))
#' logistic_table(d, "y", c("age", "size"), per = c(age = 10))
#' d$shape <- ifelse(d$size + rnorm(150) > 1.5, "irregular", "oval")
#' logistic_table(d, "y", c("age", "shape"))  # term "shape=oval", against "irregular"
#' @export
logistic_table <- function(data, outcome, vars, alpha = 0.05, per = NULL, conf_level = 0.95) {
  data <- check_data_frame(data)
  check_columns(data, c(outcome, vars))
  data[[outcome]] <- check_binary(data[[outcome]], arg = "outcome")
  if (!is.numeric(alpha) || length(alpha) != 1L || alpha <= 0 || alpha >= 1) {
    abort_input("{.arg alpha} must be a number in (0, 1).")
  }
  per <- check_per(per, data, vars)
  z <- check_conf_level(conf_level)
  wald <- function(fit) {
    # Aliased terms (collinear predictors) have no row in summary(); keep them, as NA, so every
    # requested variable has its row in the table.
    # Rows by position, never by glm's pasted names, which two terms can share (a level "2" of
    # `size` and a variable `size2` are both `size2`): summary()'s rows are the non-aliased
    # coefficients in the model's order.
    cf <- stats::coef(fit)[-1]
    sm <- summary(fit)
    s <- matrix(NA_real_, length(sm$aliased), 4L)
    s[!sm$aliased, ] <- sm$coefficients
    s <- s[-1L, , drop = FALSE]
    tl <- coef_terms(fit)
    if (anyNA(cf)) {
      warn_classed("Term{?s} {.field {tl$term[is.na(cf)]}} {?is/are} collinear with the others: no odds ratio.", "aliased")
    }
    data.frame(term = tl$term, variable = tl$variable, level = tl$level, or = exp(s[, 1]),
               lower = exp(s[, 1] - z * s[, 2]), upper = exp(s[, 1] + z * s[, 2]), p = s[, 4],
               stringsAsFactors = FALSE, row.names = NULL)
  }
  constant <- vars[vapply(vars, function(v) length(unique(stats::na.omit(data[[v]]))) < 2L, logical(1))]
  if (length(constant)) {
    abort_input(c("{.field {constant}} take{?s/} a single value, so {?it/they} cannot be a predictor.",
                  i = "Remove {.field {constant}} from {.arg vars}."))
  }
  fit_glm <- function(v) {
    d <- complete_rows(data[, c(outcome, v), drop = FALSE], c(outcome, v), what = v)
    f <- stats::reformulate(sprintf("`%s`", v), response = outcome)
    # Treatment contrasts for every factor, character or logical predictor, whatever
    # options(contrasts) or an ordered factor would choose: one odds ratio per level against the
    # reference, and the columns of a factor are its levels after the reference (coef_terms()).
    categorical <- v[!vapply(d[v], is.numeric, logical(1))]
    contrasts <- if (length(categorical)) {
      stats::setNames(rep(list("contr.treatment"), length(categorical)), categorical)
    }
    withCallingHandlers(
      stats::glm(f, family = stats::binomial(), data = d, contrasts = contrasts),
      warning = function(w) {
        if (grepl("fitted probabilities numerically 0 or 1", conditionMessage(w))) {
          warn_classed("Separation in the logistic model of {.field {v}}: odds ratios are unreliable.", "separation")
          invokeRestart("muffleWarning")
        }
      })
  }
  uni_fits <- stats::setNames(lapply(vars, fit_glm), vars)
  uni <- do.call(rbind, lapply(uni_fits, wald))
  keep <- unique(uni$variable[uni$p < alpha])
  out <- data.frame(term = uni$term, variable = uni$variable, level = uni$level, uni_or = uni$or,
                    uni_lower = uni$lower, uni_upper = uni$upper, uni_p = uni$p,
                    multi_or = NA_real_, multi_lower = NA_real_, multi_upper = NA_real_,
                    multi_p = NA_real_, stringsAsFactors = FALSE)
  if (length(keep)) {
    multi_fit <- fit_glm(keep)
    # Rows with a missing value in another variable can take all of a factor's reference level out of
    # the multivariate model; glm then compares with the next level, silently. Say so.
    for (v in keep) {
      r_uni <- reference_level(uni_fits[[v]], v)
      r_multi <- reference_level(multi_fit, v)
      if (!identical(r_uni, r_multi)) {
        warn_classed(paste("In the multivariate model, {.field {v}}'s reference is {.val {r_multi}}, not {.val {r_uni}}:",
                           "the rows removed for missing data held every {.val {r_uni}}, so its odds ratios there",
                           "compare with {.val {r_multi}}."), "reference")
      }
    }
    m <- wald(multi_fit)
    # rows join on (variable, level), not on the term's text; each multivariate coefficient has its
    # univariate row, as the multivariate model's lesions are a subset of each univariate model's
    i <- match(term_key(m$variable, m$level), term_key(out$variable, out$level))
    out$multi_or[i] <- m$or
    out$multi_lower[i] <- m$lower
    out$multi_upper[i] <- m$upper
    out$multi_p[i] <- m$p
  }
  numeric_var <- vapply(out$variable, function(v) is.numeric(data[[v]]), logical(1))
  out$unit <- unname(ifelse(numeric_var, 1, NA_real_))
  scaled <- out$variable %in% names(per)
  out$unit[scaled] <- unname(per[out$variable[scaled]])
  for (col in c("uni_or", "uni_lower", "uni_upper", "multi_or", "multi_lower", "multi_upper")) {
    out[[col]][scaled] <- out[[col]][scaled]^out$unit[scaled]
  }
  out <- out[, c("term", "variable", "level", "unit", setdiff(names(out), c("term", "variable", "level", "unit")))]
  f3 <- function(o, l, u) ifelse(is.na(o), "", sprintf("%.3f (%.3f-%.3f)", o, l, u))
  out$uni <- f3(out$uni_or, out$uni_lower, out$uni_upper)
  out$multi <- f3(out$multi_or, out$multi_lower, out$multi_upper)
  rownames(out) <- NULL
  out
}

# The variable and level of each coefficient but the intercept of a glm whose terms are single
# variables, and its rms-style name: `age` for a numeric variable, `shape=oval` for level `oval` of
# `shape` (as rms::lrm names them). Read off the model, not parsed from glm's pasted names
# (`shapeoval`), which are ambiguous when one variable's name is a prefix of another's: the model
# matrix's `assign` gives each column's term, and under treatment contrasts a factor's columns are
# its levels after the reference, in order (model.matrix() makes character and logical predictors
# factors, the latter with levels FALSE, TRUE).
coef_terms <- function(fit) {
  mf <- stats::model.frame(fit)
  assign <- attr(stats::model.matrix(fit), "assign")[-1]
  variable <- names(mf)[-1][assign]
  level <- rep(NA_character_, length(assign))
  for (k in unique(assign)) {
    x <- mf[[k + 1L]]
    if (is.numeric(x)) next
    levs <- frame_levels(x)
    cols <- which(assign == k)
    stopifnot(length(cols) == length(levs) - 1L)  # treatment contrasts: an invariant, not an input check
    level[cols] <- levs[-1L]
  }
  list(term = ifelse(is.na(level), variable, paste0(variable, "=", level)), variable = variable, level = level)
}

# The reference level of variable `v` in a fit (the first level its model frame holds; glm drops
# levels no row has), or NULL for a numeric variable.
reference_level <- function(fit, v) {
  x <- stats::model.frame(fit)[[v]]
  if (is.numeric(x)) return(NULL)
  frame_levels(x)[1L]
}

# The levels of a categorical column of a model frame, in the order model.matrix() codes them (the
# first is the reference): a factor's levels that some row holds (glm drops the others), a character
# column's sorted values, a logical one's FALSE and TRUE.
frame_levels <- function(x) {
  if (is.logical(x)) c("FALSE", "TRUE")[c(any(!x), any(x))] else levels(droplevels(as.factor(x)))
}

# One string per (variable, level) pair, injective: the variable's length first, so no variable
# name or level text can make two pairs collide.
term_key <- function(variable, level) paste(nchar(variable), variable, level)

check_per <- function(per, data, vars, call = rlang::caller_env()) {
  if (is.null(per) || length(per) == 0L) {
    return(stats::setNames(numeric(0), character(0)))
  }
  if (is.list(per)) {
    if (!all(vapply(per, function(x) is.numeric(x) && length(x) == 1L, logical(1)))) {
      abort_input("{.arg per} must give one number per variable.", call = call)
    }
    per <- unlist(per)
  }
  nm <- names(per)
  if (!is.numeric(per) || is.null(nm) || any(nm == "") || anyNA(per) || any(!is.finite(per)) || any(per <= 0)) {
    abort_input(c("{.arg per} must be named positive numbers, e.g. {.code c(deep_score = 0.1)}.",
                  x = "Got {.val {format(per)}}."), call = call)
  }
  unknown <- setdiff(nm, vars)
  if (length(unknown)) {
    abort_input(c("{.arg per} names {.field {unknown}}, which {?is/are} not in {.arg vars}.",
                  i = "Name only variables of {.arg vars}: {.field {vars}}."), call = call)
  }
  not_num <- nm[!vapply(nm, function(v) is.numeric(data[[v]]), logical(1))]
  if (length(not_num)) {
    abort_input("{.arg per} is for numeric variables; {.field {not_num}} {?is/are} not numeric.", call = call)
  }
  per
}

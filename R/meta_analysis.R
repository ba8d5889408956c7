#' Random-effects meta-analysis of one performance measure across centres
#'
#' Pools one estimate per centre (or study) with `metafor::rma(method =
#' "REML", test = "knha")`: the restricted maximum-likelihood estimate of the
#' between-centre variance \eqn{\tau^2} and the Hartung-Knapp-Sidik-Jonkman
#' confidence interval (a t distribution on k - 1 df with the Knapp-Hartung
#' variance), and `predict()` for the prediction interval, the range where the
#' measure of a new centre is expected to lie (Riley, Higgins & Deeks 2011).
#' This is the analysis of internal-external cross-validation recommended by
#' Debray et al. (2017) and Snell et al. (2018).
#'
#' Bounded measures are pooled on a scale where they are about normal: with
#' `scale = "logit"` (the AUC, a proportion) the analysis runs on
#' `qlogis(estimate)` and every number is returned back-transformed with
#' `plogis()`; `tau2` stays on the logit scale. `se` is always the standard
#' error on the scale of the analysis, so for an AUC it is the SE of
#' logit(AUC): turn the AUC's own SE (DeLong) or its CI into it with
#' [auc_logit_se()].
#'
#' @param estimate Estimate per centre, on its natural scale (for `scale =
#'   "logit"`: a proportion in (0, 1), e.g. the AUC).
#' @param se Standard error per centre on the scale of the analysis (`> 0`).
#' @param centre Optional centre labels (default `"1"`, `"2"`, ...), used by
#'   the forest plot.
#' @param scale `"identity"` (calibration intercept and slope, Brier score,
#'   net benefit, differences) or `"logit"` (AUC).
#' @param conf_level Level of the confidence and prediction intervals.
#' @return A one-row data frame of class `c("srnomogram_meta", "data.frame")`:
#'   `estimate`, `lower`, `upper` (confidence interval), `pi_lower`, `pi_upper`
#'   (prediction interval), `tau2` (on the scale of the analysis), `i2` (the
#'   percentage of variability due to heterogeneity, 0-100, as metafor
#'   reports it) and `k` (centres). Its attribute `centres` holds one row per
#'   centre (`centre`, `estimate`, `se`, `lower`, `upper`: the centre's Wald
#'   interval, back-transformed; `weight`: its random-effects weight in
#'   percent); `plot()` draws the forest plot, `summary()` gives the plain
#'   data frame.
#' @details The numbers are those of a plain `metafor::rma(yi, sei = se, method =
#'   "REML", test = "knha")` call and its `predict()`, metafor's defaults
#'   included: its Fisher scoring stops when \eqn{\tau^2} changes by less than
#'   1e-5, so \eqn{\tau^2} agrees with the exact REML solution to about that.
#'
#'   At least two centres are needed: one centre gives no pooling, and
#'   no spread to estimate (an error of class `srnomogram_error_input`; in
#'   [iecv_pool()] such a measure gives a row of `NA`). With two centres the
#'   intervals are valid but wide (a t quantile on 1 df, 12.7 at 95%).
#'   Should REML not converge, it is retried with metafor's step halving
#'   (`control = list(stepadj = 0.5, maxiter = 1000)`); a second failure is an
#'   error of class `srnomogram_error_fit`.
#' @references Viechtbauer W (2010). Conducting meta-analyses in R with the
#'   metafor package. J Stat Softw 36(3):1-48.
#'   Debray TPA et al. (2017). A guide to systematic review and meta-analysis
#'   of prediction model performance. BMJ 356:i6460.
#'   Snell KIE et al. (2018). Meta-analysis of prediction model performance
#'   across multiple studies: which scale helps ensure between-study normality
#'   for the C-statistic and calibration measures? Stat Methods Med Res
#'   27(11):3505-3522.
#'   Riley RD, Higgins JPT, Deeks JJ (2011). Interpretation of random effects
#'   meta-analyses. BMJ 342:d549.
#' @examples
#' auc <- c(0.81, 0.76, 0.85, 0.79)
#' se_auc <- c(0.030, 0.041, 0.028, 0.035)
#' meta_pool(auc, auc_logit_se(auc, se = se_auc), scale = "logit")
#' @export
meta_pool <- function(estimate, se, centre = NULL, scale = c("identity", "logit"), conf_level = 0.95) {
  scale <- rlang::arg_match(scale)
  check_conf_level(conf_level)
  check_numeric(estimate)
  check_numeric(se)
  check_same_length(estimate, se, "estimate", "se")
  centre <- if (is.null(centre)) as.character(seq_along(estimate)) else as.character(centre)
  check_same_length(estimate, centre, "estimate", "centre")
  centre <- make.unique(centre, sep = " ")  # two studies of one author keep their own rows
  check_meta_input(estimate, se, centre, scale, "")
  if (length(estimate) < 2L) {
    abort_input(c("{.fn meta_pool} needs at least 2 centres; got {length(estimate)}.",
                  i = "One centre gives no pooling: report its own estimate and CI instead."))
  }
  pooled <- pool_centres(estimate, se, centre, scale, conf_level, "")
  out <- pooled$row
  attr(out, "centres") <- pooled$centres
  attr(out, "scale") <- scale
  attr(out, "conf_level") <- conf_level
  class(out) <- c("srnomogram_meta", "data.frame")
  out
}

#' Standard error of logit(AUC)
#'
#' The AUC is pooled on the logit scale (Snell et al. 2018), so [meta_pool()]
#' and [iecv_pool()] take the SE of logit(AUC). Given the AUC's own standard
#' error (e.g. DeLong's), the delta method gives
#' \eqn{SE(logit(AUC)) = SE(AUC) / (AUC (1 - AUC))} (Debray et al. 2017,
#' supplement). Given instead the limits of a confidence interval, the SE is
#' \eqn{(logit(upper) - logit(lower)) / (2 z)}: exact for an interval built on
#' the logit scale, an approximation for one symmetric on the AUC scale (as
#' DeLong's), for which passing `se = (upper - lower) / (2 z)` is the better
#' choice.
#'
#' @param auc AUC per centre, in (0, 1).
#' @param se SE of the AUC on its own scale; or `NULL` and give `lower`,
#'   `upper`.
#' @param lower,upper Confidence limits of the AUC, in (0, 1).
#' @param conf_level Level of that interval.
#' @return The SE of logit(AUC), one per centre.
#' @references Debray TPA et al. (2017). BMJ 356:i6460. Snell KIE et al.
#'   (2018). Stat Methods Med Res 27(11):3505-3522.
#' @examples
#' auc_logit_se(0.8, se = 0.03)
#' auc_logit_se(0.8, lower = 0.73, upper = 0.86)
#' @export
auc_logit_se <- function(auc, se = NULL, lower = NULL, upper = NULL, conf_level = 0.95) {
  check_numeric(auc)
  check_open_unit(auc, "auc")
  if (!is.null(se)) {
    check_numeric(se)
    check_same_length(auc, se, "auc", "se")
    return(se / (auc * (1 - auc)))
  }
  if (is.null(lower) || is.null(upper)) {
    abort_input("{.fn auc_logit_se} needs {.arg se}, or both {.arg lower} and {.arg upper}.")
  }
  z <- check_conf_level(conf_level)
  check_open_unit(lower, "lower")
  check_open_unit(upper, "upper")
  check_same_length(auc, lower, "auc", "lower")
  check_same_length(auc, upper, "auc", "upper")
  (stats::qlogis(upper) - stats::qlogis(lower)) / (2 * z)
}

# The measures iecv_pool() knows, and the scale each is pooled on.
IECV_SCALES <- c(auc = "logit", citl = "identity", slope = "identity", brier = "identity",
                 delta_auc = "identity", net_benefit = "identity")

#' Pool internal-external cross-validation results across centres
#'
#' The random-effects meta-analysis of [meta_pool()] for every model and
#' performance measure of an internal-external cross-validation (IECV: each
#' centre held out in turn, the model fitted on the others; Royston, Parmar &
#' Sylvester 2004; Debray et al. 2017), from one long table of per-centre
#' results.
#'
#' @param centres A data frame with one row per model, measure and held-out
#'   centre, and columns
#'   * `model`: the model id;
#'   * `estimand`: one of `"auc"`, `"citl"` (calibration-in-the-large),
#'     `"slope"` (calibration slope), `"brier"`, `"delta_auc"` (a paired
#'     difference of AUCs in the same centre, e.g. SR minus original
#'     resolution, or nomogram minus clinical model) and `"net_benefit"` (at
#'     one threshold);
#'   * `centre`: the held-out centre;
#'   * `estimate`: the measure in that centre, on its natural scale (the AUC
#'     itself, not its logit);
#'   * `se`: its standard error on the scale of the analysis: **for `auc` the
#'     SE of logit(AUC)** (from the AUC's SE by [auc_logit_se()]); for every
#'     other measure the SE of the estimate itself.
#'
#'   The AUC is pooled on the logit scale and back-transformed; every other
#'   measure on its own scale.
#' @param conf_level Level of the confidence and prediction intervals.
#' @return A data frame of class `c("srnomogram_iecv", "srnomogram_meta",
#'   "data.frame")`, one row per model and measure (in order of first
#'   appearance): `model`, `estimand`, `estimate`, `lower`, `upper`,
#'   `pi_lower`, `pi_upper`, `tau2` (on the logit scale for `auc`), `i2`
#'   (percent) and `k` (centres). A model and measure with a single centre
#'   cannot be pooled: its row is `NA` but for `k = 1`, with one warning of
#'   class `srnomogram_warning_single_centre` naming them. The attribute
#'   `centres` holds the per-centre rows with their Wald intervals and weights;
#'   `plot()` draws forest plots, `summary()` gives the plain data frame.
#' @references Debray TPA et al. (2017). BMJ 356:i6460. Royston P, Parmar MKB,
#'   Sylvester R (2004). Construction and validation of a prognostic model
#'   across several studies. Stat Med 23:907-926. Viechtbauer W (2010), metafor.
#' @examples
#' set.seed(1)
#' centres <- data.frame(
#'   model = rep(c("nomogram", "clinical"), each = 8),
#'   estimand = rep(rep(c("auc", "slope"), each = 4), 2),
#'   centre = rep(paste0("C", 1:4), 4),
#'   estimate = c(0.84, 0.80, 0.88, 0.79, 0.95, 0.86, 1.10, 0.90,
#'                0.76, 0.71, 0.80, 0.74, 1.02, 0.88, 1.05, 0.97),
#'   se = c(0.18, 0.21, 0.20, 0.19, 0.12, 0.15, 0.14, 0.13,
#'          0.16, 0.17, 0.16, 0.18, 0.11, 0.14, 0.12, 0.13))
#' res <- iecv_pool(centres)
#' res
#' plot(res, estimand = "auc")
#' @export
iecv_pool <- function(centres, conf_level = 0.95) {
  centres <- check_data_frame(centres)
  check_columns(centres, c("model", "estimand", "centre", "estimate", "se"), arg = "centres")
  check_conf_level(conf_level)
  check_numeric(centres$estimate, arg = "centres$estimate")
  check_numeric(centres$se, arg = "centres$se")
  est <- as.character(centres$estimand)
  bad <- is.na(est) | !est %in% names(IECV_SCALES)
  if (any(bad)) {
    abort_input(c("{.field estimand} of {.arg centres} must be one of {.val {names(IECV_SCALES)}}.",
                  x = "Row {which(bad)[1]} has {.val {est[bad][1]}}."))
  }
  model <- as.character(centres$model)
  centre <- as.character(centres$centre)
  key <- paste(model, est, sep = "\r")
  dup <- duplicated(paste(key, centre, sep = "\r"))
  if (any(dup)) {
    i <- which(dup)[1]
    abort_input(c("{.arg centres} has two rows for model {.val {model[i]}}, estimand {.val {est[i]}}, centre {.val {centre[i]}}.",
                  i = "Give one row per model, estimand and held-out centre."))
  }
  groups <- unique(key)
  single <- character()
  rows <- list()
  per_centre <- list()
  for (g in groups) {
    i <- which(key == g)
    m <- model[i[1]]
    e <- est[i[1]]
    where <- sprintf(" (model %s, estimand %s)", m, e)
    check_meta_input(centres$estimate[i], centres$se[i], centre[i], IECV_SCALES[[e]], where, rows = i)
    if (length(i) < 2L) {
      single <- c(single, sprintf("%s/%s", m, e))
      row <- data.frame(estimate = NA_real_, lower = NA_real_, upper = NA_real_, pi_lower = NA_real_,
                        pi_upper = NA_real_, tau2 = NA_real_, i2 = NA_real_, k = 1L)
      cen <- centre_intervals(centres$estimate[i], centres$se[i], centre[i], IECV_SCALES[[e]], conf_level)
      cen$weight <- NA_real_
    } else {
      pooled <- pool_centres(centres$estimate[i], centres$se[i], centre[i], IECV_SCALES[[e]], conf_level, where)
      row <- pooled$row
      cen <- pooled$centres
    }
    rows[[g]] <- cbind(data.frame(model = m, estimand = e, stringsAsFactors = FALSE), row)
    per_centre[[g]] <- cbind(data.frame(model = m, estimand = e, stringsAsFactors = FALSE), cen)
  }
  if (length(single)) {
    warn_classed(c("{length(single)} model/estimand pair{?s} {?has/have} a single centre and cannot be pooled: {.val {single}}.",
                   i = "{cli::qty(length(single))}{?Its/Their} row{?s} {?is/are} NA (k = 1); the centre's own estimate is in {.code attr(x, \"centres\")}."),
                 "single_centre")
  }
  out <- do.call(rbind, unname(rows))
  rownames(out) <- NULL
  cen <- do.call(rbind, unname(per_centre))
  rownames(cen) <- NULL
  attr(out, "centres") <- cen
  attr(out, "conf_level") <- conf_level
  class(out) <- c("srnomogram_iecv", "srnomogram_meta", "data.frame")
  out
}

# Checks of one meta-analysis's input; `where` names the model/estimand, `rows`
# the rows of iecv_pool()'s table (for the message).
check_meta_input <- function(estimate, se, centre, scale, where, rows = seq_along(estimate),
                             call = rlang::caller_env()) {
  bad <- is.na(estimate) | !is.finite(estimate)
  if (any(bad)) {
    abort_input("{.field estimate} must be finite{where}; row {rows[bad][1]} (centre {.val {centre[bad][1]}}) is {.val {estimate[bad][1]}}.",
                call = call)
  }
  bad <- is.na(se) | !is.finite(se) | se <= 0
  if (any(bad)) {
    abort_input(c("{.field se} must be a finite number > 0{where}; row {rows[bad][1]} (centre {.val {centre[bad][1]}}) is {.val {se[bad][1]}}.",
                  i = "A centre without a standard error (e.g. one outcome class) cannot be weighted: drop it or compute its SE."),
                call = call)
  }
  if (scale == "logit") {
    bad <- estimate <= 0 | estimate >= 1
    if (any(bad)) {
      abort_input(c("An AUC pooled on the logit scale must lie strictly between 0 and 1{where}; row {rows[bad][1]} (centre {.val {centre[bad][1]}}) is {.val {estimate[bad][1]}}.",
                    i = "An AUC of exactly 0 or 1 (perfect separation) has no logit: drop that centre or report it apart."),
                  call = call)
    }
  }
  invisible(TRUE)
}

check_open_unit <- function(x, arg, call = rlang::caller_env()) {
  bad <- is.na(x) | x <= 0 | x >= 1
  if (any(bad)) {
    abort_input("{.arg {arg}} must lie strictly between 0 and 1; value {which(bad)[1]} is {.val {x[bad][1]}}.", call = call)
  }
}

# Each centre's own Wald interval, on the natural scale.
centre_intervals <- function(estimate, se, centre, scale, conf_level) {
  z <- stats::qnorm(1 - (1 - conf_level) / 2)
  y <- if (scale == "logit") stats::qlogis(estimate) else estimate
  back <- if (scale == "logit") stats::plogis else identity
  data.frame(centre = centre, estimate = estimate, se = se, lower = back(y - z * se), upper = back(y + z * se),
             stringsAsFactors = FALSE)
}

# One REML + Knapp-Hartung meta-analysis: list(row = one-row data frame, centres = data frame).
pool_centres <- function(estimate, se, centre, scale, conf_level, where, call = rlang::caller_env()) {
  yi <- if (scale == "logit") stats::qlogis(estimate) else estimate
  level <- 100 * conf_level
  fit_rma <- function(control) metafor::rma(yi = yi, sei = se, method = "REML", test = "knha",
                                            level = level, control = control)
  fit <- tryCatch(fit_rma(list()), error = function(e) {
    tryCatch(fit_rma(list(stepadj = 0.5, maxiter = 1000)), error = function(e2) e2)
  })
  if (inherits(fit, "error")) {
    abort_fit(c("The REML meta-analysis did not converge{where}.",
                x = conditionMessage(fit),
                i = "Check the centres' estimates and standard errors for outliers."), call = call)
  }
  pr <- stats::predict(fit)
  back <- if (scale == "logit") stats::plogis else identity
  row <- data.frame(estimate = back(pr$pred), lower = back(pr$ci.lb), upper = back(pr$ci.ub),
                    pi_lower = back(pr$pi.lb), pi_upper = back(pr$pi.ub),
                    tau2 = fit$tau2, i2 = fit$I2, k = as.integer(fit$k))
  cen <- centre_intervals(estimate, se, centre, scale, conf_level)
  cen$weight <- unname(stats::weights(fit))
  list(row = row, centres = cen)
}

#' @export
print.srnomogram_meta <- function(x, digits = 3, ...) {
  lvl <- attr(x, "conf_level") %||% NA_real_
  cat(sprintf("Random-effects meta-analysis (REML, Knapp-Hartung; %g%% CI and prediction interval)\n", 100 * lvl))
  print(summary(x), digits = digits, row.names = FALSE)
  invisible(x)
}

#' @export
summary.srnomogram_meta <- function(object, ...) {
  out <- object
  attr(out, "centres") <- NULL
  attr(out, "conf_level") <- NULL
  attr(out, "scale") <- NULL
  class(out) <- "data.frame"
  out
}

#' Tables of a meta-analysis
#'
#' @param x A result of [meta_pool()] or [iecv_pool()].
#' @param row.names,optional Unused (as in [base::as.data.frame()]).
#' @param ... Unused.
#' @param what `"summary"` (the pooled rows, as `summary()`) or `"centres"`
#'   (one row per centre: its estimate, SE, Wald interval and random-effects
#'   weight in percent).
#' @return A data frame.
#' @export
as.data.frame.srnomogram_meta <- function(x, row.names = NULL, optional = FALSE, ..., what = c("summary", "centres")) {
  what <- rlang::arg_match(what)
  if (what == "centres") return(attr(x, "centres"))
  summary(x)
}

#' Forest plot of a meta-analysis
#'
#' As `metafor::forest()`, as a ggplot: one row per centre with its estimate
#' (a square sized by its random-effects weight) and Wald interval, the pooled
#' estimate as a diamond spanning its confidence interval, and the prediction
#' interval as a bar below it; for the AUC everything on the AUC scale. An
#' [iecv_pool()] result shows one measure (`estimand`) at a time, with one
#' panel per model.
#'
#' @param x A result of [meta_pool()] or [iecv_pool()].
#' @param estimand For an [iecv_pool()] result: the measure to draw (default:
#'   the first).
#' @param title Optional title.
#' @param ... Unused.
#' @return A ggplot.
#' @export
plot.srnomogram_meta <- function(x, estimand = NULL, title = NULL, ...) {
  pooled <- summary(x)
  cen <- attr(x, "centres")
  if (is.null(pooled$model)) {
    pooled$model <- ""
    pooled$estimand <- ""
    cen$model <- ""
    cen$estimand <- ""
  } else {
    estimand <- estimand %||% pooled$estimand[1]
    if (!is.character(estimand) || length(estimand) != 1L || !estimand %in% pooled$estimand) {
      abort_input("{.arg estimand} must be one of {.val {unique(pooled$estimand)}}, not {.val {format(estimand)}}.")
    }
    pooled <- pooled[pooled$estimand == estimand, , drop = FALSE]
    cen <- cen[cen$estimand == estimand, , drop = FALSE]
  }
  forest_ggplot(cen, pooled, attr(x, "conf_level"), forest_label(estimand), title)
}

forest_label <- function(estimand) {
  labels <- c(auc = "AUC", citl = "Calibration-in-the-large", slope = "Calibration slope",
              brier = "Brier score", delta_auc = "Difference in AUC", net_benefit = "Net benefit")
  if (is.null(estimand) || !nzchar(estimand)) return(NULL)
  labels[[estimand]] %||% estimand
}

# The forest plot: rows are the centres, then "Pooled" (diamond) and "Prediction
# interval"; one facet per model when there are several.
forest_ggplot <- function(cen, pooled, conf_level, xlab, title) {
  pooled <- pooled[!is.na(pooled$estimate), , drop = FALSE]
  models <- unique(cen$model)
  centre_levels <- unique(cen$centre)
  rows <- c(centre_levels, "Pooled", "Prediction interval")
  ypos <- function(label) length(rows) + 1 - match(label, rows)
  cen$y <- ypos(cen$centre)
  cen$model <- factor(cen$model, levels = models)
  cen$weight_size <- ifelse(is.na(cen$weight), 1, cen$weight)
  y0 <- ypos("Pooled")
  diamond <- do.call(rbind, lapply(seq_len(nrow(pooled)), function(i) {
    p <- pooled[i, ]
    data.frame(model = p$model, x = c(p$lower, p$estimate, p$upper, p$estimate),
               y = y0 + c(0, 0.35, 0, -0.35))
  }))
  pi <- data.frame(model = pooled$model, estimate = pooled$estimate, lower = pooled$pi_lower,
                   upper = pooled$pi_upper, y = ypos("Prediction interval"))
  lvl <- if (is.numeric(conf_level)) sprintf("%g%%", 100 * conf_level) else ""
  p <- ggplot2::ggplot() +
    ggplot2::geom_errorbarh(data = cen, ggplot2::aes(y = .data$y, xmin = .data$lower, xmax = .data$upper),
                            height = 0.25, colour = "grey20") +
    ggplot2::geom_point(data = cen, ggplot2::aes(x = .data$estimate, y = .data$y, size = .data$weight_size),
                        shape = 15, colour = "#0072B2", show.legend = FALSE)
  if (nrow(pooled)) {
    diamond$model <- factor(diamond$model, levels = models)
    pi$model <- factor(pi$model, levels = models)
    p <- p +
      ggplot2::geom_polygon(data = diamond, ggplot2::aes(x = .data$x, y = .data$y, group = .data$model),
                            fill = "#D55E00", colour = "#D55E00") +
      ggplot2::geom_errorbarh(data = pi, ggplot2::aes(y = .data$y, xmin = .data$lower, xmax = .data$upper),
                              height = 0.25, colour = "#D55E00", linewidth = 0.8)
  }
  p <- p +
    ggplot2::scale_size_area(max_size = 4) +
    ggplot2::scale_y_continuous(breaks = ypos(rows), labels = rows, expand = ggplot2::expansion(add = 0.6)) +
    ggplot2::labs(x = xlab %||% "Estimate", y = NULL, title = title,
                  caption = sprintf("Centres: estimate and %s Wald CI (squares sized by weight)\nDiamond: pooled %s CI (REML, Knapp-Hartung); bar: %s prediction interval",
                                    lvl, lvl, lvl)) +
    theme_srnomogram() +
    ggplot2::theme(plot.caption = ggplot2::element_text(size = 7, hjust = 0))
  if (length(models) > 1L || nzchar(models[1])) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$model))
  p
}

#' Forest plots of a study's internal-external cross-validation, from its board
#'
#' The forest plot of one pooled measure of `split.method: centre` (the
#' `iecv` stage), drawn from the board's pins alone: each held-out centre's
#' estimate and Wald interval (pin `iecv_centres`: the measure and its
#' standard error, the one the meta-analysis took; the AUC's on the logit
#' scale) as a square sized by its random-effects weight, `1 / (se^2 + tau2)`
#' in percent, and the pooled estimate, its confidence interval (diamond) and
#' prediction interval (bar) read from the pin `iecv_pooled` as the stage
#' pooled them with [iecv_pool()], never pooled again. One panel per model.
#' The study's report draws `figure_iecv_auc`, `figure_iecv_citl` and
#' `figure_iecv_slope` with it ([study_figures()]).
#'
#' @param board Folder of the study's board (`OUT/board`).
#' @param estimand The measure: one of `iecv_pooled`'s estimands (`auc`,
#'   `citl`, `slope`, `brier`, `delta_auc`, `net_benefit`).
#' @param models Model ids to draw (panels, in this order); `NULL`: every
#'   model of `iecv_pooled` with that measure.
#' @param labels Optional display names by model id (see [board_figure()]).
#' @param pins Optional names of the pins it may use (see [board_figure()]).
#' @return A ggplot (see [plot.srnomogram_meta()]); its data come from
#'   `iecv_forest_data()`, an [iecv_pool()]-like result rebuilt from the pins.
#' @examples
#' \dontrun{
#' p <- iecv_forest("study/board", "auc")
#' save_figure(p, "figure_iecv_auc")
#' }
#' @export
iecv_forest <- function(board, estimand = "auc", models = NULL, labels = NULL, pins = NULL) {
  miss <- setdiff(c("iecv_centres", "iecv_pooled"), board_pin_names(board, pins))
  if (length(miss)) {
    abort_input("Board {.path {board}} has no pin{?s} {.val {miss}}; run a study with {.code split.method: centre} first.")
  }
  pooled <- read_pin(board, "iecv_pooled")
  cfg <- attr(pooled, "pin_meta")$user$config
  x <- iecv_forest_data(read_pin(board, "iecv_centres"), pooled, estimand, models,
                        conf_level = 1 - as.numeric(cfg$nomogram$alpha %||% 0.05))
  labels <- study_labels(board, cfg, labels)
  cen <- attr(x, "centres")  # panels by display name, in the order of the models
  cen$model <- unname(shown_labels(cen$model, labels))
  x$model <- unname(shown_labels(x$model, labels))
  attr(x, "centres") <- cen
  plot(x, estimand = estimand,
       title = sprintf("Internal-external cross-validation: %s (k = %d centres)", forest_label(estimand), max(x$k)))
}

#' @rdname iecv_forest
#' @param centres,pooled The pins `iecv_centres` (one row per centre and model:
#'   `centre`, `model`, the measure and `<measure>_se`) and `iecv_pooled`.
#' @param conf_level Level of the centres' Wald intervals (the study's).
#' @export
iecv_forest_data <- function(centres, pooled, estimand = "auc", models = NULL, conf_level = 0.95) {
  check_columns(pooled, c("model", "estimand", "estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2", "k"),
                arg = "iecv_pooled")
  check_conf_level(conf_level)
  have <- unique(as.character(pooled$estimand))
  if (!is.character(estimand) || length(estimand) != 1L || !estimand %in% have || !estimand %in% names(IECV_SCALES)) {
    abort_input("{.arg estimand} must be one of {.val {have}} (the estimands of {.field iecv_pooled}), not {.val {format(estimand)}}.")
  }
  se <- paste0(estimand, "_se")
  check_columns(centres, c("centre", "model", estimand, se), arg = "iecv_centres")
  pooled <- pooled[pooled$estimand == estimand, , drop = FALSE]
  models <- models %||% unique(as.character(pooled$model))
  bad <- setdiff(models, pooled$model)
  if (length(bad)) abort_input("{.field iecv_pooled} has no {.val {estimand}} row for model{?s} {.val {bad}}; it has {.val {unique(pooled$model)}}.")
  pooled <- pooled[match(models, pooled$model), , drop = FALSE]
  scale <- IECV_SCALES[[estimand]]
  cen <- do.call(rbind, lapply(seq_len(nrow(pooled)), function(i) {
    m <- pooled$model[i]
    rows <- centres[as.character(centres$model) == m, , drop = FALSE]
    est <- as.numeric(rows[[estimand]])
    s <- as.numeric(rows[[se]])
    keep <- is.finite(est) & is.finite(s) & s > 0  # those the stage pooled (srnomogram.study.iecv.iecv_long)
    if (sum(keep) != pooled$k[i]) {
      abort_input(c("{.field iecv_centres} has {sum(keep)} centre{?s} with a {estimand} and its SE for model {.val {m}}, but {.field iecv_pooled} pooled k = {pooled$k[i]}.",
                    i = "The two pins come from different runs; pass the run's pins ({.arg pins}) or run the study again."))
    }
    out <- centre_intervals(est[keep], s[keep], as.character(rows$centre[keep]), scale, conf_level)
    w <- 1 / (s[keep]^2 + pooled$tau2[i])  # metafor's random-effects weights (weights.rma.uni), in percent
    out$weight <- if (is.finite(pooled$tau2[i])) 100 * w / sum(w) else NA_real_
    cbind(data.frame(model = m, estimand = estimand, stringsAsFactors = FALSE), out)
  }))
  out <- data.frame(model = as.character(pooled$model), estimand = estimand,
                    pooled[c("estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2", "k")],
                    stringsAsFactors = FALSE)
  rownames(out) <- NULL
  rownames(cen) <- NULL
  structure(out, centres = cen, conf_level = conf_level, class = c("srnomogram_iecv", "srnomogram_meta", "data.frame"))
}

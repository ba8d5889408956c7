#' Publication style for the study's figures
#'
#' A ggplot2 theme (white background, black axes, no minor grid, legend inside
#' or below) and a colour-blind-safe palette (Okabe-Ito) used by every figure.
#'
#' @param base_size Base font size in points.
#' @return A ggplot2 theme.
#' @examples
#' ggplot2::ggplot(mtcars, ggplot2::aes(wt, mpg)) + ggplot2::geom_point() + theme_srnomogram()
#' @export
theme_srnomogram <- function(base_size = 10) {
  ggplot2::theme_classic(base_size = base_size) +
    ggplot2::theme(
      panel.grid.major = ggplot2::element_line(colour = "grey92", linewidth = 0.3),
      strip.background = ggplot2::element_blank(),
      strip.text = ggplot2::element_text(face = "bold", size = base_size + 1),
      legend.background = ggplot2::element_rect(fill = grDevices::adjustcolor("white", 0.8), colour = NA),
      legend.key.width = ggplot2::unit(1.4, "lines"),
      plot.title = ggplot2::element_text(face = "bold"),
      axis.text = ggplot2::element_text(colour = "black")
    )
}

srn_palette <- function(n) {
  okabe <- c("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
  rep_len(okabe, n)
}

#' Save a figure as PNG (300 dpi) and PDF
#'
#' Writes `<path>.png` and `<path>.pdf`; each file is written to a temporary
#' name in the same folder and then renamed, so no half-written figure is left.
#'
#' @param plot A ggplot object (or anything `ggplot2::ggsave()` accepts).
#' @param path Output path without extension (an extension given is dropped).
#' @param width,height Size in inches.
#' @param dpi Resolution of the PNG.
#' @return The two file paths, invisibly.
#' @examples
#' p <- ggplot2::ggplot(mtcars, ggplot2::aes(wt, mpg)) + ggplot2::geom_point()
#' save_figure(p, file.path(tempdir(), "example"), width = 4, height = 3)
#' @export
save_figure <- function(plot, path, width = 7, height = 5, dpi = 300) {
  path <- sub("\\.(png|pdf)$", "", path, ignore.case = TRUE)
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  out <- c(png = paste0(path, ".png"), pdf = paste0(path, ".pdf"))
  for (ext in names(out)) {
    tmp <- tempfile(pattern = ".fig-", tmpdir = dirname(path), fileext = paste0(".", ext))
    dev <- if (ext == "pdf") grDevices::cairo_pdf else "png"
    if (ext == "pdf" && !capabilities("cairo")) dev <- "pdf"
    ggplot2::ggsave(tmp, plot, width = width, height = height, dpi = dpi, units = "in",
                    device = dev, bg = "white")
    if (!file.rename(tmp, out[[ext]])) {
      file.copy(tmp, out[[ext]], overwrite = TRUE)
      unlink(tmp)
    }
  }
  invisible(unname(out))
}

# --- ROC ---------------------------------------------------------------------

#' ROC curves of several models, in train and test panels
#'
#' @param x One of: a `srnomogram_roc`; a named list of them (one panel); a
#'   named list of named lists (one panel per outer name, e.g. `Train`/`Test`);
#'   or a data frame, with `outcome` and `scores` naming its columns and
#'   optional `panel` naming a column (e.g. `"split"`).
#' @param outcome,scores,panel Column names when `x` is a data frame; `scores`
#'   may be named (names become legend labels).
#' @param ... Unused.
#' @return A ggplot (one panel) or a patchwork of ggplots (several panels, which
#'   is also of class `ggplot`); each panel's legend gives each model's AUC
#'   with its DeLong 95% CI in that panel's data.
#' @examples
#' set.seed(1)
#' d <- data.frame(y = rbinom(200, 1, 0.4), split = rep(c("Train", "Test"), 100))
#' d$lr <- d$y + rnorm(200)
#' d$svm <- d$y + rnorm(200, sd = 1.5)
#' roc_plot(d, outcome = "y", scores = c(LR = "lr", SVM = "svm"), panel = "split")
#' @export
roc_plot <- function(x, outcome = NULL, scores = NULL, panel = NULL, ...) {
  panels <- roc_panels(x, outcome, scores, panel)
  curves <- list()
  for (pi in seq_along(panels)) {
    pn <- names(panels)[pi]
    for (mi in seq_along(panels[[pi]])) {
      mn <- names(panels[[pi]])[mi]
      r <- panels[[pi]][[mi]]
      label <- sprintf("%s (AUC %.3f, 95%% CI %.3f\u2013%.3f)", mn, r$auc, r$lower, r$upper)
      cv <- r$curve[order(-r$curve$threshold), , drop = FALSE]
      curves[[length(curves) + 1L]] <- data.frame(
        panel = pn, model = mn, label = label,
        fpr = c(0, 1 - cv$specificity, 1), tpr = c(0, cv$sensitivity, 1),
        stringsAsFactors = FALSE)
    }
  }
  df <- do.call(rbind, curves)
  models <- unique(df$model)
  cols <- stats::setNames(srn_palette(length(models)), models)
  plots <- lapply(unique(df$panel), function(pn) {
    d <- df[df$panel == pn, , drop = FALSE]
    d$group <- d$model
    labs <- unique(d[, c("model", "label")])
    d$label <- factor(d$label, levels = labs$label[order(match(labs$model, models))])
    lab_cols <- stats::setNames(cols[labs$model], labs$label)
    ggplot2::ggplot(d, ggplot2::aes(.data$fpr, .data$tpr, colour = .data$label, group = .data$group)) +
      ggplot2::geom_abline(slope = 1, intercept = 0, linetype = "dashed", colour = "grey60") +
      ggplot2::geom_path(linewidth = 0.7) +
      ggplot2::coord_equal(xlim = c(0, 1), ylim = c(0, 1), expand = FALSE) +
      ggplot2::scale_colour_manual(values = lab_cols, name = NULL) +
      ggplot2::labs(x = "1 - Specificity", y = "Sensitivity", title = if (nzchar(pn)) pn else NULL) +
      theme_srnomogram() +
      ggplot2::theme(legend.position = c(0.98, 0.02), legend.justification = c(1, 0),
                     legend.text = ggplot2::element_text(size = 7),
                     legend.key.height = ggplot2::unit(0.8, "lines"),
                     plot.title = ggplot2::element_text(hjust = 0.5),
                     plot.margin = ggplot2::margin(5, 12, 5, 5))
  })
  if (length(plots) == 1L) return(plots[[1]])
  patchwork::wrap_plots(plots, nrow = 1)
}

roc_panels <- function(x, outcome, scores, panel) {
  if (inherits(x, "srnomogram_roc")) return(list(list(Model = x)) |> stats::setNames(""))
  if (is.data.frame(x)) {
    if (is.null(outcome) || is.null(scores)) {
      abort_input("With a data frame, {.arg outcome} and {.arg scores} must name its columns.")
    }
    check_columns(x, c(outcome, scores, panel), arg = "x")
    nm <- if (is.null(names(scores))) scores else ifelse(nzchar(names(scores)), names(scores), scores)
    groups <- if (is.null(panel)) list(x) |> stats::setNames("") else {
      pv <- x[[panel]]
      lv <- if (is.factor(pv)) levels(droplevels(pv)) else unique(as.character(pv))
      stats::setNames(lapply(lv, function(l) x[as.character(pv) == l, , drop = FALSE]), lv)
    }
    return(lapply(groups, function(g) {
      stats::setNames(lapply(scores, function(s) roc_auc(g[[outcome]], g[[s]])), nm)
    }))
  }
  if (is.list(x) && length(x) && all(vapply(x, inherits, logical(1), "srnomogram_roc"))) {
    if (is.null(names(x))) names(x) <- paste("Model", seq_along(x))
    return(list(x) |> stats::setNames(""))
  }
  if (is.list(x) && length(x) && all(vapply(x, is.list, logical(1)))) {
    if (is.null(names(x))) names(x) <- paste("Panel", seq_along(x))
    return(lapply(x, function(p) {
      if (is.null(names(p))) names(p) <- paste("Model", seq_along(p))
      p
    }))
  }
  abort_input("{.arg x} must be a {.cls srnomogram_roc}, a (nested) list of them, or a data frame.")
}

# --- Calibration ---------------------------------------------------------------

#' Calibration plot
#'
#' Bootstrap mode: apparent and bias-corrected curves of `rms::calibrate` with
#' the ideal line and the mean absolute error. External mode: the lowess
#' smooth of observed on predicted, grouped observed proportions (deciles of
#' risk), a rug of predictions, and the intercept, slope and Hosmer-Lemeshow
#' test in the subtitle.
#'
#' @param x A `srnomogram_calibration`.
#' @param title Optional title.
#' @param ... Unused.
#' @return A ggplot.
#' @export
calibration_plot <- function(x, title = NULL, ...) {
  if (!inherits(x, "srnomogram_calibration")) {
    abort_input("{.arg x} must come from {.fn calibrate_nomogram}, not {.cls {class(x)}}.")
  }
  base <- ggplot2::ggplot() +
    ggplot2::geom_abline(ggplot2::aes(slope = 1, intercept = 0, linetype = "Ideal", colour = "Ideal"),
                         key_glyph = "path") +
    ggplot2::coord_equal(xlim = c(0, 1), ylim = c(0, 1)) +
    ggplot2::labs(x = "Nomogram-predicted probability", y = "Actual probability", title = title) +
    theme_srnomogram() + ggplot2::theme(legend.position = c(0.75, 0.18), legend.title = ggplot2::element_blank())
  if (x$mode == "bootstrap") {
    long <- rbind(data.frame(predicted = x$table$predicted, value = x$table$apparent, curve = "Apparent"),
                  data.frame(predicted = x$table$predicted, value = x$table$bias_corrected, curve = "Bias-corrected"))
    sub <- sprintf("B = %d bootstrap repetitions, n = %d\nMean absolute error = %.3f", x$B, x$n, x$mae)
    base +
      ggplot2::geom_rug(ggplot2::aes(x = x$predicted), sides = "t", alpha = 0.3, length = ggplot2::unit(0.02, "npc")) +
      ggplot2::geom_line(data = long, ggplot2::aes(.data$predicted, .data$value, linetype = .data$curve,
                                                   colour = .data$curve), linewidth = 0.7) +
      ggplot2::scale_linetype_manual(values = c(Apparent = "dotted", `Bias-corrected` = "solid", Ideal = "dashed"), name = NULL) +
      ggplot2::scale_colour_manual(values = c(Apparent = "#0072B2", `Bias-corrected` = "#D55E00", Ideal = "grey50"), name = NULL) +
      ggplot2::labs(subtitle = sub)
  } else {
    tab <- x$table
    grp <- cut(tab$predicted, unique(stats::quantile(tab$predicted, seq(0, 1, 0.1))), include.lowest = TRUE)
    pts <- data.frame(predicted = tapply(tab$predicted, grp, mean), observed = tapply(tab$observed, grp, mean))
    sub <- sprintf("Intercept %.3f, slope %.3f\nHosmer-Lemeshow \u03c7\u00b2 = %.2f, df = %d, P = %.3f",
                   x$intercept, x$slope, x$hl$statistic, as.integer(x$hl$parameter), x$hl$p.value)
    base +
      ggplot2::geom_rug(data = tab, ggplot2::aes(x = .data$predicted), sides = "b", alpha = 0.3) +
      ggplot2::geom_point(data = pts, ggplot2::aes(.data$predicted, .data$observed), shape = 2, size = 1.8) +
      ggplot2::geom_line(data = tab, ggplot2::aes(.data$predicted, .data$smoothed, linetype = "Smoothed (lowess)",
                                                  colour = "Smoothed (lowess)"), linewidth = 0.7) +
      ggplot2::scale_linetype_manual(values = c(`Smoothed (lowess)` = "solid", Ideal = "dashed"), name = NULL) +
      ggplot2::scale_colour_manual(values = c(`Smoothed (lowess)` = "#D55E00", Ideal = "grey50"), name = NULL) +
      ggplot2::labs(subtitle = sub)
  }
}

# --- Decision curves -------------------------------------------------------------

#' Decision curves of one or several models
#'
#' As `rmda::plot_decision_curve()`: net benefit (or standardised net benefit)
#' against the high-risk threshold, with the treat-all and treat-none reference
#' curves, bootstrap confidence bands, and an optional second axis of
#' cost:benefit ratios.
#'
#' @param x A `srnomogram_decision_curve`, or a (named) list of them (the same
#'   data and policy; treat-all / treat-none are taken from the first).
#' @param curve_names Legend labels (default: list names or model formulas).
#' @param standardize Plot sNB instead of NB.
#' @param show_ci Draw the bootstrap bands when computed (called
#'   `confidence_intervals` until 0.1.0, which now names a level elsewhere; the
#'   old name still works, with a warning of class
#'   `srnomogram_warning_deprecated`).
#' @param cost_benefit_axis Add the cost:benefit axis on top.
#' @param xlim Threshold range shown.
#' @param ylim Net-benefit range (`NULL`: from -0.05 to a little above the
#'   maximum).
#' @param ... Unused (the deprecated `confidence_intervals` is read from here).
#' @return A ggplot.
#' @examples
#' set.seed(1)
#' d <- data.frame(x = rnorm(150))
#' d$y <- rbinom(150, 1, plogis(d$x))
#' dc <- decision_curve(y ~ x, d, bootstraps = 20)
#' dca_plot(dc)
#' @export
dca_plot <- function(x, curve_names = NULL, standardize = FALSE, show_ci = TRUE,
                     cost_benefit_axis = TRUE, xlim = c(0, 1), ylim = NULL, ...) {
  dots <- list(...)
  if ("confidence_intervals" %in% names(dots)) {
    show_ci <- renamed_argument(dots["confidence_intervals"], c(confidence_intervals = "show_ci"), "dca_plot")
  }
  curves <- if (inherits(x, "srnomogram_decision_curve")) list(x) else x
  if (!is.list(curves) || !length(curves) ||
      !all(vapply(curves, inherits, logical(1), "srnomogram_decision_curve"))) {
    abort_input("{.arg x} must be a {.cls srnomogram_decision_curve} or a list of them.")
  }
  nm <- curve_names %||% names(curves) %||% vapply(curves, `[[`, "", "model_name")
  if (length(nm) != length(curves)) abort_input("{.arg curve_names} must have one name per curve.")
  measure <- if (standardize) "sNB" else "NB"
  pick <- function(d, model, label) {
    data.frame(threshold = d$thresholds, value = d[[measure]],
               lower = d[[paste0(measure, "_lower")]], upper = d[[paste0(measure, "_upper")]],
               curve = label, stringsAsFactors = FALSE)
  }
  models <- do.call(rbind, lapply(seq_along(curves), function(i) {
    d <- curves[[i]]$derived
    pick(d[d$model == curves[[i]]$model_name, ], curves[[i]]$model_name, nm[i])
  }))
  d1 <- curves[[1]]$derived
  refs <- rbind(pick(d1[d1$model == "All", ], "All", "Treat all"),
                pick(d1[d1$model == "None", ], "None", "Treat none"))
  all_df <- rbind(models, refs)
  all_df <- all_df[all_df$threshold >= xlim[1] & all_df$threshold <= xlim[2], ]
  all_df$curve <- factor(all_df$curve, levels = c(nm, "Treat all", "Treat none"))
  cols <- c(srn_palette(length(nm)), "grey40", "black")
  names(cols) <- levels(all_df$curve)
  lty <- c(rep("solid", length(nm)), "dashed", "solid")
  names(lty) <- levels(all_df$curve)
  if (is.null(ylim)) {
    top <- max(all_df$value[is.finite(all_df$value)], 0.05, na.rm = TRUE)
    ylim <- c(-0.05, top * 1.08)
  }
  policy <- curves[[1]]$policy
  p <- ggplot2::ggplot(all_df, ggplot2::aes(.data$threshold, .data$value))
  if (show_ci && any(!is.na(models$lower))) {
    p <- p + ggplot2::geom_ribbon(data = all_df[all_df$curve %in% nm & !is.na(all_df$lower), ],
                                  ggplot2::aes(ymin = .data$lower, ymax = .data$upper, fill = .data$curve),
                                  alpha = 0.15, colour = NA, show.legend = FALSE) +
      ggplot2::scale_fill_manual(values = cols)
  }
  sec <- if (cost_benefit_axis) {
    brk <- c(1 / 100, 1 / 9, 1 / 4, 3 / 7, 2 / 3, 1, 3 / 2, 7 / 3, 4, 9)
    at <- brk / (1 + brk)
    at <- at[at >= xlim[1] & at <= xlim[2]]
    ggplot2::sec_axis(~., breaks = at, labels = cost_benefit_label(at, policy), name = "Cost:Benefit Ratio")
  } else ggplot2::waiver()
  p + ggplot2::geom_line(ggplot2::aes(colour = .data$curve, linetype = .data$curve), linewidth = 0.7, na.rm = TRUE) +
    ggplot2::scale_colour_manual(values = cols, name = NULL) +
    ggplot2::scale_linetype_manual(values = lty, name = NULL) +
    ggplot2::scale_x_continuous(limits = xlim, sec.axis = sec) +
    ggplot2::coord_cartesian(ylim = ylim) +
    ggplot2::labs(x = sprintf("High Risk Threshold (%s)", policy),
                  y = if (standardize) "Standardized Net Benefit" else "Net Benefit") +
    theme_srnomogram() + ggplot2::theme(legend.position = c(0.8, 0.85))
}

#' @rdname dca_plot
#' @export
plot.srnomogram_decision_curve <- function(x, ...) dca_plot(x, ...)

# --- Nomogram ---------------------------------------------------------------------

#' Publication nomogram
#'
#' Draws the rms nomogram of a [fit_nomogram()] fit as a ggplot: a Points axis
#' (0-100), one axis per predictor, Total Points, and the predicted risk axis.
#'
#' @param fit A `srnomogram_nomogram`.
#' @param fun_at Risks to mark on the risk axis.
#' @param labels Optional named character vector of axis labels for
#'   predictors (e.g. `c(score = "SR radiomics score")`).
#' @param ... Unused.
#' @return A ggplot.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' nomogram_plot(fit_nomogram(y ~ score + age, d))
#' @export
nomogram_plot <- function(fit, fun_at = c(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
                          labels = NULL, ...) {
  check_nomogram_fit(fit)
  tab <- nomogram_points_table(fit, fun_at = fun_at)
  preds <- unique(tab$variable[tab$axis == "predictor"])
  tot <- tab[tab$axis == "total_points", ]
  max_total <- max(tot$points)
  scale_total <- 100 / max_total
  axes <- list(data.frame(axis = "Points", x = seq(0, 100, 10), label = as.character(seq(0, 100, 10))))
  for (v in preds) {
    r <- tab[tab$axis == "predictor" & tab$variable == v, ]
    lab <- if (!is.null(labels) && v %in% names(labels)) labels[[v]] else v
    axes[[length(axes) + 1L]] <- data.frame(axis = lab, x = r$points, label = r$value)
  }
  axes[[length(axes) + 1L]] <- data.frame(axis = "Total Points", x = tot$points * scale_total,
                                          label = format(tot$points, trim = TRUE))
  rk <- tab[tab$axis == "risk", ]
  axes[[length(axes) + 1L]] <- data.frame(axis = "Risk of malignancy", x = rk$points * scale_total,
                                          label = format(as.numeric(rk$value), trim = TRUE, drop0trailing = TRUE))
  df <- do.call(rbind, axes)
  lv <- unique(df$axis)
  df$y <- -match(df$axis, lv)
  segs <- do.call(rbind, lapply(split(df, df$y), function(a) data.frame(y = a$y[1], x0 = min(a$x), x1 = max(a$x))))
  ggplot2::ggplot(df) +
    ggplot2::geom_segment(data = segs, ggplot2::aes(x = .data$x0, xend = .data$x1, y = .data$y, yend = .data$y),
                          linewidth = 0.4) +
    ggplot2::geom_segment(ggplot2::aes(x = .data$x, xend = .data$x, y = .data$y, yend = .data$y + 0.12),
                          linewidth = 0.4) +
    ggplot2::geom_text(ggplot2::aes(x = .data$x, y = .data$y + 0.22, label = .data$label), size = 2.5, vjust = 0) +
    ggplot2::scale_y_continuous(breaks = -seq_along(lv), labels = lv, expand = ggplot2::expansion(add = 0.4)) +
    ggplot2::scale_x_continuous(expand = ggplot2::expansion(mult = 0.04)) +
    ggplot2::labs(x = NULL, y = NULL) +
    theme_srnomogram() +
    ggplot2::theme(axis.line = ggplot2::element_blank(), axis.ticks = ggplot2::element_blank(),
                   axis.text.x = ggplot2::element_blank(), panel.grid.major = ggplot2::element_blank(),
                   axis.text.y = ggplot2::element_text(face = "bold", hjust = 0))
}

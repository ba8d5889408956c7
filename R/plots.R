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
#' @param formats File formats to write, among `"png"` and `"pdf"`.
#' @return The file paths (in the order of `formats`), invisibly.
#' @examples
#' p <- ggplot2::ggplot(mtcars, ggplot2::aes(wt, mpg)) + ggplot2::geom_point()
#' save_figure(p, file.path(tempdir(), "example"), width = 4, height = 3)
#' @export
save_figure <- function(plot, path, width = 7, height = 5, dpi = 300, formats = c("png", "pdf")) {
  formats <- unique(match.arg(formats, c("png", "pdf"), several.ok = TRUE))
  path <- sub("\\.(png|pdf)$", "", path, ignore.case = TRUE)
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  out <- stats::setNames(paste0(path, ".", formats), formats)
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
#' @param conf_level Level of the DeLong intervals computed when `x` is a data
#'   frame ([roc_auc()] objects carry their own).
#' @param ... Unused.
#' @return A ggplot (one panel) or a patchwork of ggplots (several panels, which
#'   is also of class `ggplot`); each panel's legend gives each model's AUC
#'   with its DeLong CI in that panel's data.
#' @examples
#' set.seed(1)
#' d <- data.frame(y = rbinom(200, 1, 0.4), split = rep(c("Train", "Test"), 100))
#' d$lr <- d$y + rnorm(200)
#' d$svm <- d$y + rnorm(200, sd = 1.5)
#' roc_plot(d, outcome = "y", scores = c(LR = "lr", SVM = "svm"), panel = "split")
#' @export
roc_plot <- function(x, outcome = NULL, scores = NULL, panel = NULL, conf_level = 0.95, ...) {
  panels <- roc_panels(x, outcome, scores, panel, conf_level)
  curves <- list()
  for (pi in seq_along(panels)) {
    pn <- names(panels)[pi]
    for (mi in seq_along(panels[[pi]])) {
      mn <- names(panels[[pi]])[mi]
      r <- panels[[pi]][[mi]]
      label <- sprintf("%s (AUC %.3f, %g%% CI %.3f\u2013%.3f)", mn, r$auc, 100 * r$conf_level, r$lower, r$upper)
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

roc_panels <- function(x, outcome, scores, panel, conf_level) {
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
      stats::setNames(lapply(scores, function(s) roc_auc(g[[outcome]], g[[s]], conf_level = conf_level)), nm)
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
#' smooth of observed on predicted with its bootstrap band when it has one
#' ([external_calibration()] with `B > 0`, as `CalibrationCurves::val.prob.ci.2`),
#' grouped observed proportions (deciles of risk), and calibration-in-the-large
#' (CITL), slope and Hosmer-Lemeshow test in the subtitle.
#' A rug marks the predictions. Several models (a named list) share one panel: one
#' colour per model, one line type per curve.
#'
#' @param x A `srnomogram_calibration`, or a named list of them of the same
#'   mode (e.g. `list("Clinical model" = cal1, Nomogram = cal2)`).
#' @param title Optional title.
#' @param ... Unused.
#' @return A ggplot.
#' @export
calibration_plot <- function(x, title = NULL, ...) {
  cals <- if (inherits(x, "srnomogram_calibration")) list(x) else x
  if (!is.list(cals) || !length(cals) || !all(vapply(cals, inherits, logical(1), "srnomogram_calibration"))) {
    abort_input("{.arg x} must come from {.fn calibrate_nomogram}, or be a list of such results, not {.cls {class(x)}}.")
  }
  modes <- vapply(cals, `[[`, "", "mode")
  if (length(unique(modes)) != 1L) {
    abort_input("Every calibration in {.arg x} must have the same mode; got {.val {unique(modes)}}.")
  }
  multi <- length(cals) > 1L
  nm <- names(cals) %||% rep("", length(cals))
  if (multi && (any(!nzchar(nm)) || anyDuplicated(nm))) abort_input("A list {.arg x} must have unique names (legend labels).")
  nm <- if (multi) nm else "Model"
  bootstrap <- modes[[1]] == "bootstrap"
  curves <- if (bootstrap) c("Apparent", "Bias-corrected") else "Smoothed (lowess)"
  long <- do.call(rbind, lapply(seq_along(cals), function(i) {
    tab <- cals[[i]]$table
    cols <- if (bootstrap) c("apparent", "bias_corrected") else "smoothed"
    d <- do.call(rbind, lapply(seq_along(cols), function(j) {
      data.frame(model = nm[i], curve = curves[j], predicted = tab$predicted, value = tab[[cols[j]]],
                 stringsAsFactors = FALSE)
    }))
    d[order(d$curve, d$predicted), , drop = FALSE]
  }))
  long$model <- factor(long$model, levels = nm)
  long$curve <- factor(long$curve, levels = c(curves, "Ideal"))
  model_cols <- stats::setNames(srn_palette(length(nm)), nm)
  lty <- stats::setNames(c(if (bootstrap) c("dotted", "solid") else "solid", "dashed"), c(curves, "Ideal"))
  colour_by <- if (multi) "model" else "curve"
  colours <- if (multi) c(model_cols, Ideal = "grey50") else
    stats::setNames(c(if (bootstrap) c("#0072B2", "#D55E00") else "#D55E00", "grey50"), c(curves, "Ideal"))
  rug <- do.call(rbind, lapply(seq_along(cals), function(i) {
    p <- if (bootstrap) cals[[i]]$predicted else cals[[i]]$table$predicted
    if (is.null(p) || !length(p)) return(NULL)
    data.frame(model = factor(nm[i], levels = nm), predicted = p)
  }))
  sub <- calibration_subtitle(cals, nm, multi, bootstrap)
  p <- ggplot2::ggplot() +
    ggplot2::geom_abline(ggplot2::aes(slope = 1, intercept = 0, linetype = "Ideal", colour = "Ideal"),
                         key_glyph = "path")
  # one colour per model when several share the panel; otherwise the rug and points are neutral
  by_model <- function(aes, geom, ...) {
    if (multi) geom(mapping = ggplot2::aes(!!!aes, colour = .data$model), ...) else geom(mapping = aes, colour = "grey20", ...)
  }
  if (!is.null(rug)) {
    p <- p + by_model(ggplot2::aes(x = .data$predicted), ggplot2::geom_rug, data = rug, sides = "b",
                      alpha = 0.3, length = ggplot2::unit(0.02, "npc"), show.legend = FALSE, inherit.aes = FALSE)
  }
  band <- if (!bootstrap) do.call(rbind, lapply(seq_along(cals), function(i) {
    tab <- cals[[i]]$table
    if (!all(c("lower", "upper") %in% names(tab))) return(NULL)
    d <- data.frame(model = factor(nm[i], levels = nm), predicted = tab$predicted, lower = tab$lower, upper = tab$upper)
    d[stats::complete.cases(d), , drop = FALSE]
  }))
  if (!is.null(band) && nrow(band)) {
    fill <- if (multi) model_cols else c(Model = "#D55E00")
    p <- p + ggplot2::geom_ribbon(data = band, ggplot2::aes(x = .data$predicted, ymin = .data$lower, ymax = .data$upper,
                                                            fill = .data$model, group = .data$model),
                                  alpha = 0.15, inherit.aes = FALSE, show.legend = FALSE) +
      ggplot2::scale_fill_manual(values = fill, guide = "none")
    level <- cals[[1]]$conf_level
    sub <- paste0(sub, sprintf("\nShaded: %s bootstrap band of the smoothed curve (B = %d)",
                               if (is.numeric(level) && !is.na(level)) sprintf("%g%%", 100 * level) else "percentile",
                               as.integer(cals[[1]]$B %||% NA)))
  }
  if (!bootstrap) {
    pts <- do.call(rbind, lapply(seq_along(cals), function(i) {
      tab <- cals[[i]]$table
      grp <- cut(tab$predicted, unique(stats::quantile(tab$predicted, seq(0, 1, 0.1))), include.lowest = TRUE)
      data.frame(model = factor(nm[i], levels = nm), predicted = as.vector(tapply(tab$predicted, grp, mean)),
                 observed = as.vector(tapply(tab$observed, grp, mean)))
    }))
    pts <- pts[stats::complete.cases(pts), , drop = FALSE]  # a decile with no lesion (ties) has no point
    p <- p + by_model(ggplot2::aes(.data$predicted, .data$observed), ggplot2::geom_point, data = pts,
                      shape = 2, size = 1.8, show.legend = FALSE)
  }
  p + ggplot2::geom_line(data = long, ggplot2::aes(.data$predicted, .data$value, linetype = .data$curve,
                                                   colour = .data[[colour_by]],
                                                   group = interaction(.data$model, .data$curve)),
                         linewidth = 0.7, na.rm = TRUE) +
    ggplot2::scale_linetype_manual(values = lty, breaks = names(lty), name = NULL) +
    ggplot2::scale_colour_manual(values = colours, breaks = if (multi) nm else names(colours), name = NULL) +
    ggplot2::coord_equal(xlim = c(0, 1), ylim = c(0, 1)) +
    ggplot2::labs(x = "Predicted probability", y = "Actual probability", title = title, subtitle = sub) +
    theme_srnomogram() +
    ggplot2::theme(legend.position = c(0.02, 0.98), legend.justification = c(0, 1),
                   legend.title = ggplot2::element_blank(), legend.text = ggplot2::element_text(size = 7),
                   legend.key.height = ggplot2::unit(0.8, "lines"), legend.spacing.y = ggplot2::unit(0, "lines"),
                   plot.subtitle = ggplot2::element_text(size = 7))
}

calibration_subtitle <- function(cals, nm, multi, bootstrap) {
  if (bootstrap) {
    mae <- vapply(cals, function(x) x$mae, numeric(1))
    head <- sprintf("B = %d bootstrap repetitions, n = %d", cals[[1]]$B, cals[[1]]$n)
    if (!multi) return(sprintf("%s\nMean absolute error = %.3f", head, mae))
    return(sprintf("%s\nMean absolute error: %s", head, paste(sprintf("%s %.3f", nm, mae), collapse = ", ")))
  }
  lines <- vapply(seq_along(cals), function(i) {
    x <- cals[[i]]
    hl <- if (is.null(x$hl)) "" else
      sprintf(if (multi) "; HL \u03c7\u00b2 = %.2f (df %d), P = %.3f" else "\nHosmer-Lemeshow \u03c7\u00b2 = %.2f, df = %d, P = %.3f",
              x$hl$statistic, as.integer(x$hl$parameter), x$hl$p.value)
    # calibration-in-the-large (the offset intercept), not val.prob's recalibration intercept
    sprintf("%sCITL %.3f, slope %.3f%s", if (multi) paste0(nm[i], ": ") else "", x$citl %||% NA_real_, x$slope, hl)
  }, "")
  paste(c(if (multi) sprintf("n = %d", cals[[1]]$n), lines), collapse = "\n")
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
  bands <- show_ci && any(!is.na(models$lower))
  if (bands) {
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
  ci <- curves[[1]]$conf_level
  caption <- if (bands && is.numeric(ci) && !is.na(ci)) {
    b <- curves[[1]]$bootstraps
    sprintf("Bands: %g%% bootstrap percentile intervals%s", 100 * ci,
            if (is.numeric(b) && length(b) == 1L && !is.na(b) && b > 0) sprintf(" (%d resamples)", as.integer(b)) else "")
  }
  p + ggplot2::geom_line(ggplot2::aes(colour = .data$curve, linetype = .data$curve), linewidth = 0.7, na.rm = TRUE) +
    ggplot2::scale_colour_manual(values = cols, name = NULL) +
    ggplot2::scale_linetype_manual(values = lty, name = NULL) +
    ggplot2::scale_x_continuous(limits = xlim, sec.axis = sec) +
    ggplot2::coord_cartesian(ylim = ylim) +
    ggplot2::labs(x = sprintf("High Risk Threshold (%s)", policy),
                  y = if (standardize) "Standardized Net Benefit" else "Net Benefit", caption = caption) +
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
#' It can also be drawn from the fit's points table ([nomogram_points_table()],
#' the study board's pin `nomogram_points`), so a figure can be rebuilt from a
#' board without the fitted model: the predictor and total-points axes are the
#' table's, and the risk axis is placed at `fun_at` from the table's scaling
#' rows, `total = (qlogis(risk) - intercept) * points_per_lp`, the mapping
#' `rms::nomogram()` draws.
#'
#' @param fit A `srnomogram_nomogram`, or its points table (a data frame with
#'   columns `axis`, `variable`, `value`, `points`, including the `scaling`
#'   rows).
#' @param fun_at Risks to mark on the risk axis (those that fall within the
#'   total-points axis are drawn).
#' @param labels Optional named character vector of axis labels for
#'   predictors (e.g. `c(score = "SR radiomics score")`).
#' @param ... Unused.
#' @return A ggplot.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' fit <- fit_nomogram(y ~ score + age, d)
#' nomogram_plot(fit)
#' nomogram_plot(nomogram_points_table(fit), labels = c(score = "Score", age = "Age (years)"))
#' @export
nomogram_plot <- function(fit, fun_at = c(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
                          labels = NULL, ...) {
  tab <- if (is.data.frame(fit)) points_table_risk_axis(fit, fun_at) else {
    check_nomogram_fit(fit)
    nomogram_points_table(fit, fun_at = fun_at)
  }
  labels <- unlist(labels)
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

# A points table (from nomogram_points_table(), possibly read back from a CSV pin)
# with its risk axis replaced by one at `fun_at`, from the table's scaling rows.
points_table_risk_axis <- function(tab, fun_at) {
  check_columns(tab, c("axis", "variable", "value", "points"), arg = "fit")
  sc <- tab[tab$axis == "scaling", , drop = FALSE]
  get <- function(v) {
    x <- suppressWarnings(as.numeric(sc$value[sc$variable == v]))
    if (length(x) != 1L || !is.finite(x)) {
      abort_input("The points table {.arg fit} has no numeric {.val scaling} row {.val {v}}; pass the whole table of {.fn nomogram_points_table}.")
    }
    x
  }
  intercept <- get("intercept")
  per_lp <- get("points_per_lp")
  tot <- tab$points[tab$axis == "total_points"]
  at <- fun_at[fun_at > 0 & fun_at < 1]
  pts <- (stats::qlogis(at) - intercept) * per_lp
  keep <- pts >= min(tot) & pts <= max(tot)
  risk <- data.frame(axis = "risk", variable = "Risk", value = as.character(at[keep]), points = pts[keep],
                     stringsAsFactors = FALSE)
  tab$value <- as.character(tab$value)
  rbind(tab[tab$axis != "risk", c("axis", "variable", "value", "points")], risk)
}

# --- The study's figures, from its board ---------------------------------------------

study_figure_names <- c("figure3_roc_models", "figure4_loss", "figure5_gradcam", "figure6_nomogram",
                        "figure7_validation", "figure_repeated_splits",
                        "figure_iecv_auc", "figure_iecv_citl", "figure_iecv_slope",
                        "external_roc", "external_calibration", "external_dca")
# the pins a figure needs; a name ending in "_" is a prefix: one pin per model (at least one)
study_figure_pins <- list(
  figure3_roc_models = c("scores", "model_aucs"),
  figure4_loss = "loss_history_",
  figure5_gradcam = "gradcam_",
  figure6_nomogram = "nomogram_points",
  figure7_validation = c("predictions", "calibration", "calibration_summary", "hosmer_lemeshow", "decision_curves"),
  figure_repeated_splits = "repeated_splits",
  figure_iecv_auc = c("iecv_centres", "iecv_pooled"),
  figure_iecv_citl = c("iecv_centres", "iecv_pooled"),
  figure_iecv_slope = c("iecv_centres", "iecv_pooled"),
  external_roc = c("external_scores_used", "external_auc"),
  external_calibration = c("external_calibration_curves", "external_calibration"),
  external_dca = c("external_decision_curves", "external_auc")
)
study_figure_size <- list(figure3_roc_models = c(11, 5.6), figure4_loss = c(6, 4), figure5_gradcam = c(NA, NA),
                          figure6_nomogram = c(8, NA), figure7_validation = c(10, 14), figure_repeated_splits = c(NA, 4.2),
                          figure_iecv_auc = c(NA, NA), figure_iecv_citl = c(NA, NA), figure_iecv_slope = c(NA, NA),
                          external_roc = c(6.5, 5.6), external_calibration = c(6.5, 6.5), external_dca = c(7, 5.6))

# The pins of a figure on the board: the fixed names, or every pin of a prefix; missing ones as NA.
figure_pins <- function(name, have) {
  need <- study_figure_pins[[name]]
  prefix <- endsWith(need, "_")
  got <- c(need[!prefix], unlist(lapply(need[prefix], function(p) sort(have[startsWith(have, p)]))))
  list(pins = got, missing = c(setdiff(need[!prefix], have),
                               need[prefix][!vapply(need[prefix], function(p) any(startsWith(have, p)), TRUE)]))
}

#' Every figure of the study, from its board
#'
#' The figures of the study's report, drawn from the pins that `srnomogram run`
#' writes (read with [read_pin()] and [read_file_pin()]), so they can be
#' rebuilt, restyled or redrawn in R from the board alone. `study_figures()`
#' redraws every figure the board has pins for in one call; the study's own
#' run calls it (as `board_figures()`) to draw its report's figures.
#'
#' * `figure3_roc_models`: ROC curves of every radiomics and deep-learning
#'   model, training and test panels (pin `scores`), each legend entry with the
#'   AUC and its DeLong interval ([roc_plot()]);
#' * `figure4_loss`: training loss (cross-entropy) per iteration of each CNN
#'   (pins `loss_history_<model>`);
#' * `figure5_gradcam`: Grad-CAM heat maps over a few test lesions, one row
#'   per CNN (file pins `gradcam_<model>`, NumPy `.npz`, read by [read_npz()]);
#' * `figure6_nomogram`: the rms nomogram of the deep-learning nomogram (pin
#'   `nomogram_points`, [nomogram_plot()]);
#' * `figure7_validation`: clinical model vs nomogram on the training and test
#'   sets: ROC (pin `predictions`), calibration (pins `calibration`,
#'   `calibration_summary`, `hosmer_lemeshow`: the bootstrap bias-corrected
#'   curve on training, the lowess curve on test; [calibration_plot()]) and
#'   decision curves with their bootstrap bands (pin `decision_curves`,
#'   [dca_plot()]);
#' * `figure_repeated_splits`: the test AUC of every model, the clinical model
#'   and the nomogram over split seeds (pin `repeated_splits`; one dot per
#'   seed, ringed where the model was chosen, a bar at the mean);
#' * `figure_iecv_auc`, `figure_iecv_citl`, `figure_iecv_slope`: forest plots
#'   of the internal-external cross-validation (`split.method: centre`), one
#'   panel per model: each held-out centre, the pooled estimate and its
#'   prediction interval as pinned in `iecv_pooled` (pins `iecv_centres`,
#'   `iecv_pooled`; [iecv_forest()]);
#' * `external_roc`, `external_calibration`, `external_dca`: the same three
#'   plots of every model on an external cohort, from the board `srnomogram
#'   validate` writes (pins `external_scores_used`, `external_auc`,
#'   `external_calibration_curves` with the lowess curve's bootstrap band,
#'   `external_calibration`, `external_decision_curves`; the decision curves'
#'   bands are drawn for the clinical model and the nomogram only).
#'
#' Models are joined to their display labels by id through the `model_labels`
#' pin (`model`, `label`), never by position. The intervals' level and the
#' number of decision-curve resamples come from the study settings kept in the
#' pins' metadata (`nomogram.alpha`, `nomogram.dca_bootstraps`).
#'
#' @param board Folder of the study's board (`OUT/board`).
#' @param name The figure.
#' @param labels Optional named character vector (or list) of display names:
#'   model ids (`or_lr = "OR-LR"`), `clinical`, `nomogram`, and the
#'   nomogram's predictors (`age = "Age (years)"`). By default the models take
#'   the `model_labels` pin's labels, predictors the study's
#'   `cohort.clinical_labels`.
#' @param pins Optional names of the pins the figures may use (e.g. those of
#'   one run: a board keeps an earlier run's pins too); `NULL`: every pin.
#' @return `board_figure()`: a ggplot (a patchwork for several panels).
#' @examples
#' \dontrun{
#' study_figures("study/board", "figures")
#' p <- board_figure("study/board", "figure7_validation")
#' }
#' @export
board_figure <- function(board, name = study_figure_names, labels = NULL, pins = NULL) {
  name <- rlang::arg_match(name)
  found <- figure_pins(name, board_pin_names(board, pins))
  if (length(found$missing)) {
    what <- ifelse(endsWith(found$missing, "_"), paste0(found$missing, "<model>"), found$missing)
    abort_input("Board {.path {board}} has no pin{?s} {.val {what}}, which {.val {name}} needs; run the study's stages first.")
  }
  pin <- function(n) read_pin(board, n)
  first <- found$pins[1]
  cfg <- (if (name == "figure5_gradcam") board_pin_meta(board, first) else attr(pin(first), "pin_meta"))$user$config
  alpha <- as.numeric(cfg$nomogram$alpha %||% 0.05)
  labels <- study_labels(board, cfg, labels)
  shown <- function(ids) ifelse(ids %in% names(labels), labels[ids], ids)
  switch(name,
    figure3_roc_models = roc_models_figure(pin("scores"), pin("model_aucs")$model, labels, 1 - alpha),
    figure4_loss = loss_figure(lapply(stats::setNames(found$pins, shown(sub("^loss_history_", "", found$pins))), pin)),
    figure5_gradcam = gradcam_figure(lapply(stats::setNames(found$pins, shown(sub("^gradcam_", "", found$pins))),
                                            function(p) read_npz(read_file_pin(board, p)))),
    figure6_nomogram = nomogram_plot(pin("nomogram_points"), labels = labels),
    figure7_validation = validation_figure(pin("predictions"), pin("calibration"), pin("calibration_summary"),
                                           pin("hosmer_lemeshow"), pin("decision_curves"), labels, 1 - alpha,
                                           as.integer(cfg$nomogram$dca_bootstraps %||% NA)),
    figure_repeated_splits = repeated_splits_figure(pin("repeated_splits"), labels),
    figure_iecv_auc = , figure_iecv_citl = , figure_iecv_slope = iecv_forest(board, sub("^figure_iecv_", "", name),
                                                                             labels = labels, pins = pins),
    external_roc = {
      models <- pin("external_auc")$model
      roc_plot(pin("external_scores_used"), outcome = "label", scores = stats::setNames(models, shown_labels(models, labels)),
               conf_level = 1 - alpha) + ggplot2::labs(title = "External ROC curves")
    },
    external_calibration = external_calibration_figure(pin("external_calibration_curves"), pin("external_calibration"), labels),
    external_dca = external_dca_figure(pin("external_decision_curves"), pin("external_auc")$model, labels, 1 - alpha,
                                       as.integer(cfg$nomogram$dca_bootstraps %||% NA)))
}

# A forest plot's size: panels of 3.2 in, up to three a row; a row per centre, pooled and PI.
forest_size <- function(p) {
  panels <- length(unique(p$layers[[1]]$data$model))
  rows <- length(unique(p$layers[[1]]$data$centre)) + 2
  c(1.2 + 3.2 * min(panels, 3), 1.4 + ceiling(panels / 3) * (0.6 + 0.28 * rows))
}

shown_labels <- function(models, labels) ifelse(models %in% names(labels), labels[models], models)

# Every model's external lowess curve in one panel, with its bootstrap band when
# the table has one, rebuilt as srnomogram_calibration objects (the summary's
# Eavg is rms::val.prob's mean absolute calibration error).
external_calibration_figure <- function(curves, summary, labels) {
  models <- unique(summary$model)
  cals <- lapply(models, function(m) {
    info <- summary[summary$model == m, , drop = FALSE]
    info$mode <- "external"
    info$mae <- info$eavg
    hl <- data.frame(statistic = info$hl_statistic, df = info$hl_df, p_value = info$hl_p)
    calibration_from_table(curves[curves$model == m, , drop = FALSE], info, hl, NULL)
  })
  calibration_plot(stats::setNames(cals, shown_labels(models, labels)), title = "External calibration")
}

# Decision curves of every model; bootstrap bands for the clinical model and the
# nomogram only (with one band per model the figure is unreadable; every band is
# in the table).
external_dca_figure <- function(d, models, labels, conf_level, dca_bootstraps) {
  dcs <- lapply(models, function(m) {
    part <- d[d$model == m, , drop = FALSE]
    if (!m %in% c("clinical", "nomogram")) part[grepl("_(lower|upper)$", names(part))] <- NA_real_
    part$conf_level <- if (any(!is.na(d$NB_lower %||% NA))) conf_level else NA_real_
    decision_curve_from_table(part[, setdiff(names(part), c("unit", "ci_method")), drop = FALSE], dca_bootstraps)
  })
  dca_plot(stats::setNames(dcs, shown_labels(models, labels)), cost_benefit_axis = FALSE) +
    ggplot2::labs(title = "External decision curves", x = "Threshold probability")
}

#' @rdname board_figure
#' @param out_dir Folder the figures are written to, as `<name>.png` (300 dpi)
#'   and `<name>.pdf` by [save_figure()].
#' @param names Figures to draw; those whose pins are not on the board (e.g. a
#'   study without CNNs or without the nomogram stage) are skipped.
#' @param formats File formats.
#' @return `study_figures()`, `board_figures()`: the paths of the first
#'   format, named by figure.
#' @export
study_figures <- function(board, out_dir, names = study_figure_names, labels = NULL, formats = c("png", "pdf"),
                          pins = NULL) {
  names <- unique(vapply(names, function(n) rlang::arg_match(n, study_figure_names), ""))
  have <- board_pin_names(board, pins)
  out <- character()
  for (n in names) {
    if (length(figure_pins(n, have)$missing)) next
    p <- board_figure(board, n, labels, pins)
    size <- study_figure_size[[n]]
    if (n == "figure6_nomogram") size[2] <- 0.42 * (length(unique(p$data$axis)) + 1)  # one row per axis
    if (n == "figure5_gradcam") size <- attr(p, "srn_size")
    if (n == "figure_repeated_splits") size[1] <- max(5, 0.9 * attr(p, "srn_series") + 1.5)
    if (startsWith(n, "figure_iecv_")) size <- forest_size(p)
    out[[n]] <- save_figure(p, file.path(out_dir, n), width = size[1], height = size[2], formats = formats)[1]
  }
  out
}

#' @rdname board_figure
#' @export
board_figures <- study_figures

board_pin_names <- function(board, pins = NULL) {
  if (!dir.exists(board)) abort_input("Board folder {.path {board}} does not exist.")
  have <- basename(list.dirs(board, recursive = FALSE))
  if (is.null(pins)) have else intersect(have, unlist(pins))
}

# Display names by id: the model_labels pin (model, label), the study's clinical
# labels, then the caller's, which win. Never paired by position.
study_labels <- function(board, cfg, labels) {
  out <- c(clinical = "Clinical model", nomogram = "Nomogram", deep_score = "Deep-learning score")
  if ("model_labels" %in% board_pin_names(board)) {
    ml <- read_pin(board, "model_labels")
    check_columns(ml, c("model", "label"), arg = "model_labels")
    out <- c(out, stats::setNames(as.character(ml$label), ml$model))
  }
  out <- c(out, unlist(cfg$cohort$clinical_labels), unlist(labels))
  out[!duplicated(names(out), fromLast = TRUE)]
}

# Figure 4: one line per CNN (`losses`: named by label, pins with iteration and loss).
loss_figure <- function(losses) {
  d <- do.call(rbind, lapply(names(losses), function(m) {
    l <- losses[[m]]
    check_columns(l, c("iteration", "loss"), arg = "loss_history")
    data.frame(model = m, iteration = l$iteration, loss = l$loss)
  }))
  d$model <- factor(d$model, levels = names(losses))
  ggplot2::ggplot(d, ggplot2::aes(.data$iteration, .data$loss, colour = .data$model)) +
    ggplot2::geom_line(linewidth = 0.4) +
    ggplot2::scale_colour_manual(values = srn_palette(length(losses)), name = NULL) +
    ggplot2::labs(x = "Iteration", y = "Training loss (cross-entropy)") +
    theme_srnomogram()
}

# Figure 5: each CNN's Grad-CAM maps (`maps`: named by label, read_npz() lists with
# case_id, image, cam) over its lesions, the map in jet at 40% over the grey image.
gradcam_figure <- function(maps) {
  jet <- grDevices::colorRampPalette(c("#00007F", "#0000FF", "#007FFF", "#00FFFF", "#7FFF7F", "#FFFF00",
                                       "#FF7F00", "#FF0000", "#7F0000"))(256)
  ncol <- max(vapply(maps, function(d) length(d$case_id), 1L))
  panels <- list()
  for (m in names(maps)) {
    d <- maps[[m]]
    for (i in seq_len(ncol)) {
      if (i > length(d$case_id)) {
        panels[[length(panels) + 1L]] <- patchwork::plot_spacer()
        next
      }
      img <- d$image[i, , ]
      rng <- range(img, finite = TRUE)
      g <- if (diff(rng) > 0) (img - rng[1]) / diff(rng) else img * 0
      cam <- pmin(pmax(d$cam[i, , ], 0), 1)
      heat <- grDevices::col2rgb(jet[1L + round(cam * 255)]) / 255
      rgb <- grDevices::rgb(0.6 * g + 0.4 * heat[1, ], 0.6 * g + 0.4 * heat[2, ], 0.6 * g + 0.4 * heat[3, ])
      ras <- grDevices::as.raster(matrix(rgb, nrow = nrow(img)))
      panels[[length(panels) + 1L]] <- ggplot2::ggplot() +
        ggplot2::annotation_raster(ras, 0, ncol(img), 0, nrow(img)) +
        ggplot2::coord_fixed(xlim = c(0, ncol(img)), ylim = c(0, nrow(img)), expand = FALSE) +
        ggplot2::labs(title = paste0(m, "\n", d$case_id[i])) +
        ggplot2::theme_void(base_size = 7)
    }
  }
  p <- patchwork::wrap_plots(panels, ncol = ncol, byrow = TRUE)
  attr(p, "srn_size") <- c(2.2 * ncol, 2.3 * length(maps))
  p
}

# The repeated splits: test AUC per model and seed (ring: chosen), the clinical
# model and the nomogram per seed; a bar at each mean.
repeated_splits_figure <- function(rows, labels) {
  check_columns(rows, c("seed", "model", "test_auc", "chosen", "clinical_test_auc", "nomogram_test_auc"), arg = "repeated_splits")
  per_seed <- rows[!duplicated(rows$seed), , drop = FALSE]
  models <- unique(rows$model)
  name <- function(m) if (m %in% names(labels)) labels[[m]] else m
  chosen <- as.logical(rows$chosen) %in% TRUE | toupper(as.character(rows$chosen)) == "TRUE"
  d <- rbind(
    data.frame(series = vapply(rows$model, name, ""), auc = rows$test_auc, chosen = chosen, image = TRUE),
    do.call(rbind, lapply(c("clinical", "nomogram"), function(m) {
      data.frame(series = name(m), auc = per_seed[[paste0(m, "_test_auc")]], chosen = FALSE, image = FALSE)
    })))
  levels <- c(vapply(models, name, ""), name("clinical"), name("nomogram"))
  d$series <- factor(d$series, levels = unique(levels))
  d$x <- as.integer(d$series) + withr::with_seed(0, stats::runif(nrow(d), -0.15, 0.15))
  means <- stats::aggregate(auc ~ series, d, mean)
  means$x <- as.integer(means$series)
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$x, .data$auc)) +
    ggplot2::geom_hline(yintercept = 0.5, linetype = "dotted", colour = "grey50") +
    ggplot2::geom_point(ggplot2::aes(colour = .data$image), size = 1.4, alpha = 0.75) +
    ggplot2::geom_point(data = d[d$chosen, , drop = FALSE], shape = 1, size = 3, colour = "black") +
    ggplot2::geom_segment(data = means, ggplot2::aes(x = .data$x - 0.3, xend = .data$x + 0.3, y = .data$auc, yend = .data$auc),
                          linewidth = 0.8) +
    ggplot2::scale_colour_manual(values = c(`TRUE` = "#0072B2", `FALSE` = "#D55E00"), guide = "none") +
    ggplot2::scale_x_continuous(breaks = seq_along(levels(d$series)), labels = levels(d$series)) +
    ggplot2::labs(x = NULL, y = "Test AUC",
                  title = paste0("Test AUC over ", length(unique(rows$seed)), " split seeds (ring: chosen model)")) +
    theme_srnomogram() +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 35, hjust = 1))
  attr(p, "srn_series") <- nlevels(d$series)
  p
}

roc_models_figure <- function(scores, models, labels, conf_level) {
  check_columns(scores, c("label", "split", models), arg = "scores")
  shown <- ifelse(models %in% names(labels), labels[models], models)
  d <- scores[scores$split %in% c("train", "test"), , drop = FALSE]
  d$split <- factor(c(train = "Training set", test = "Test set")[d$split], levels = c("Training set", "Test set"))
  p <- roc_plot(d, outcome = "label", scores = stats::setNames(models, shown), panel = "split", conf_level = conf_level)
  p & ggplot2::theme(legend.text = ggplot2::element_text(size = 6.5))
}

validation_figure <- function(predictions, calibration, calibration_summary, hosmer_lemeshow, decision_curves,
                              labels, conf_level, dca_bootstraps) {
  models <- c("clinical", "nomogram")
  shown <- stats::setNames(unname(labels[models]), models)
  sets <- c(train = "training set", test = "test set")
  row_of <- function(d, m, s) d[d$model == m & d$set == s, , drop = FALSE]
  panels <- list(roc = list(), cal = list(), dca = list())
  for (s in names(sets)) {
    part <- predictions[predictions$split == s, , drop = FALSE]
    panels$roc[[s]] <- roc_plot(part, outcome = "label", scores = stats::setNames(paste0("risk_", models), shown),
                                conf_level = conf_level) + ggplot2::labs(title = paste("ROC,", sets[[s]]))
    cals <- lapply(models, function(m) {
      calibration_from_table(row_of(calibration, m, s), row_of(calibration_summary, m, s),
                             row_of(hosmer_lemeshow, m, s), part[[paste0("risk_", m)]])
    })
    panels$cal[[s]] <- calibration_plot(stats::setNames(cals, shown), title = paste("Calibration,", sets[[s]]))
    dcs <- lapply(models, function(m) decision_curve_from_table(row_of(decision_curves, m, s), dca_bootstraps))
    panels$dca[[s]] <- dca_plot(stats::setNames(dcs, shown), cost_benefit_axis = FALSE) +
      ggplot2::labs(title = paste("Decision curves,", sets[[s]]), x = "Threshold probability")
  }
  patchwork::wrap_plots(c(panels$roc, panels$cal, panels$dca), ncol = 2, byrow = TRUE) +
    patchwork::plot_annotation(tag_levels = "A")
}

# A srnomogram_calibration rebuilt from the study's tables (one model, one set),
# so that calibration_plot() draws the board's numbers.
calibration_from_table <- function(tab, info, hl, predicted) {
  if (nrow(info) != 1L) abort_input("The calibration summary must have one row per model and set; got {nrow(info)}.")
  if (info$mode == "bootstrap") {
    return(structure(list(mode = "bootstrap", table = tab[, c("predicted", "apparent", "bias_corrected")],
                          B = as.integer(info$B), n = as.integer(info$n), mae = info$mae, predicted = predicted),
                     class = "srnomogram_calibration"))
  }
  # the study leaves the Hosmer-Lemeshow test out of small sets (NA): no HL in the subtitle then
  test <- if (nrow(hl) == 1L && !is.na(hl$statistic)) {
    structure(list(statistic = c(`X-squared` = hl$statistic), parameter = c(df = hl$df), p.value = hl$p_value,
                   method = "Hosmer-Lemeshow goodness-of-fit test"), class = "htest")
  }
  cols <- c("predicted", "observed", "smoothed", intersect(c("lower", "upper"), names(tab)))
  banded <- all(c("lower", "upper") %in% cols) && any(!is.na(tab$lower))
  if (!banded) cols <- cols[1:3]
  num <- function(v) if (is.null(v)) NA_real_ else v
  structure(list(mode = "external", table = tab[, cols], n = as.integer(info$n), mae = info$mae,
                 citl = num(info$citl), recalibration_intercept = num(info$recalibration_intercept), slope = info$slope,
                 hl = test, B = if (banded) as.integer(num(info$band_B)) else 0L,
                 conf_level = if (banded) num(info$band_conf_level) else NA_real_),
            class = "srnomogram_calibration")
}

# A srnomogram_decision_curve rebuilt from the study's decision_curves rows (one
# model, one set: the model's curve, "All" and "None", whose name a CSV round
# trip may turn into NA).
decision_curve_from_table <- function(d, bootstraps = NA) {
  curve <- d$curve
  curve[is.na(curve) | !nzchar(curve)] <- "None"
  d$model <- curve
  d$curve <- NULL
  d$label <- NULL # the model's display label (pinned beside its id): the plot's names give it
  model_name <- unique(curve[!curve %in% c("All", "None")])
  if (length(model_name) != 1L) abort_input("A decision-curve table must hold one model's curve; got {.val {model_name}}.")
  level <- if ("conf_level" %in% names(d)) unique(stats::na.omit(d$conf_level)) else numeric()
  structure(list(derived = d, conf_level = if (length(level) == 1L) level else NA_real_,
                 bootstraps = if (length(level) == 1L) bootstraps else 0L, policy = "opt-in",
                 model_name = model_name),
            class = "srnomogram_decision_curve")
}

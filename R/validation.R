#' Internal validation of a nomogram: Harrell's optimism-corrected bootstrap
#'
#' `rms::validate(fit, method = "boot", B = B)` on the nomogram's `lrm` fit
#' (kept with `x = TRUE, y = TRUE` by [fit_nomogram()]), run with the fit's
#' datadist and, when `seed` is a number, under that seed without changing the
#' caller's random number stream. Each bootstrap replicate refits the model on
#' a resample ("training") and evaluates it on the original data ("test"); the
#' mean difference is the optimism, subtracted from the apparent index
#' (`index.orig`) to give `index.corrected`.
#'
#' Beside rms's indexes (Somers' `Dxy`, Nagelkerke `R2`, calibration
#' `Intercept` and `Slope`, `Emax`, discrimination `D`, unreliability `U`,
#' quality `Q`, Brier score `B`, and the `g`/`gp` indexes) a row `AUC` gives
#' the concordance index \eqn{C = D_{xy}/2 + 1/2} (for a binary outcome the
#' ROC AUC of the fitted risks) in every column: apparent, training, test,
#' optimism (\eqn{D_{xy}} optimism / 2) and corrected.
#'
#' @param fit A `srnomogram_nomogram` from [fit_nomogram()].
#' @param B Bootstrap repetitions (a whole number >= 1).
#' @param seed Random seed of the bootstrap (a whole number), or `NULL` to draw
#'   from the current random number stream (set it with [set.seed()] for
#'   reproducible numbers). There is no default: say which.
#' @param cluster Optional patient of each row the fit used (one value per
#'   observation of `fit`, any type, no `NA`): the bootstrap then resamples
#'   patients, each drawn patient bringing all their rows (`rms`'s cluster
#'   bootstrap, `predab.resample(cluster = )`). `NULL` (default) resamples
#'   rows. With one distinct value per row the numbers equal those of
#'   `cluster = NULL` under the same seed.
#' @return An object of class `srnomogram_validation`: a list with `table` (a
#'   data frame, one row per index: `index`, `index.orig`, `training`, `test`,
#'   `optimism`, `index.corrected`, `n`, the successful replicates), `validate`
#'   (the `rms::validate` object), `B`, `seed`, `n_obs` (observations of the
#'   fit), `n_clusters` (patients resampled; `n_obs` without `cluster`) and
#'   `note` (rms's message about failed replicates, if any).
#'   `as.data.frame()` gives `table`; `summary()` the apparent and corrected
#'   AUC, calibration slope and Brier score, and `note`, in one row; `plot()` a ggplot of
#'   apparent against corrected indexes.
#' @references Harrell FE, Lee KL, Mark DB (1996). Multivariable prognostic
#'   models: issues in developing models, evaluating assumptions and adequacy,
#'   and measuring and reducing errors. Stat Med 15:361-387. Harrell FE (2015).
#'   Regression Modeling Strategies, 2nd ed., sections 5.3 and 10.9. Springer.
#' @seealso [plot.srnomogram_validation()]; [calibrate_nomogram()] for the bootstrap
#'   calibration curve.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' fit <- fit_nomogram(y ~ score + age, d)
#' v <- validate_nomogram(fit, B = 50, seed = 1)
#' v
#' summary(v)
#' as.data.frame(v)
#' @export
validate_nomogram <- function(fit, B = 1000, seed, cluster = NULL) {
  check_nomogram_fit(fit)
  B <- check_bootstraps(B)
  if (missing(seed)) abort_missing_seed("validate_nomogram", B)
  cluster <- check_cluster(cluster, length(fit$y))
  boot <- rms_bootstrap(rms::validate, fit, B, seed, cluster)
  v <- boot$value
  m <- unclass(v)
  tab <- data.frame(index = rownames(m), m[, c("index.orig", "training", "test", "optimism",
                                               "index.corrected", "n"), drop = FALSE],
                    check.names = FALSE, stringsAsFactors = FALSE, row.names = NULL)
  dxy <- tab[tab$index == "Dxy", ]
  auc <- data.frame(index = "AUC", index.orig = dxy$index.orig / 2 + 0.5,
                    training = dxy$training / 2 + 0.5, test = dxy$test / 2 + 0.5,
                    optimism = dxy$optimism / 2, index.corrected = dxy$index.corrected / 2 + 0.5,
                    n = dxy$n, check.names = FALSE)
  tab <- rbind(tab, auc)
  rownames(tab) <- NULL
  structure(list(table = tab, validate = v, B = B, seed = seed, n_obs = length(fit$y),
                 n_clusters = if (is.null(cluster)) length(fit$y) else max(cluster),
                 note = boot$note),
            class = "srnomogram_validation")
}

# rms::calibrate / rms::validate (method = "boot") of a fit with its datadist, under `seed` (the
# caller's stream untouched) or, for NULL, from the current stream; with `cluster` (integer codes
# from check_cluster()) rms's cluster bootstrap. rms reports failed bootstrap fits with cat(): that
# text is returned as `note`.
rms_bootstrap <- function(verb, fit, B, seed, cluster = NULL) {
  check_seed(seed, arg = "seed", call = rlang::caller_env())
  # predab.resample() tests missing(cluster): the argument must be absent, not NULL, to resample rows
  run <- if (is.null(cluster)) {
    function() with_datadist(fit$datadist, verb(strip_class(fit), method = "boot", B = B))
  } else {
    function() with_datadist(fit$datadist, verb(strip_class(fit), method = "boot", B = B, cluster = cluster))
  }
  note <- utils::capture.output(value <- if (is.null(seed)) run() else withr::with_seed(seed, run()))
  list(value = value, note = trimws(paste(note[nzchar(trimws(note))], collapse = " ")))
}

# The patients of a cluster bootstrap as integer codes in order of first appearance. rms draws
# sample(n_clusters) and takes split(1:n, cluster)[draw]; split() orders clusters by their sorted
# levels, so codes in row order make one-row-per-cluster draws the row draws of cluster = NULL.
check_cluster <- function(cluster, n, arg = rlang::caller_arg(cluster), call = rlang::caller_env()) {
  if (is.null(cluster)) return(NULL)
  if (is.factor(cluster)) cluster <- as.character(cluster)
  if (!is.atomic(cluster) || length(cluster) != n) {
    abort_input(c("{.arg {arg}} must give one patient per observation of the fit ({n}), not {length(cluster)} value{?s}.",
                  i = "Pass the patient ids of the rows the model was fitted on (rows with missing predictors are dropped)."),
                call = call)
  }
  if (anyNA(cluster)) {
    abort_input(c("{.arg {arg}} is missing for observation {which(is.na(cluster))[1]}.",
                  i = "Give every row a patient id (a lesion of its own patient: its case id)."), call = call)
  }
  match(cluster, unique(cluster))
}

abort_missing_seed <- function(fname, B, example_args = "fit", call = rlang::caller_env()) {
  abort_input(c("{.arg seed} must be given: a whole number, or {.code NULL} to use the current random number stream.",
                   i = "e.g. {.code {fname}({example_args}, B = {B}, seed = 2024)}."), call = call)
}

check_bootstraps <- function(B, arg = rlang::caller_arg(B), call = rlang::caller_env()) {
  if (!is.numeric(B) || length(B) != 1L || is.na(B) || B < 1 || B != round(B)) {
    abort_input("{.arg {arg}} must be a whole number >= 1, not {.val {format(B)}}.", call = call)
  }
  as.integer(B)
}

check_seed <- function(seed, arg = rlang::caller_arg(seed), call = rlang::caller_env()) {
  if (is.null(seed)) return(invisible(NULL))
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed != round(seed) ||
      abs(seed) > .Machine$integer.max) {
    abort_input("{.arg {arg}} must be a whole number or {.code NULL}, not {.val {format(seed)}}.", call = call)
  }
  invisible(seed)
}

#' @export
print.srnomogram_validation <- function(x, digits = 4, ...) {
  cat(sprintf("Internal validation (rms::validate, bootstrap B = %d, %s, n = %d%s)\n", x$B,
              if (is.null(x$seed)) "current RNG stream" else paste("seed", x$seed), x$n_obs,
              if (!is.null(x$n_clusters) && x$n_clusters != x$n_obs) sprintf(", %d patients resampled", x$n_clusters) else ""))
  if (nzchar(x$note)) cat(" ", x$note, "\n")
  tab <- x$table
  num <- vapply(tab, is.numeric, logical(1)) & names(tab) != "n"
  tab[num] <- lapply(tab[num], round, digits = digits)
  print(tab, row.names = FALSE)
  a <- x$table[x$table$index == "AUC", ]
  cat(sprintf("AUC: apparent %.3f, optimism %.3f, optimism-corrected %.3f\n",
              a$index.orig, a$optimism, a$index.corrected))
  invisible(x)
}

#' @export
summary.srnomogram_validation <- function(object, ...) {
  t <- object$table
  get <- function(i, col) t[[col]][t$index == i]
  data.frame(B = object$B, n = object$n_obs, successful = get("Dxy", "n"),
             auc_apparent = get("AUC", "index.orig"), auc_optimism = get("AUC", "optimism"),
             auc_corrected = get("AUC", "index.corrected"),
             slope_corrected = get("Slope", "index.corrected"),
             brier_apparent = get("B", "index.orig"), brier_corrected = get("B", "index.corrected"),
             note = object$note)
}

#' @export
as.data.frame.srnomogram_validation <- function(x, ...) x$table

#' Plot of an internal validation: apparent against optimism-corrected indexes
#'
#' One row per index, a point for the apparent value (`index.orig`) and one
#' for the optimism-corrected value, joined by a segment whose length is the
#' optimism.
#'
#' @param x A `srnomogram_validation` from [validate_nomogram()].
#' @param indexes Indexes to show (rows of `x$table`).
#' @param ... Unused.
#' @return A ggplot.
#' @examples
#' set.seed(1)
#' d <- data.frame(score = runif(120), age = round(rnorm(120, 50, 10)))
#' d$y <- rbinom(120, 1, plogis(-6 + 5 * d$score + 0.08 * d$age))
#' plot(validate_nomogram(fit_nomogram(y ~ score + age, d), B = 30, seed = 1))
#' @export
plot.srnomogram_validation <- function(x, indexes = c("AUC", "R2", "Slope", "Intercept", "Emax", "B"), ...) {
  bad <- setdiff(indexes, x$table$index)
  if (length(bad)) {
    abort_input("{.arg indexes} must be rows of the validation table ({.val {x$table$index}}), not {.val {bad}}.")
  }
  tab <- x$table[match(indexes, x$table$index), , drop = FALSE]
  tab$index <- factor(tab$index, levels = rev(indexes))
  long <- rbind(data.frame(index = tab$index, value = tab$index.orig, estimate = "Apparent"),
                data.frame(index = tab$index, value = tab$index.corrected, estimate = "Optimism-corrected"))
  ggplot2::ggplot(tab) +
    ggplot2::geom_segment(ggplot2::aes(x = .data$index.orig, xend = .data$index.corrected,
                                       y = .data$index, yend = .data$index), colour = "grey60") +
    ggplot2::geom_point(data = long, ggplot2::aes(.data$value, .data$index, colour = .data$estimate,
                                                  shape = .data$estimate), size = 2.2) +
    ggplot2::scale_colour_manual(values = c(Apparent = "#0072B2", `Optimism-corrected` = "#D55E00"), name = NULL) +
    ggplot2::scale_shape_manual(values = c(Apparent = 16, `Optimism-corrected` = 17), name = NULL) +
    ggplot2::labs(x = "Index value", y = NULL,
                  subtitle = sprintf("Bootstrap B = %d (rms::validate), n = %d", x$B, x$n_obs)) +
    theme_srnomogram() + ggplot2::theme(legend.position = "bottom")
}

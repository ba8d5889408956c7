#' Decision curve analysis (net benefit), equal to rmda
#'
#' Net benefit curves with bootstrap confidence intervals, computed as
#' `rmda::decision_curve()` (version 1.6) computes them and proven equal to it
#' (`$derived`, confidence bounds included, under the same [set.seed()]). rmda
#' cannot be installed here, so the computation is reimplemented, vectorised
#' over thresholds and bootstrap replicates while drawing the random numbers in
#' rmda's order. Where rmda is installed, `engine = "rmda"` calls it instead.
#'
#' A patient is *high risk* when their risk is strictly greater than the
#' threshold \eqn{t}. With prevalence \eqn{\rho} (the sample's, or
#' `population_prevalence` for a case-control design), the opt-in net benefit is
#' \eqn{TPR \rho - t/(1-t) (1-\rho) FPR}, standardised by \eqn{\rho}; the
#' opt-out net benefit is \eqn{TNR (1-\rho) - (1-t)/t \rho FNR}, standardised by
#' \eqn{1-\rho}. The reference curves "All" (risk 1) and "None" (risk 0) are
#' computed alongside.
#'
#' Bootstrap: all index vectors are drawn first (cohort: one
#' `sample.int(n, replace = TRUE)` per replicate; case-control: each outcome class
#' resampled within itself, the classes in order of first
#' appearance in `data`; with `cluster`, patients instead of rows, see below);
#' when `fitted_risk = FALSE` the
#' logistic model is refitted on every replicate. Each bound is the type-1
#' quantile of the replicate values at \eqn{(1-c)/2} and \eqn{1-(1-c)/2}
#' for `conf_level` \eqn{c}, ignoring `NA`.
#'
#' With `cluster` (the patient of each row) the bootstrap resamples patients:
#' cohort, one `sample.int(n_patients, replace = TRUE)` per replicate, each
#' drawn patient bringing all their rows; case-control, the patients of each
#' class (a patient's class being their largest outcome: a case if any row
#' is) resampled within the class, the classes in order of first appearance.
#' A replicate then holds as many patients as the data, and about as many
#' rows. Patients are numbered in order of first appearance, so one patient
#' per row gives the row bootstrap, and rmda's numbers, exactly.
#'
#' The function is three steps: the argument checks, the bootstrap indices
#' (every random number, drawn first), and the derived table.
#'
#' @param formula `outcome ~ predictors` (a formula or its text). With
#'   `fitted_risk = TRUE`, the right side is a single column of risks in \[0, 1\].
#' @param data A data frame holding the variables of `formula`. Incomplete rows
#'   are dropped with a warning giving their count.
#' @param fitted_risk `TRUE` when the right side already holds risks; `FALSE`
#'   (default) fits `glm(formula, binomial)` and uses its fitted risks.
#' @param thresholds High-risk thresholds in \[0, 1\].
#' @param conf_level Coverage of the bootstrap intervals (e.g. 0.95), or
#'   `NULL` (or `"none"`, rmda's word) for no intervals. Called
#'   `confidence_intervals` until 0.1.0; that name still works, with a warning
#'   of class `srnomogram_warning_deprecated`.
#' @param bootstraps Number of bootstrap replicates.
#' @param policy `"opt-in"` (treat the high-risk) or `"opt-out"`.
#' @param study_design `"cohort"` or `"case-control"`.
#' @param population_prevalence Outcome prevalence in the population, required
#'   for a case-control design.
#' @param cluster Optional patient id of each row of `data` (a vector as long
#'   as `nrow(data)`, no `NA`): the bootstrap intervals then resample patients,
#'   as they must when a patient has several lesions. `NULL` (default):
#'   rows, as rmda. Only with `engine = "srnomogram"`.
#' @param seed Random seed of the bootstrap (a whole number): the curves are
#'   then computed under `withr::with_seed(seed, ...)`, equal to rmda after
#'   `set.seed(seed)`, and the caller's random number stream is left as it was.
#'   `NULL` (default) draws from the current stream, as rmda does.
#' @param engine `"srnomogram"` (default) computes the curves here; this
#'   implementation is proven equal to `rmda::decision_curve()` 1.6 on the
#'   project's golden data (every column of `derived`, bootstrap bounds
#'   included, to 1e-10 under the same seed). `"rmda"` calls
#'   `rmda::decision_curve()` itself on the same checked, complete data (it must
#'   be installed: `install.packages("rmda")`; otherwise an error of class
#'   `srnomogram_error_engine`). Both return the same object, so `print()`,
#'   `plot()` and `summary()` work alike.
#' @param ... Only the deprecated `confidence_intervals`; any other argument is
#'   an error of class `srnomogram_error_input`.
#' @return An object of class `srnomogram_decision_curve`: a list with
#'   `derived` (a data frame with rmda's `derived.data` columns: `thresholds`,
#'   `FPR`, `FNR`, `TPR`, `TNR`, `NB`, `sNB`, `rho`, `prob.high.risk`,
#'   `prob.low.risk`, `DP`, `nonDP`, `model`, the `_lower`/`_upper` bounds, and
#'   `cost.benefit.ratio`), `conf_level` (`NA` without intervals),
#'   `bootstraps`, `policy`, `study_design`, `population_prevalence`,
#'   `seed`, `n`, `n_missing`, `n_clusters` (patients resampled; `n` without
#'   `cluster`), `model_name`, `call` and `engine`.
#' @references Vickers AJ, Elkin EB (2006). Decision curve analysis: a novel
#'   method for evaluating prediction models. Med Decis Making 26:565-574.
#'   Kerr KF, Brown MD, Zhu K, Janes H (2016). Assessing the clinical impact of
#'   risk prediction models with decision curves. J Clin Oncol 34:2534-2540
#'   (the rmda package).
#' @seealso [plot.srnomogram_decision_curve()], [summary.srnomogram_decision_curve()]
#' @examples
#' set.seed(1)
#' d <- data.frame(x = rnorm(150))
#' d$y <- rbinom(150, 1, plogis(d$x))
#' set.seed(1000)
#' dc <- decision_curve(y ~ x, d, bootstraps = 20)
#' dc
#' summary(dc, thresholds = c(0.1, 0.3, 0.5))
#' @export
decision_curve <- function(formula, data, fitted_risk = FALSE,
                           thresholds = seq(0, 1, by = 0.01),
                           conf_level = 0.95, bootstraps = 500,
                           policy = c("opt-in", "opt-out"),
                           study_design = c("cohort", "case-control"),
                           population_prevalence, seed = NULL,
                           engine = c("srnomogram", "rmda"), cluster = NULL, ...) {
  call <- match.call()
  conf_level <- renamed_argument(list(...), c(confidence_intervals = "conf_level"),
                                 "decision_curve", missing_value = conf_level)
  a <- dca_check_args(formula, data, fitted_risk, thresholds, conf_level, bootstraps, policy,
                      study_design, population_prevalence, seed, engine, cluster)
  seeded <- function(expr) if (is.null(seed)) expr else withr::with_seed(seed, expr)
  model_name <- Reduce(paste, deparse(a$formula))
  derived <- if (a$engine == "rmda") {
    seeded(rmda_derived(a$formula, a$data, a$outcome, fitted_risk, a$thresholds,
                        if (a$with_ci) a$conf_level else "none",
                        if (a$with_ci) a$bootstraps else 1L, a$policy, a$study_design, a$rho_fixed))
  } else {
    refit <- if (fitted_risk) NULL else dca_refit(a$formula, a$data, a$outcome, a$rho_fixed)
    risk <- if (fitted_risk) a$risk else refit(seq_len(a$n))
    boot_risk <- B_ind <- NULL
    if (a$with_ci) {
      # Every random number of the bootstrap is drawn here (the refits are deterministic).
      B_ind <- seeded(dca_bootstrap_indices(a$outcome, a$bootstraps, a$study_design, a$cluster))
      boot_risk <- if (fitted_risk) lapply(B_ind, function(i) risk[i]) else lapply(B_ind, refit)
    }
    dca_derived(a$outcome, stats::setNames(list(risk, rep(1, a$n), rep(0, a$n)), c(model_name, "All", "None")),
                a$thresholds, B_ind, boot_risk, a$conf_level, a$rho_fixed, a$policy)
  }
  structure(list(derived = derived,
                 conf_level = if (a$with_ci) a$conf_level else NA_real_,
                 bootstraps = if (a$with_ci) a$bootstraps else 0L,
                 policy = a$policy, study_design = a$study_design,
                 population_prevalence = a$rho_fixed, seed = seed,
                 n = a$n, n_missing = a$n_missing,
                 n_clusters = if (is.null(a$cluster)) a$n else max(a$cluster),
                 model_name = model_name, call = call,
                 engine = a$engine),
            class = "srnomogram_decision_curve")
}

# The checks of decision_curve(), once, at the boundary. Returns the checked
# arguments: the formula, the complete rows of its columns (`data`, `n`,
# `n_missing`), the 0/1 `outcome`, the given `risk` (fitted_risk = TRUE),
# `with_ci`, `conf_level`, `bootstraps` (an integer), `rho_fixed` (the
# population prevalence of a case-control design, else NULL) and `cluster`
# (integer patient codes of the complete rows in order of first appearance, or NULL).
dca_check_args <- function(formula, data, fitted_risk, thresholds, conf_level, bootstraps,
                           policy, study_design, population_prevalence, seed, engine,
                           cluster = NULL, call = rlang::caller_env()) {
  check_seed(seed, call = call)
  engine <- rlang::arg_match(engine, c("srnomogram", "rmda"), error_call = call)
  if (engine == "rmda") check_engine_installed("rmda", "decision_curve", call = call)
  policy <- rlang::arg_match(policy, c("opt-in", "opt-out"), error_call = call)
  study_design <- rlang::arg_match(study_design, c("cohort", "case-control"), error_call = call)
  formula <- as_two_sided_formula(formula, call = call)
  data <- check_data_frame(data, call = call)
  if (!is.logical(fitted_risk) || length(fitted_risk) != 1L || is.na(fitted_risk)) {
    abort_input("{.arg fitted_risk} must be TRUE or FALSE.", call = call)
  }
  check_numeric(thresholds, call = call)
  if (anyNA(thresholds) || any(thresholds < 0 | thresholds > 1)) {
    abort_input("{.arg thresholds} must lie in [0, 1].", call = call)
  }
  vars <- all.vars(formula)
  check_columns(data, vars, call = call)
  n_all <- nrow(data)
  if (!is.null(cluster)) {
    if (engine == "rmda") {
      abort_input(c("{.arg cluster} needs {.code engine = \"srnomogram\"}: rmda resamples rows only.",
                    i = "Drop {.arg engine} or {.arg cluster}."), call = call)
    }
    if (is.factor(cluster)) cluster <- as.character(cluster)
    if (!is.atomic(cluster) || length(cluster) != n_all) {
      abort_input("{.arg cluster} must give one patient per row of {.arg data} ({n_all}), not {length(cluster)} value{?s}.",
                  call = call)
    }
    if (anyNA(cluster)) {
      abort_input(c("{.arg cluster} is missing in row {which(is.na(cluster))[1]}.",
                    i = "Give every row a patient id (a lesion of its own patient: its case id)."), call = call)
    }
    cluster <- cluster[stats::complete.cases(data[, vars, drop = FALSE])]
    cluster <- match(cluster, unique(cluster))
  }
  data <- complete_rows(data[, vars, drop = FALSE], vars, call = call)
  n_missing <- n_all - nrow(data)
  outcome <- check_binary(data[[all.vars(formula[[2]])]], arg = "outcome", call = call)
  risk <- NULL
  if (fitted_risk) {
    if (length(all.vars(formula[[3]])) > 1L) {
      abort_input("With {.code fitted_risk = TRUE}, the right side of {.arg formula} must be one column of risks.",
                  call = call)
    }
    risk <- stats::model.frame(formula, data)[[2L]]
    check_probability(risk, arg = "fitted risk", call = call)
  }
  rho_fixed <- NULL
  if (study_design == "case-control") {
    if (missing(population_prevalence) || is.null(population_prevalence)) {
      abort_input("{.arg population_prevalence} is required when {.code study_design = \"case-control\"}.",
                  call = call)
    }
    if (!is.numeric(population_prevalence) || length(population_prevalence) != 1L ||
        is.na(population_prevalence) || population_prevalence <= 0 || population_prevalence >= 1) {
      abort_input("{.arg population_prevalence} must be a single number in (0, 1).", call = call)
    }
    rho_fixed <- population_prevalence
  }
  with_ci <- !is.null(conf_level) && !identical(conf_level, "none")
  if (with_ci) {
    if (!is.numeric(conf_level) || length(conf_level) != 1L || is.na(conf_level) ||
        conf_level <= 0 || conf_level >= 1) {
      abort_input("{.arg conf_level} must be a number in (0, 1), or {.code NULL} (or {.val none}) for no intervals.",
                  call = call)
    }
    if (!is.numeric(bootstraps) || length(bootstraps) != 1L || bootstraps < 1) {
      abort_input("{.arg bootstraps} must be a positive integer.", call = call)
    }
    bootstraps <- as.integer(bootstraps)
  }
  list(formula = formula, data = data, n = nrow(data), n_missing = n_missing, outcome = outcome,
       risk = risk, thresholds = thresholds, with_ci = with_ci,
       conf_level = if (with_ci) conf_level else NULL, bootstraps = bootstraps, policy = policy,
       study_design = study_design, rho_fixed = rho_fixed, engine = engine, cluster = cluster)
}

# The model's risks on the rows `idx`, refitted there (fitted_risk = FALSE):
# glm() on data[idx, ] equals glm.fit() on the design matrix's rows idx.
dca_refit <- function(formula, data, outcome, rho_fixed) {
  X <- stats::model.matrix(formula, data)
  function(idx) {
    fit <- suppressWarnings(stats::glm.fit(X[idx, , drop = FALSE], outcome[idx],
                                           family = stats::binomial()))
    if (is.null(rho_fixed)) return(fit$fitted.values)
    # Case-control sampling distorts the intercept only: shift the linear
    # predictor from the sample's odds of disease to the population's.
    stats::plogis(fit$linear.predictors + stats::qlogis(rho_fixed) -
                    stats::qlogis(mean(outcome[idx])))
  }
}

# The bootstrap row indices, a list of B integer vectors, drawn in rmda's order:
# cohort, one sample.int(n, replace = TRUE) per replicate; case-control, each
# outcome class resampled within itself, the classes in order of first
# appearance in the data. With `cluster` (integer codes 1..K in order of first
# appearance) the same draws are made over patients, each drawn patient giving
# all their rows; a patient's class is their largest outcome. One patient per
# row draws exactly the row indices of `cluster = NULL`.
dca_bootstrap_indices <- function(outcome, B, study_design, cluster = NULL) {
  if (is.null(cluster)) cluster <- seq_along(outcome)
  rows <- split(seq_along(outcome), factor(cluster, levels = seq_len(max(cluster))))
  k <- length(rows)
  draw <- if (study_design == "cohort") {
    function() sample.int(k, replace = TRUE)
  } else {
    unit_outcome <- vapply(rows, function(r) max(outcome[r]), numeric(1))
    strata <- lapply(unique(unit_outcome), function(v) which(unit_outcome == v))
    function() unlist(lapply(strata, function(s) s[sample.int(length(s), replace = TRUE)]))
  }
  lapply(seq_len(B), function(b) {
    units <- draw()
    unlist(rows[units], use.names = FALSE)
  })
}

# rmda's derived.data: the measures of each curve (the model, "All", "None") at
# every threshold, with the type-1 quantile bounds of the bootstrap replicates
# (`B_ind`, a list of replicate row indices, and the model's replicate risks
# `boot_risk`, a list alike; NULL for no intervals).
dca_derived <- function(outcome, risks, thresholds, B_ind, boot_risk, conf_level, rho_fixed, policy) {
  opt_in <- policy == "opt-in"
  measures <- c("FPR", "FNR", "TPR", "TNR", "NB", "sNB", "rho", "prob.high.risk",
                "prob.low.risk", "DP", "nonDP")
  blocks <- lapply(seq_along(risks), function(i) {
    est <- dca_measures(outcome, risks[[i]], thresholds, rho_fixed, opt_in)
    block <- data.frame(thresholds = thresholds, est, model = names(risks)[i],
                        check.names = FALSE, stringsAsFactors = FALSE)
    if (is.null(B_ind)) {
      for (m in measures) {
        block[[paste0(m, "_lower")]] <- NA_real_
        block[[paste0(m, "_upper")]] <- NA_real_
      }
      return(block)
    }
    B <- length(B_ind)
    # Thresholds x replicates, one matrix per measure.
    rep_vals <- lapply(measures, function(m) matrix(NA_real_, nrow = length(thresholds), ncol = B))
    names(rep_vals) <- measures
    for (b in seq_len(B)) {
      rb <- if (i == 1L) boot_risk[[b]] else risks[[i]][B_ind[[b]]]
      mb <- dca_measures(outcome[B_ind[[b]]], rb, thresholds, rho_fixed, opt_in)
      for (m in measures) rep_vals[[m]][, b] <- mb[[m]]
    }
    tail_prob <- 1 - conf_level
    for (m in measures) {
      q <- row_quantile_type1(rep_vals[[m]], c(tail_prob / 2, 1 - tail_prob / 2))
      block[[paste0(m, "_lower")]] <- q[, 1]
      block[[paste0(m, "_upper")]] <- q[, 2]
    }
    block
  })
  derived <- do.call(rbind, blocks)
  rownames(derived) <- NULL
  derived$cost.benefit.ratio <- cost_benefit_label(derived$thresholds, policy)
  derived
}

# rmda::decision_curve() on the data decision_curve() has already checked:
# complete rows, and the outcome recoded to 0/1 (rmda needs a numeric outcome).
rmda_derived <- function(formula, data, outcome, fitted_risk, thresholds,
                         conf_level, bootstraps, policy, study_design, rho_fixed) {
  data[[all.vars(formula[[2]])]] <- outcome
  # The default engine silences glm.fit()'s warnings in bootstrap refits (perfect
  # separation in a replicate); do the same here. Missing rows and the
  # prevalence were handled above, so rmda has nothing else to warn about.
  # rmda announces a case-control design with a message; it adds nothing here.
  res <- suppressWarnings(suppressMessages(
    if (is.null(rho_fixed)) {
      rmda::decision_curve(formula, data = data, policy = policy, fitted.risk = fitted_risk,
                           thresholds = thresholds, confidence.intervals = conf_level,
                           bootstraps = bootstraps, study.design = study_design)
    } else {
      rmda::decision_curve(formula, data = data, policy = policy, fitted.risk = fitted_risk,
                           thresholds = thresholds, confidence.intervals = conf_level,
                           bootstraps = bootstraps, study.design = study_design,
                           population.prevalence = rho_fixed)
    }))
  derived <- as.data.frame(res$derived.data, stringsAsFactors = FALSE)
  rownames(derived) <- NULL
  derived
}

# Classification measures at every threshold from sorted risks (high risk: risk > t).
dca_measures <- function(d, y, thresholds, rho_fixed, opt_in) {
  y1 <- sort(y[d == 1])
  y0 <- sort(y[d == 0])
  n1 <- length(y1)
  n0 <- length(y0)
  TPR <- (n1 - findInterval(thresholds, y1)) / n1
  FPR <- (n0 - findInterval(thresholds, y0)) / n0
  rho <- if (is.null(rho_fixed)) n1 / (n1 + n0) else rho_fixed
  # rmda counts a risk equal to the threshold as neither high nor low risk
  # in FNR/TNR (it uses strict inequalities on both sides).
  FNR <- findInterval(thresholds, y1, left.open = TRUE) / n1
  TNR <- findInterval(thresholds, y0, left.open = TRUE) / n0
  t <- thresholds
  if (opt_in) {
    NB <- TPR * rho - t / (1 - t) * (1 - rho) * FPR
    sNB <- NB / rho
  } else {
    NB <- TNR * (1 - rho) - (1 - t) / t * rho * FNR
    sNB <- NB / (1 - rho)
  }
  NB[is.nan(NB)] <- NA_real_
  sNB[is.nan(sNB)] <- NA_real_
  high <- rho * TPR + (1 - rho) * FPR
  list(FPR = FPR, FNR = FNR, TPR = TPR, TNR = TNR, NB = NB, sNB = sNB,
       rho = rep(rho, length(t)), prob.high.risk = high, prob.low.risk = 1 - high,
       DP = rho * TPR, nonDP = (1 - rho) * (1 - FPR))
}

# quantile(x, p, type = 1, na.rm = TRUE) for every row of a matrix, without a
# per-row call: the sample quantile is the k-th order statistic, k = ceiling(n p)
# computed as R does (floor(n p) plus one when n p exceeds it).
row_quantile_type1 <- function(M, probs) {
  nr <- nrow(M)
  nc <- ncol(M)
  o <- order(row(M), M, na.last = TRUE)
  S <- matrix(M[o], nrow = nr, ncol = nc, byrow = TRUE)
  n_ok <- rowSums(!is.na(M))
  out <- vapply(probs, function(p) {
    nppm <- n_ok * p
    j <- floor(nppm)
    k <- j + (nppm > j)
    k <- pmin(pmax(k, 1), pmax(n_ok, 1))
    q <- S[cbind(seq_len(nr), k)]
    q[n_ok == 0] <- NA_real_
    q
  }, numeric(nr))
  matrix(out, nrow = nr)
}

# rmda labels each threshold with its cost:benefit ratio from MASS::fractions().
cost_benefit_label <- function(t, policy) {
  r <- t / (1 - t)  # rmda labels both policies with t:(1-t)
  lab <- as.character(MASS::fractions(r))
  no_slash <- !grepl("/", lab)
  lab[no_slash] <- paste0(lab[no_slash], "/1")
  gsub("/", ":", lab)
}

#' @export
print.srnomogram_decision_curve <- function(x, ...) {
  ci <- if (!is.na(x$conf_level)) {
    sprintf("%g%% bootstrap CI (%d replicates)", 100 * x$conf_level, x$bootstraps)
  } else "no confidence intervals"
  cat("Decision curve:", x$model_name, "\n")
  cat(sprintf("  %s policy, %s design, n = %d%s, %s\n", x$policy, x$study_design, x$n,
              if (x$n_missing) sprintf(" (%d incomplete rows dropped)", x$n_missing) else "",
              ci))
  s <- summary(x, thresholds = c(0.1, 0.2, 0.3, 0.4, 0.5))
  print(s, row.names = FALSE)
  invisible(x)
}

#' Net benefit at chosen thresholds
#'
#' @param object A `srnomogram_decision_curve`.
#' @param thresholds Thresholds at which to tabulate (they are matched to the
#'   computed thresholds to within 1e-8).
#' @param measure Column of `$derived` to tabulate (default `"NB"`).
#' @param ... Unused.
#' @return A data frame with one row per threshold and model: `threshold`,
#'   `model`, the measure, and its lower/upper bounds when computed.
#' @export
summary.srnomogram_decision_curve <- function(object, thresholds = seq(0.1, 0.9, 0.1),
                                              measure = "NB", ...) {
  d <- object$derived
  if (!measure %in% names(d)) abort_input("{.arg measure} must be a column of {.code $derived}, not {.val {measure}}.")
  keep <- vapply(d$thresholds, function(t) any(abs(t - thresholds) < 1e-8), logical(1))
  d <- d[keep, , drop = FALSE]
  out <- data.frame(threshold = d$thresholds, model = d$model, d[[measure]],
                    d[[paste0(measure, "_lower")]], d[[paste0(measure, "_upper")]],
                    cost_benefit = d$cost.benefit.ratio, stringsAsFactors = FALSE)
  names(out)[3:5] <- c(measure, paste0(measure, "_lower"), paste0(measure, "_upper"))
  out <- out[order(out$threshold, match(out$model, unique(d$model))), , drop = FALSE]
  rownames(out) <- NULL
  out
}

#' @export
as.data.frame.srnomogram_decision_curve <- function(x, ...) x$derived

#' Paired difference of net benefit between two models
#'
#' How much more net benefit does `risk1` give than `risk2` on the same
#' patients? At each threshold \eqn{t}, the opt-in net benefit of a model is
#' \eqn{NB(t) = TP/n - FP/n \cdot t/(1-t)}, a patient being high risk when their
#' risk is strictly greater than \eqn{t} (as [decision_curve()]); the estimate is
#' \eqn{NB_1(t) - NB_2(t)}, and its summary the mean difference over
#' `thresholds` (a pre-specified range of clinically sensible thresholds).
#' Confidence intervals come from a paired percentile bootstrap: each of the
#' `B` resamples draws rows (or whole clusters, e.g. patients, with `cluster`)
#' and recomputes both models' net benefit on the same resample, so the
#' interval reflects the correlation of the two models.
#'
#' @param y Binary outcome (0/1).
#' @param risk1,risk2 Predicted risks of the two models in \[0, 1\] (e.g. the
#'   nomogram and the clinical model), one per row of `y`.
#' @param thresholds Risk thresholds in (0, 1).
#' @param B Bootstrap resamples (a whole number >= 1), or 0 for no intervals.
#' @param seed Seed of the bootstrap (a whole number; the caller's random
#'   stream is left alone), or `NULL` for the current stream. Required when
#'   `B > 0`; there is no default seed.
#' @param cluster Optional cluster id per row: resample clusters (patients)
#'   instead of rows.
#' @param conf_level Confidence level.
#' @return An object of class `srnomogram_nb_difference`: `table` (one row per
#'   threshold: `threshold`, `nb1`, `nb2`, `difference`, `lower`, `upper`),
#'   `summary` (one row: `estimate` (the mean difference over `thresholds`),
#'   `lower`, `upper`, `threshold_from`, `threshold_to`, `n_thresholds`), `B`,
#'   `seed`, `conf_level`, `n`, `n_clusters`. `as.data.frame()` gives `table`,
#'   `summary()` the summary row, `plot()` a ggplot of the difference with its band.
#' @references Vickers AJ, Elkin EB (2006). Decision curve analysis. Med Decis
#'   Making 26:565-574. Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008).
#'   Extensions to decision curve analysis. BMC Med Inform Decis Mak 8:53
#'   (bootstrap intervals for the difference in net benefit).
#' @examples
#' set.seed(5)
#' x <- rnorm(200)
#' y <- rbinom(200, 1, plogis(-1 + 1.5 * x))
#' r1 <- plogis(-1 + 1.5 * x)
#' r2 <- plogis(-1 + 0.5 * x)
#' nbd <- net_benefit_difference(y, r1, r2, thresholds = seq(0.05, 0.5, 0.05), B = 200, seed = 1)
#' nbd
#' summary(nbd)
#' @export
net_benefit_difference <- function(y, risk1, risk2, thresholds, B = 1000, seed, cluster = NULL,
                                   conf_level = 0.95) {
  check_conf_level(conf_level)
  if (!is.numeric(thresholds) || !length(thresholds) || anyNA(thresholds) || any(thresholds <= 0 | thresholds >= 1)) {
    abort_input("{.arg thresholds} must be numbers in (0, 1), not {.val {utils::head(thresholds, 5)}}.")
  }
  boot <- !identical(B, 0) && !identical(B, 0L)
  if (boot) {
    B <- check_bootstraps(B)
    if (missing(seed)) abort_missing_seed("net_benefit_difference", B, example_args = "y, risk1, risk2, thresholds")
    check_seed(seed)
  } else {
    seed <- if (missing(seed)) NULL else seed
  }
  check_same_length(y, risk1, "y", "risk1")
  check_same_length(y, risk2, "y", "risk2")
  if (!is.null(cluster)) check_same_length(y, cluster, "y", "cluster")
  y <- check_binary(y, arg = "y")
  check_probability(risk1, arg = "risk1")
  check_probability(risk2, arg = "risk2")
  keep <- !(is.na(y) | is.na(risk1) | is.na(risk2) | (if (is.null(cluster)) FALSE else is.na(cluster)))
  if (any(!keep)) {
    warn_classed("{sum(!keep)} row{?s} with a missing outcome, risk or cluster {?was/were} dropped.", "missing")
  }
  y <- y[keep]
  risk1 <- risk1[keep]
  risk2 <- risk2[keep]
  if (!is.null(cluster)) cluster <- cluster[keep]
  thresholds <- sort(unique(thresholds))
  w <- thresholds / (1 - thresholds)
  # net benefit of each model at every threshold for the rows `i` (repeats allowed)
  nb <- function(r, i) {
    high <- outer(r[i], thresholds, `>`)
    n <- length(i)
    colSums(high & y[i] == 1) / n - colSums(high & y[i] == 0) / n * w
  }
  all_rows <- seq_along(y)
  nb1 <- nb(risk1, all_rows)
  nb2 <- nb(risk2, all_rows)
  diff <- nb1 - nb2
  q <- c((1 - conf_level) / 2, 1 - (1 - conf_level) / 2)
  lower <- upper <- rep(NA_real_, length(thresholds))
  mean_ci <- c(NA_real_, NA_real_)
  ids <- if (is.null(cluster)) all_rows else unique(cluster)
  if (boot) {
    rows <- if (!is.null(cluster)) split(all_rows, factor(cluster, levels = ids))
    one <- function() {
      i <- if (is.null(cluster)) sample.int(length(y), replace = TRUE) else
        unlist(rows[sample.int(length(ids), replace = TRUE)], use.names = FALSE)
      nb(risk1, i) - nb(risk2, i)  # the same resample for both models: paired
    }
    run <- function() matrix(vapply(seq_len(B), function(b) one(), numeric(length(thresholds))), nrow = length(thresholds))
    d <- if (is.null(seed)) run() else withr::with_seed(seed, run())
    lim <- apply(d, 1, stats::quantile, probs = q, names = FALSE)
    lower <- lim[1, ]
    upper <- lim[2, ]
    mean_ci <- stats::quantile(colMeans(d), q, names = FALSE)
  }
  structure(list(
    table = data.frame(threshold = thresholds, nb1 = nb1, nb2 = nb2, difference = diff, lower = lower, upper = upper),
    summary = data.frame(estimate = mean(diff), lower = mean_ci[1], upper = mean_ci[2],
                         threshold_from = min(thresholds), threshold_to = max(thresholds),
                         n_thresholds = length(thresholds)),
    B = if (boot) B else 0L, seed = seed, conf_level = conf_level, n = length(y), n_clusters = length(ids)),
    class = "srnomogram_nb_difference")
}

#' @export
print.srnomogram_nb_difference <- function(x, ...) {
  s <- x$summary
  cat(sprintf("Difference in net benefit (model 1 - model 2), n = %d (%d resampling units)\n", x$n, x$n_clusters))
  cat(sprintf("  mean over %d thresholds %.3g-%.3g: %.4f", s$n_thresholds, s$threshold_from, s$threshold_to, s$estimate))
  if (x$B > 0) cat(sprintf(" (%g%% paired bootstrap CI %.4f to %.4f, B = %d)", 100 * x$conf_level, s$lower, s$upper, x$B))
  cat("\n")
  invisible(x)
}

#' @export
summary.srnomogram_nb_difference <- function(object, ...) object$summary

#' @export
as.data.frame.srnomogram_nb_difference <- function(x, ...) x$table

#' @export
plot.srnomogram_nb_difference <- function(x, ...) {
  d <- x$table
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$threshold, .data$difference)) +
    ggplot2::geom_hline(yintercept = 0, colour = "grey50", linetype = "dashed")
  if (x$B > 0) p <- p + ggplot2::geom_ribbon(ggplot2::aes(ymin = .data$lower, ymax = .data$upper), alpha = 0.2)
  p + ggplot2::geom_line() +
    ggplot2::labs(x = "Threshold probability", y = "Difference in net benefit") +
    theme_srnomogram()
}

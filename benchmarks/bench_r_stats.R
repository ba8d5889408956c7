#!/usr/bin/env Rscript
# Times the R statistics the paper needs for one cohort of n = 266:
#   calibrate_nomogram(B = 1000)  (rms::calibrate, bootstrap)
#   decision_curve(..., bootstraps = 500)  (rmda-equal decision curve with a refitted glm)
# Target: under 10 s together on the 2-core dev box.
# Baseline for the decision curve: an rmda-1.6-style computation (glm() with a formula on
# every bootstrap data frame, sapply over thresholds, apply(quantile) per measure), which
# is also checked to give the same numbers.
#
# Usage (from the repository root): Rscript benchmarks/bench_r_stats.R [reps]

args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args)) as.integer(args[1]) else 3L
root <- normalizePath(".")
if (requireNamespace("pkgload", quietly = TRUE) && file.exists(file.path(root, "DESCRIPTION"))) {
  pkgload::load_all(root, quiet = TRUE)
} else {
  library(srnomogram)
}
d <- utils::read.csv(file.path(root, "tests", "testthat", "fixtures", "input_paper_train.csv"))
stopifnot(nrow(d) == 266)

# Median elapsed and CPU (user + system) seconds; on a shared box the CPU time shows the
# cost without the wait for other processes.
cpu <- list()
time_it <- function(expr_fun) {
  st <- lapply(seq_len(reps), function(i) system.time(expr_fun()))
  cpu[[length(cpu) + 1L]] <<- stats::median(vapply(st, function(s) s[["user.self"]] + s[["sys.self"]], numeric(1)))
  stats::median(vapply(st, function(s) s[["elapsed"]], numeric(1)))
}

fit <- fit_nomogram(y ~ score + age + size, d)
t_cal <- time_it(function() calibrate_nomogram(fit, B = 1000, seed = 1))
t_dca <- time_it(function() { set.seed(1000); decision_curve(y ~ score + age + size, d, bootstraps = 500) })

# rmda-1.6-style baseline (the model row only, which is where all the work is).
rmda_style <- function(formula, data, thresholds = seq(0, 1, by = 0.01), B = 500, alpha = 0.05) {
  y <- data$y
  B_ind <- matrix(nrow = nrow(data), ncol = B)
  for (b in 1:B) B_ind[, b] <- sample.int(nrow(data), replace = TRUE)
  nb <- function(dd) {
    p <- stats::fitted(stats::glm(formula, family = stats::binomial(), data = dd))
    d <- dd$y
    rho <- mean(d == 1)
    TPR <- sapply(thresholds, function(t) mean(p[d == 1] > t))
    FPR <- sapply(thresholds, function(t) mean(p[d == 0] > t))
    data.frame(thresholds = thresholds, NB = TPR * rho - thresholds / (1 - thresholds) * (1 - rho) * FPR)
  }
  est <- nb(data)
  boot <- apply(B_ind, 2, function(x) suppressWarnings(nb(data[x, ])))
  tmp <- sapply(boot, function(xx) xx[, "NB"])
  est$NB_lower <- apply(tmp, 1, stats::quantile, probs = alpha / 2, type = 1, na.rm = TRUE)
  est$NB_upper <- apply(tmp, 1, stats::quantile, probs = 1 - alpha / 2, type = 1, na.rm = TRUE)
  est
}
t_base <- time_it(function() { set.seed(1000); rmda_style(y ~ score + age + size, d) })
set.seed(1000); ours <- decision_curve(y ~ score + age + size, d, bootstraps = 500)$derived
set.seed(1000); base <- rmda_style(y ~ score + age + size, d)
m <- ours[ours$model == "y ~ score + age + size", ]
ok <- isTRUE(all.equal(m$NB_lower, base$NB_lower, tolerance = 1e-10)) &&
  isTRUE(all.equal(m$NB_upper, base$NB_upper, tolerance = 1e-10))

cat(sprintf("machine: %s, R %s, %d cores visible; median of %d runs\n",
            Sys.info()[["nodename"]], getRversion(), parallel::detectCores(), reps))
cat(sprintf("load average: %s\n", tryCatch(paste(scan("/proc/loadavg", what = "", n = 3, quiet = TRUE), collapse = " "),
                                            error = function(e) "n/a")))
cat(sprintf("calibrate_nomogram(B = 1000), n = 266:            %6.2f s elapsed, %6.2f s CPU\n", t_cal, cpu[[1]]))
cat(sprintf("decision_curve(bootstraps = 500), n = 266:        %6.2f s elapsed, %6.2f s CPU\n", t_dca, cpu[[2]]))
cat(sprintf("total:                                             %6.2f s elapsed, %6.2f s CPU (target < 10 s) %s\n",
            t_cal + t_dca, cpu[[1]] + cpu[[2]], if (t_cal + t_dca < 10) "OK" else "OVER"))
cat(sprintf("baseline rmda-1.6-style decision curve (model only): %6.2f s elapsed, %6.2f s CPU; speed-up %.1fx (CPU); same bounds: %s\n",
            t_base, cpu[[3]], cpu[[3]] / cpu[[2]], ok))

make_ext <- function(n = 160, seed = 11) {
  set.seed(seed)
  p <- runif(n, 0.02, 0.98)
  y <- rbinom(n, 1, plogis(0.4 + 0.8 * qlogis(p)))
  list(y = y, p = p)
}

test_that("external_validation equals rms::val.prob, pROC and glm on the same risks", {
  d <- make_ext()
  ev <- external_validation(d$y, d$p, threshold = 0.4, g = 10)
  s <- ev$summary
  vp <- rms::val.prob(d$p, d$y, pl = FALSE)
  expect_equal(s$brier, unname(vp["Brier"]), tolerance = 1e-12)
  expect_equal(s$c_index, unname(vp["C (ROC)"]), tolerance = 1e-12)
  expect_equal(s$emax, unname(vp["Emax"]), tolerance = 1e-12)
  expect_equal(s$spiegelhalter_z, unname(vp["S:z"]), tolerance = 1e-12)
  expect_equal(s$slope, unname(vp["Slope"]), tolerance = 1e-6)
  expect_equal(s$recalibration_intercept, unname(vp["Intercept"]), tolerance = 1e-6)
  r <- pROC::roc(d$y, d$p, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci <- pROC::ci.auc(r, method = "delong")
  expect_equal(c(s$auc, s$auc_lower, s$auc_upper), c(ci[2], ci[1], ci[3]), tolerance = 1e-12)
  # calibration-in-the-large: intercept with the logit as offset; its Wald CI
  lp <- qlogis(d$p)
  f <- glm(d$y ~ 1 + offset(lp), family = binomial())
  se <- sqrt(vcov(f)[1, 1])
  expect_equal(c(s$citl, s$citl_lower, s$citl_upper),
               unname(coef(f)[1] + c(0, -1, 1) * qnorm(0.975) * se), tolerance = 1e-10)
  h <- hl_test(d$y, d$p, g = 10)
  expect_equal(s$hl_statistic, unname(h$statistic), tolerance = 1e-12)
  pos <- d$p >= 0.4
  expect_equal(ev$classification$sensitivity, sum(pos & d$y == 1) / sum(d$y == 1))
  expect_equal(ev$classification$specificity, sum(!pos & d$y == 0) / sum(d$y == 0))
  expect_equal(s$n_events, sum(d$y))
  expect_s3_class(ev, "srnomogram_external")
  expect_output(print(ev), "External validation")
})

test_that("risks of exactly 0 or 1 are clipped for calibration only, and counted", {
  d <- make_ext(seed = 2)
  d$p[1:3] <- c(0, 1, 1)
  ev <- external_validation(d$y, d$p)
  expect_equal(ev$summary$n_clipped, 3)
  expect_equal(ev$summary$auc, as.numeric(pROC::auc(pROC::roc(d$y, d$p, levels = c(0, 1), direction = "<", quiet = TRUE))))
  expect_true(is.finite(ev$summary$slope))
})

test_that("cluster bootstrap CIs resample clusters and leave the caller's seed alone", {
  d <- make_ext(n = 120, seed = 5)
  cl <- rep(seq_len(60), each = 2)
  set.seed(99)
  before <- runif(1)
  set.seed(99)
  a <- external_validation(d$y, d$p, cluster = cl, B = 200, seed = 1)
  after <- runif(1)
  expect_equal(before, after)
  b <- external_validation(d$y, d$p, cluster = cl, B = 200, seed = 1)
  expect_identical(a$summary, b$summary)
  expect_match(a$summary$ci_method, "60 clusters")
  expect_lt(a$summary$auc_lower, a$summary$auc)
  expect_gt(a$summary$auc_upper, a$summary$auc)
  # the point estimates do not depend on the clustering
  expect_equal(a$summary$auc, external_validation(d$y, d$p)$summary$auc)
})

test_that("recalibrate_risk refits intercept and slope on the logit", {
  d <- make_ext(seed = 8)
  r <- recalibrate_risk(d$y, d$p)
  f <- glm(d$y ~ qlogis(d$p), family = binomial())
  expect_equal(c(r$intercept, r$slope), unname(coef(f)), tolerance = 1e-10)
  expect_equal(r$score, unname(fitted(f)), tolerance = 1e-10)
  ev <- external_validation(d$y, r$score)
  expect_equal(ev$summary$citl, 0, tolerance = 1e-6)
  expect_equal(ev$summary$slope, 1, tolerance = 1e-6)
})

test_that("recalibrate_risk says a score without spread cannot be recalibrated", {
  set.seed(10)
  y <- rbinom(40, 1, 0.4)
  p <- 0.4434667 + runif(40) * 1e-8  # a CNN collapsed to one output
  expect_warning(r <- recalibrate_risk(y, p), class = "srnomogram_warning_no_spread")
  expect_true(is.na(r$intercept) && is.na(r$slope))
  expect_equal(r$score, rep(NA_real_, 40))
  # a small but real spread is still recalibrated, as glm() does it
  q <- 0.4 + (seq_len(40) - 20) * 1e-4
  f <- glm(y ~ qlogis(q), family = binomial())
  expect_equal(recalibrate_risk(y, q)$slope, unname(coef(f))[2], tolerance = 1e-10)
})

test_that("risks without spread keep AUC and Brier, and say why val.prob is missing", {
  set.seed(9)
  y <- rbinom(40, 1, 0.4)
  p <- rep(0.3, 40)
  ev <- external_validation(y, p, threshold = 0.2)
  expect_equal(ev$summary$auc, 0.5)
  expect_equal(ev$summary$brier, mean((p - y)^2))
  expect_match(ev$summary$note, "val.prob failed")
  expect_true(is.na(ev$summary$slope))
  expect_equal(ev$classification$sensitivity, 1)
})

test_that("the cluster bootstrap has no default seed, and prob is the deprecated name of score", {
  d <- make_ext(n = 60, seed = 6)
  expect_error(external_validation(d$y, d$p, cluster = rep(1:30, 2), B = 20),
               class = "srnomogram_error_input", regexp = "seed. must be given")
  expect_warning(old <- external_validation(d$y, prob = d$p), class = "srnomogram_warning_deprecated")
  expect_identical(old$summary, external_validation(d$y, d$p)$summary)
  expect_warning(r <- recalibrate_risk(d$y, prob = d$p), class = "srnomogram_warning_deprecated")
  expect_identical(r, recalibrate_risk(d$y, d$p))
})

# The statistics of one bootstrap replicate, computed independently of cluster_bootstrap():
# pROC's AUC, glm() for calibration-in-the-large and slope, and the 2x2 table at the threshold.
replicate_stats <- function(y, p, threshold) {
  if (length(unique(y)) < 2) return(rep(NA_real_, 9))
  lp <- qlogis(p)
  pos <- p >= threshold
  tp <- sum(pos & y == 1); fp <- sum(pos & y == 0); tn <- sum(!pos & y == 0); fn <- sum(!pos & y == 1)
  c(auc = as.numeric(pROC::auc(pROC::roc(y, p, levels = c(0, 1), direction = "<", quiet = TRUE))),
    citl = unname(coef(suppressWarnings(glm(y ~ 1 + offset(lp), family = binomial())))[1]),
    slope = unname(coef(suppressWarnings(glm(y ~ lp, family = binomial())))[2]),
    brier = mean((p - y)^2), accuracy = (tp + tn) / length(y), sensitivity = tp / (tp + fn),
    specificity = tn / (tn + fp), ppv = if (tp + fp) tp / (tp + fp) else NA, npv = if (tn + fn) tn / (tn + fn) else NA)
}

test_that("with one row per cluster the bootstrap CIs are those of a row bootstrap computed by hand", {
  d <- make_ext(n = 70, seed = 12)
  ev <- external_validation(d$y, d$p, threshold = 0.45, cluster = seq_along(d$y), B = 150, seed = 4)
  reps <- withr::with_seed(4, t(vapply(1:150, function(b) {
    i <- sample.int(length(d$y), replace = TRUE)
    replicate_stats(d$y[i], d$p[i], 0.45)
  }, numeric(9))))
  ci <- function(k) unname(quantile(reps[, k], c(0.025, 0.975), na.rm = TRUE))
  s <- ev$summary
  cls <- ev$classification
  expect_equal(c(s$auc_lower, s$auc_upper), ci("auc"), tolerance = 1e-12)
  expect_equal(c(s$citl_lower, s$citl_upper), ci("citl"), tolerance = 1e-8)
  expect_equal(c(s$slope_lower, s$slope_upper), ci("slope"), tolerance = 1e-8)
  expect_equal(c(s$brier_lower, s$brier_upper), ci("brier"), tolerance = 1e-12)
  for (k in c("accuracy", "sensitivity", "specificity", "ppv", "npv")) {
    expect_equal(c(cls[[paste0(k, "_lower")]], cls[[paste0(k, "_upper")]]), ci(k), tolerance = 1e-12, label = k)
  }
  expect_match(cls$ci_method, "percentile bootstrap over 70 clusters")
  # the point estimates stay those of the whole cohort
  plain <- external_validation(d$y, d$p, threshold = 0.45)
  expect_equal(cls[c("sensitivity", "ppv", "tp", "fn")], plain$classification[c("sensitivity", "ppv", "tp", "fn")])
  expect_equal(s$brier, plain$summary$brier)
})

test_that("lesions doubled under their patient get the CIs of the undoubled cohort; a row bootstrap would narrow them", {
  d <- make_ext(n = 80, seed = 13)
  n <- length(d$y)
  twin <- rep(seq_len(n), each = 2)
  one <- external_validation(d$y, d$p, threshold = 0.5, cluster = seq_len(n), B = 200, seed = 9)
  two <- external_validation(d$y[twin], d$p[twin], threshold = 0.5, cluster = twin, B = 200, seed = 9)
  cols <- c("auc", "auc_lower", "auc_upper", "citl", "citl_lower", "citl_upper", "slope", "slope_lower",
            "slope_upper", "brier", "brier_lower", "brier_upper")
  expect_equal(two$summary[cols], one$summary[cols], tolerance = 1e-8)
  k <- c("sensitivity", "sensitivity_lower", "sensitivity_upper", "specificity_lower", "specificity_upper",
         "ppv_lower", "ppv_upper", "npv_lower", "npv_upper", "accuracy_lower", "accuracy_upper")
  expect_equal(two$classification[k], one$classification[k], tolerance = 1e-12)
  expect_match(two$summary$ci_method, "over 80 clusters")
  # treating the twins as independent patients (Wilson, DeLong) narrows every interval
  naive <- external_validation(d$y[twin], d$p[twin], threshold = 0.5)
  width <- function(x, k) x[[paste0(k, "_upper")]] - x[[paste0(k, "_lower")]]
  expect_lt(width(naive$classification, "sensitivity"), 0.8 * width(two$classification, "sensitivity"))
  expect_lt(width(naive$summary, "auc"), 0.8 * width(two$summary, "auc"))
})

test_that("without clusters the threshold metrics carry Wilson CIs and Brier none", {
  d <- make_ext(n = 90, seed = 14)
  ev <- external_validation(d$y, d$p, threshold = 0.4, conf_level = 0.9)
  cm <- classification_metrics(d$y, d$p, threshold = 0.4, conf_level = 0.9)
  expect_equal(ev$classification[names(cm)], cm)
  expect_equal(ev$classification$ci_method, "Wilson score")
  expect_true(is.na(ev$summary$brier_lower) && is.na(ev$summary$brier_upper))
  expect_identical(names(as.data.frame(external_validation(d$y, d$p), what = "classification")), names(ev$classification))
})

test_that("calibration_B gives the lowess curve the band of external_calibration() and leaves every other number alone", {
  d <- make_ext(n = 120, seed = 5)
  cl <- rep(seq_len(60), each = 2)
  plain <- external_validation(d$y, d$p, threshold = 0.4, cluster = cl, B = 100, seed = 3)
  banded <- external_validation(d$y, d$p, threshold = 0.4, cluster = cl, B = 100, seed = 3, calibration_B = 50)
  ref <- external_calibration(d$y, d$p, B = 50, seed = 3, cluster = cl)
  expect_equal(banded$calibration$table, ref$table, tolerance = 1e-15)
  expect_true(all(c("lower", "upper") %in% names(banded$calibration$table)))
  expect_identical(banded$summary, plain$summary)
  expect_identical(banded$classification, plain$classification)
  expect_identical(banded$calibration$table[1:3], plain$calibration$table)
  expect_error(external_validation(d$y, d$p, calibration_B = 50), class = "srnomogram_error_input")
})

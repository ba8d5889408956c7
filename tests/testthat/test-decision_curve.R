golden_dca <- utils::read.csv(test_path("fixtures", "expected_dca.csv.gz"), stringsAsFactors = FALSE)

dca_specs <- list(
  risk_fitted = list(formula = y ~ risk, fitted_risk = TRUE, ci = "none", B = 500,
                     policy = "opt-in", design = "cohort"),
  glm3_boot = list(formula = y ~ score + age + size, fitted_risk = FALSE, ci = 0.95, B = 50,
                   policy = "opt-in", design = "cohort"),
  score_optout = list(formula = y ~ score, fitted_risk = TRUE, ci = 0.95, B = 25,
                      policy = "opt-out", design = "cohort"),
  glm2_casecontrol = list(formula = y ~ age + size, fitted_risk = FALSE, ci = 0.90, B = 20,
                          policy = "opt-in", design = "case-control")
)

run_spec <- function(s, d) {
  set.seed(1000)
  if (s$design == "cohort") {
    decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci,
                   bootstraps = s$B, policy = s$policy)
  } else {
    decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci,
                   bootstraps = s$B, policy = s$policy, study_design = s$design,
                   population_prevalence = 0.2)
  }
}

test_that("decision_curve equals rmda derived.data for every golden case and spec", {
  for (case in golden_cases) {
    d <- golden_input(case)
    for (sp in names(dca_specs)) {
      e <- golden_dca[golden_dca$case == case & golden_dca$spec == sp, ]
      got <- run_spec(dca_specs[[sp]], d)$derived
      label <- paste(case, sp)
      expect_identical(names(got), setdiff(names(e), c("case", "spec")), label = label)
      expect_identical(got$model, e$model, label = label)
      expect_identical(got$cost.benefit.ratio, e$cost.benefit.ratio, label = label)
      for (cn in names(got)[vapply(got, is.numeric, logical(1))]) {
        expect_identical(is.na(got[[cn]]), is.na(e[[cn]]), label = paste(label, cn, "NA pattern"))
        diff <- max(c(0, abs(got[[cn]] - e[[cn]])), na.rm = TRUE)
        expect_lt(diff, 1e-10, label = paste(label, cn))
      }
    }
  }
})

test_that("decision_curve leaves the random stream as rmda does (draws B index vectors)", {
  d <- golden_input("small")
  set.seed(7); decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 5); a <- runif(1)
  set.seed(7); for (b in 1:5) sample.int(nrow(d), replace = TRUE); b <- runif(1)
  expect_identical(a, b)
})

test_that("net benefit follows the formula at a threshold computed by hand", {
  d <- golden_input("paper_test")
  dc <- decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = "none")
  row <- dc$derived[dc$derived$model == "y ~ risk" & abs(dc$derived$thresholds - 0.3) < 1e-12, ]
  rho <- mean(d$y)
  tpr <- mean(d$risk[d$y == 1] > 0.3); fpr <- mean(d$risk[d$y == 0] > 0.3)
  expect_equal(row$NB, tpr * rho - 0.3 / 0.7 * (1 - rho) * fpr, tolerance = 1e-12)
})

test_that("summary tabulates net benefit at chosen thresholds and as.data.frame gives derived", {
  d <- golden_input("small")
  set.seed(1000)
  dc <- decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 10)
  s <- summary(dc, thresholds = c(0.2, 0.5))
  expect_s3_class(s, "data.frame")
  expect_equal(nrow(s), 6)
  expect_equal(s$NB[s$threshold == 0.5 & s$model == "None"], 0)
  expect_identical(as.data.frame(dc), dc$derived)
  expect_output(print(dc), "Decision curve")
})

test_that("decision_curve drops missing rows with a count and rejects bad input", {
  d <- golden_input("small")
  d$age[c(2, 5)] <- NA
  expect_warning(dc <- decision_curve(y ~ age + size, d, conf_level = "none"),
                 "2 observations with missing data removed", class = "srnomogram_warning_missing")
  expect_equal(dc$n, nrow(d) - 2)
  d <- golden_input("small")
  bad <- d; bad$y[1] <- 2
  expect_error(decision_curve(y ~ risk, bad, fitted_risk = TRUE), class = "srnomogram_error_input")
  bad <- d; bad$risk[1] <- 1.2
  expect_error(decision_curve(y ~ risk, bad, fitted_risk = TRUE), class = "srnomogram_error_input")
  expect_error(decision_curve(y ~ score + age, d, fitted_risk = TRUE), class = "srnomogram_error_input")
  bad <- d; bad$y <- 1
  expect_error(decision_curve(y ~ risk, bad, fitted_risk = TRUE), class = "srnomogram_error_input")
  expect_error(decision_curve(y ~ age, d, study_design = "case-control"), class = "srnomogram_error_input")
  expect_error(decision_curve(y ~ nope, d), class = "srnomogram_error_input")
})

test_that("the vectorised type-1 quantile equals stats::quantile", {
  set.seed(11)
  M <- matrix(round(runif(300), 2), 10)
  M[sample(length(M), 40)] <- NA
  M[3, ] <- NA
  for (p in c(0.025, 0.05, 0.5, 0.95, 0.975, 1 - 0.1 / 2, 0.1 / 2)) {
    ref <- apply(M, 1, function(r) if (all(is.na(r))) NA_real_ else quantile(r, p, type = 1, na.rm = TRUE))
    expect_identical(unname(srnomogram:::row_quantile_type1(M, p)[, 1]), unname(ref))
  }
})

test_that("plot returns a ggplot for one curve and for a list of curves", {
  d <- golden_input("paper_train")
  set.seed(1000)
  a <- decision_curve(y ~ score + age + size, d, bootstraps = 10)
  b <- decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = "none")
  p <- plot(a)
  expect_s3_class(p, "ggplot")
  p2 <- dca_plot(list(Nomogram = a, Risk = b), standardize = TRUE, cost_benefit_axis = FALSE)
  expect_s3_class(p2, "ggplot")
  expect_setequal(levels(p2$data$curve), c("Nomogram", "Risk", "Treat all", "Treat none"))
  expect_error(dca_plot(list(1)), class = "srnomogram_error_input")
})

test_that("engine = 'rmda' without the package is a classed error saying how to install it", {
  skip_if(requireNamespace("rmda", quietly = TRUE), "rmda is installed")
  d <- golden_input("small")
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, engine = "rmda"),
               'install.packages("rmda")', fixed = TRUE, class = "srnomogram_error_engine")
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, engine = "nope"))
})

test_that("the default engine equals rmda::decision_curve called through engine =", {
  skip_if_not_installed("rmda")
  for (case in c("small", "ties")) {
    d <- golden_input(case)
    for (sp in names(dca_specs)) {
      s <- dca_specs[[sp]]
      own <- run_spec(s, d)
      set.seed(1000)
      ref <- if (s$design == "cohort") {
        decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci,
                       bootstraps = s$B, policy = s$policy, engine = "rmda")
      } else {
        decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci,
                       bootstraps = s$B, policy = s$policy, study_design = s$design,
                       population_prevalence = 0.2, engine = "rmda")
      }
      label <- paste(case, sp)
      expect_s3_class(ref, "srnomogram_decision_curve")
      expect_identical(ref$engine, "rmda")
      expect_identical(names(ref$derived), names(own$derived), label = label)
      expect_identical(ref$derived$model, own$derived$model, label = label)
      expect_identical(ref$derived$cost.benefit.ratio, own$derived$cost.benefit.ratio, label = label)
      for (cn in names(own$derived)[vapply(own$derived, is.numeric, logical(1))]) {
        expect_identical(is.na(ref$derived[[cn]]), is.na(own$derived[[cn]]), label = paste(label, cn, "NA pattern"))
        diff <- max(c(0, abs(ref$derived[[cn]] - own$derived[[cn]])), na.rm = TRUE)
        expect_lt(diff, 1e-10, label = paste(label, cn))
      }
      expect_identical(ref[setdiff(names(ref), c("derived", "call", "engine"))],
                       own[setdiff(names(own), c("derived", "call", "engine"))], label = label)
    }
  }
  d <- golden_input("small")
  set.seed(1)
  ref <- decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 10, engine = "rmda")
  expect_output(print(ref), "Decision curve")
  expect_s3_class(plot(ref), "ggplot")
  expect_s3_class(summary(ref, thresholds = c(0.2, 0.5)), "data.frame")
})

test_that("seed = s gives rmda's curves under set.seed(s) and leaves the caller's stream alone", {
  d <- golden_input("paper_train")
  for (sp in c("glm3_boot", "glm2_casecontrol")) {
    s <- dca_specs[[sp]]
    e <- golden_dca[golden_dca$case == "paper_train" & golden_dca$spec == sp, ]
    set.seed(42); before <- runif(1); set.seed(42)
    args <- list(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci,
                 bootstraps = s$B, policy = s$policy, study_design = s$design, seed = 1000)
    if (s$design == "case-control") args$population_prevalence <- 0.2
    got <- do.call(decision_curve, args)
    expect_identical(runif(1), before)
    expect_identical(got$seed, 1000)
    for (cn in c("NB", "NB_lower", "NB_upper", "sNB_lower", "sNB_upper")) {
      expect_lt(max(c(0, abs(got$derived[[cn]] - e[[cn]])), na.rm = TRUE), 1e-10, label = paste(sp, cn))
    }
  }
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 5, seed = "x"),
               class = "srnomogram_error_input")
})

test_that("the old name confidence_intervals gives the same curves with a deprecation warning", {
  d <- golden_input("small")
  new <- decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = 0.9, bootstraps = 20, seed = 3)
  expect_warning(old <- decision_curve(y ~ risk, d, fitted_risk = TRUE, confidence_intervals = 0.9,
                                       bootstraps = 20, seed = 3),
                 class = "srnomogram_warning_deprecated", regexp = "conf_level")
  expect_identical(old$derived, new$derived)
  expect_identical(new$conf_level, 0.9)
  none <- decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = NULL)
  expect_identical(none$derived, decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = "none")$derived)
  expect_true(is.na(none$conf_level))
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_levle = 0.9),
               class = "srnomogram_error_input", regexp = "has no argument")
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, conf_level = 1.5),
               class = "srnomogram_error_input", regexp = "conf_level")
})

test_that("cluster with one patient per row gives rmda's curves (the golden ones)", {
  for (case in golden_cases) {
    d <- golden_input(case)
    for (sp in c("glm3_boot", "glm2_casecontrol")) {
      s <- dca_specs[[sp]]
      e <- golden_dca[golden_dca$case == case & golden_dca$spec == sp, ]
      set.seed(1000)
      got <- if (s$design == "cohort") {
        decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci, bootstraps = s$B,
                       cluster = sprintf("id%03d", rev(seq_len(nrow(d)))))$derived
      } else {
        decision_curve(s$formula, d, fitted_risk = s$fitted_risk, conf_level = s$ci, bootstraps = s$B,
                       study_design = s$design, population_prevalence = 0.2, cluster = seq_len(nrow(d)))$derived
      }
      for (cn in c("NB", "NB_lower", "NB_upper", "sNB_lower", "TPR_upper")) {
        expect_lt(max(c(0, abs(got[[cn]] - e[[cn]])), na.rm = TRUE), 1e-10, label = paste(case, sp, cn))
      }
    }
  }
})

test_that("the patient bootstrap draws whole patients: twinned rows give the curves of the patients", {
  # each row twice, the copies one patient: a replicate takes both copies of each drawn patient,
  # and net benefit (proportions) does not change when every row is doubled, so the bands equal
  # the row bootstrap's on the original data under the same seed
  d <- golden_input("paper_test")
  twin <- d[rep(seq_len(nrow(d)), each = 2), ]
  ref <- decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 40, seed = 8)
  pat <- decision_curve(y ~ risk, twin, fitted_risk = TRUE, bootstraps = 40, seed = 8,
                        cluster = rep(seq_len(nrow(d)), each = 2))
  expect_identical(pat$n_clusters, nrow(d))
  for (cn in c("NB", "NB_lower", "NB_upper", "TPR_lower", "FPR_upper")) {
    expect_equal(pat$derived[[cn]], ref$derived[[cn]], tolerance = 1e-12, label = cn)
  }
  # the indices themselves: both copies of a patient always drawn together
  idx <- withr::with_seed(2, dca_bootstrap_indices(twin$y, 10, "cohort", rep(seq_len(nrow(d)), each = 2)))
  for (i in idx) {
    counts <- tabulate(i, nbins = nrow(twin))
    expect_identical(counts[c(TRUE, FALSE)], counts[c(FALSE, TRUE)])
    expect_identical(length(i), nrow(twin))
  }
})

test_that("case-control patient bootstrap resamples patients within the patient's class", {
  y <- c(1, 0, 0, 0, 1, 0, 0, 1, 0, 0)
  pid <- c(1, 1, 2, 2, 3, 4, 5, 6, 7, 7)  # patient 1 has a case and a control row: a case patient
  idx <- withr::with_seed(5, dca_bootstrap_indices(y, 30, "case-control", pid))
  case_rows <- split(seq_along(y), pid)[c("1", "3", "6")]
  for (i in idx) {
    firsts <- i[i %in% c(1, 3, 5, 6, 7, 8, 9)]  # first row of each patient, once per drawn patient
    drawn <- pid[firsts]
    expect_identical(sum(drawn %in% c(1, 3, 6)), 3L)  # as many case patients as the data
    expect_identical(length(drawn), 7L)
    expect_true(all(tabulate(i, 10)[1] == tabulate(i, 10)[2]))
  }
  expect_error(decision_curve(y ~ risk, golden_input("small"), fitted_risk = TRUE, cluster = 1:2),
               class = "srnomogram_error_input", regexp = "one patient per row")
})
test_that("cluster = one id per row gives rmda's bootstrap; it must be one per row", {
  d <- golden_input("paper_test")
  for (fitted in c(TRUE, FALSE)) {
    f <- if (fitted) y ~ risk else y ~ risk + age
    plain <- decision_curve(f, d, fitted_risk = fitted, bootstraps = 30, seed = 5)
    one <- decision_curve(f, d, fitted_risk = fitted, bootstraps = 30, seed = 5, cluster = seq_len(nrow(d)))
    expect_identical(one$derived, plain$derived)
    expect_equal(one$n_clusters, nrow(d))
  }
  expect_error(decision_curve(y ~ risk, d, fitted_risk = TRUE, cluster = 1:3),
               class = "srnomogram_error_input", regexp = "per row of")
})

test_that("a cluster bootstrap of every row doubled under its id gives the bands of the undoubled data", {
  # Doubling each row leaves every measure unchanged; resampling the pairs draws the
  # original rows' bootstrap (same seed), so the bands must equal the plain row
  # bootstrap of the original data, while a row bootstrap of the doubled rows,
  # which treats the twins as independent, gives bands about 1/sqrt(2) as wide.
  d <- golden_input("paper_test")
  n <- nrow(d)
  d2 <- d[rep(seq_len(n), each = 2), ]
  for (fitted in c(TRUE, FALSE)) {
    f <- if (fitted) y ~ risk else y ~ risk + age
    plain <- decision_curve(f, d, fitted_risk = fitted, bootstraps = 200, seed = 11)$derived
    clus <- decision_curve(f, d2, fitted_risk = fitted, bootstraps = 200, seed = 11,
                           cluster = rep(seq_len(n), each = 2))$derived
    num <- names(plain)[vapply(plain, is.numeric, logical(1))]
    for (cn in num) expect_equal(clus[[cn]], plain[[cn]], tolerance = 1e-10, label = paste(fitted, cn))
    naive <- decision_curve(f, d2, fitted_risk = fitted, bootstraps = 200, seed = 11)$derived
    m <- plain$model == plain$model[1] & plain$thresholds <= 0.6
    ratio <- mean((naive$NB_upper - naive$NB_lower)[m]) / mean((clus$NB_upper - clus$NB_lower)[m])
    expect_lt(ratio, 0.85, label = paste("naive / cluster band width", fitted))
  }
})

test_that("incomplete rows drop their cluster ids with them", {
  d <- golden_input("paper_train")[1:80, ]
  d$risk[c(3, 40)] <- NA
  cl <- rep(1:40, each = 2)
  expect_warning(a <- decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 20, seed = 2, cluster = cl),
                 class = "srnomogram_warning_missing")
  keep <- !is.na(d$risk)
  b <- decision_curve(y ~ risk, d[keep, ], fitted_risk = TRUE, bootstraps = 20, seed = 2, cluster = cl[keep])
  expect_identical(a$derived, b$derived)
  expect_equal(a$n_clusters, 40)
})


test_that("net_benefit_difference gives TP/n - FP/n * t/(1-t) per model and a paired bootstrap", {
  set.seed(12)
  n <- 150
  x <- rnorm(n)
  y <- rbinom(n, 1, plogis(-0.8 + 1.4 * x))
  r1 <- plogis(-0.8 + 1.4 * x)
  r2 <- plogis(-0.8 + 0.4 * x + rnorm(n, 0, 0.5))
  th <- seq(0.05, 0.5, by = 0.05)
  nbd <- net_benefit_difference(y, r1, r2, thresholds = th, B = 200, seed = 3, conf_level = 0.9)
  analytic <- function(r) sapply(th, function(t) sum(r > t & y == 1) / n - sum(r > t & y == 0) / n * t / (1 - t))
  expect_equal(nbd$table$nb1, analytic(r1), tolerance = 1e-12)
  expect_equal(nbd$table$nb2, analytic(r2), tolerance = 1e-12)
  expect_equal(nbd$table$difference, analytic(r1) - analytic(r2), tolerance = 1e-12)
  expect_equal(nbd$summary$estimate, mean(analytic(r1) - analytic(r2)), tolerance = 1e-12)
  # the same net benefit as decision_curve() (rmda's definition)
  dc <- decision_curve(y ~ r, data.frame(y = y, r = r1), fitted_risk = TRUE, thresholds = th, conf_level = NULL)
  expect_equal(nbd$table$nb1, dc$derived$NB[dc$derived$model == "y ~ r"], tolerance = 1e-12)
  # the bootstrap written out by hand: both models on the same resample
  set.seed(3)
  d <- sapply(1:200, function(b) {
    i <- sample.int(n, replace = TRUE)
    nb <- function(r) sapply(th, function(t) sum(r[i] > t & y[i] == 1) / n - sum(r[i] > t & y[i] == 0) / n * t / (1 - t))
    nb(r1) - nb(r2)
  })
  expect_equal(nbd$table$lower, unname(apply(d, 1, quantile, 0.05)), tolerance = 1e-12)
  expect_equal(nbd$table$upper, unname(apply(d, 1, quantile, 0.95)), tolerance = 1e-12)
  expect_equal(c(nbd$summary$lower, nbd$summary$upper), unname(quantile(colMeans(d), c(0.05, 0.95))), tolerance = 1e-12)
  expect_output(print(nbd), "paired bootstrap")
  expect_s3_class(plot(nbd), "ggplot")
})

test_that("net_benefit_difference resamples clusters, leaves the caller's stream alone and checks its input", {
  set.seed(4)
  y <- rbinom(80, 1, 0.4)
  r1 <- runif(80)
  r2 <- runif(80)
  cl <- rep(1:40, each = 2)
  set.seed(1); before <- runif(1); set.seed(1)
  a <- net_benefit_difference(y, r1, r2, c(0.1, 0.3), B = 50, seed = 9, cluster = cl)
  expect_identical(runif(1), before)
  expect_equal(a$n_clusters, 40)
  set.seed(9)
  ids <- split(1:80, cl)
  i1 <- unlist(ids[sample.int(40, replace = TRUE)], use.names = FALSE)
  t <- 0.1
  first <- (sum(r1[i1] > t & y[i1] == 1) - sum(r1[i1] > t & y[i1] == 0) * t / (1 - t)) / length(i1) -
    (sum(r2[i1] > t & y[i1] == 1) - sum(r2[i1] > t & y[i1] == 0) * t / (1 - t)) / length(i1)
  b1 <- net_benefit_difference(y, r1, r2, c(0.1, 0.3), B = 1, seed = 9, cluster = cl)
  expect_equal(b1$table$lower[1], first, tolerance = 1e-12)
  expect_error(net_benefit_difference(y, r1, r2, c(0.1, 0.3), B = 10), "must be given", class = "srnomogram_error_input")
  expect_error(net_benefit_difference(y, r1, r2, c(0, 0.3), B = 0), "thresholds", class = "srnomogram_error_input")
  expect_true(is.na(net_benefit_difference(y, r1, r2, c(0.1, 0.3), B = 0)$summary$lower))
})

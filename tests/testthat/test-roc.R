test_that("roc_auc and compare_roc equal pROC golden values", {
  ex <- utils::read.csv(test_path("fixtures", "expected_roc.csv"), stringsAsFactors = FALSE)
  for (i in seq_len(nrow(ex))) {
    d <- golden_input(ex$case[i])
    r <- roc_auc(d$y, d$risk)
    expect_equal(r$auc, ex$auc[i], tolerance = 1e-12)
    expect_equal(unname(r$lower), ex$lower[i], tolerance = 1e-12)
    expect_equal(unname(r$upper), ex$upper[i], tolerance = 1e-12)
    expect_equal(roc_auc(d$y, d$age)$auc, ex$auc_age[i], tolerance = 1e-12)
    t <- compare_roc(d$y, d$risk, d$age)
    expect_s3_class(t, "htest")
    expect_equal(t$p.value, ex$delong_p[i], tolerance = 1e-10)
    expect_equal(unname(t$statistic), ex$delong_z[i], tolerance = 1e-10)
  }
})

test_that("AUC equals the Mann-Whitney probability computed by hand", {
  d <- golden_input("small")
  a <- outer(d$risk[d$y == 1], d$risk[d$y == 0], ">") + 0.5 * outer(d$risk[d$y == 1], d$risk[d$y == 0], "==")
  expect_equal(roc_auc(d$y, d$risk)$auc, mean(a), tolerance = 1e-12)
})

test_that("classification_metrics counts a 2x2 table at the Youden cut-off", {
  y <- c(0, 0, 0, 1, 1, 1, 0, 1)
  s <- c(0.1, 0.2, 0.6, 0.4, 0.8, 0.9, 0.3, 0.7)
  th <- youden_threshold(y, s)
  # sensitivity + specificity is maximal (= 1.75) between 0.3 and 0.4
  expect_equal(th, 0.35)
  m <- classification_metrics(y, s)
  expect_equal(m$threshold, 0.35)
  expect_equal(c(m$tp, m$fp, m$tn, m$fn), c(4, 1, 3, 0))
  expect_equal(m$sensitivity, 1); expect_equal(m$specificity, 0.75)
  expect_equal(m$ppv, 0.8); expect_equal(m$npv, 1); expect_equal(m$accuracy, 7 / 8)
  # a training cut-off is applied unchanged to another set
  m2 <- classification_metrics(c(1, 0), c(0.36, 0.34), threshold = th)
  expect_equal(c(m2$tp, m2$tn), c(1, 1))
})

test_that("ROC functions reject a single class and non-binary outcomes", {
  expect_error(roc_auc(rep(1, 5), 1:5), class = "srnomogram_error_input")
  expect_error(roc_auc(c(0, 1, 2), 1:3), class = "srnomogram_error_input")
  expect_error(compare_roc(c(0, 1), 1:2, 1:3), class = "srnomogram_error_input")
  expect_warning(r <- roc_auc(c(0, 1, NA, 0, 1, 0), c(1, 2, 3, NA, 0.5, 3)), class = "srnomogram_warning_missing")
  expect_equal(r$n_cases + r$n_controls, 4)
})

test_that("roc_plot draws train and test panels with AUC and CI labels", {
  d <- rbind(cbind(golden_input("paper_train"), split = "Train"), cbind(golden_input("paper_test"), split = "Test"))
  p <- roc_plot(d, outcome = "y", scores = c(Nomogram = "risk", Age = "age"), panel = "split")
  expect_s3_class(p, "ggplot")
  expect_s3_class(p, "patchwork")
  test_panel <- p[[2]]
  expect_equal(test_panel$labels$title, "Test")
  labs <- levels(test_panel$data$label)
  expect_length(labs, 2)
  r <- roc_auc(d$y[d$split == "Test"], d$risk[d$split == "Test"])
  expect_equal(labs[1], sprintf("Nomogram (AUC %.3f, 95%% CI %.3f\u2013%.3f)", r$auc, r$lower, r$upper))
  expect_s3_class(plot(r), "ggplot")
  expect_s3_class(roc_plot(list(Train = list(A = r), Test = list(A = r))), "ggplot")
})

test_that("roc_auc's conf_level is pROC's DeLong conf.level and is checked", {
  d <- golden_input("paper_test")
  r <- roc_auc(d$y, d$score, conf_level = 0.9)
  ref <- pROC::ci.auc(pROC::roc(d$y, d$score, levels = c(0, 1), direction = "<", quiet = TRUE),
                      method = "delong", conf.level = 0.9)
  expect_equal(c(r$lower, r$upper), c(ref[1], ref[3]), tolerance = 1e-12)
  expect_error(roc_auc(d$y, d$score, conf_level = 0), class = "srnomogram_error_input")
})

test_that("compare_roc gives one row with both AUCs as pROC computes them", {
  d <- golden_input("small")
  t <- compare_roc(d$y, d$risk, d$age)
  row <- as.data.frame(t)
  expect_identical(nrow(row), 1L)
  expect_equal(row$auc_of_score1, as.numeric(pROC::auc(pROC::roc(d$y, d$risk, levels = c(0, 1), direction = "<", quiet = TRUE))),
               tolerance = 1e-12)
  expect_identical(row$p_value, t$p.value)
  expect_true(is.na(row$df))
})

test_that("classification_metrics gives Wilson limits equal to prop.test(correct = FALSE)", {
  d <- golden_input("paper_test")
  for (th in c(0.05, 0.3, 0.5, 0.99)) for (cl in c(0.95, 0.9)) {
    m <- classification_metrics(d$y, d$risk, threshold = th, conf_level = cl)
    cnt <- list(accuracy = c(m$tp + m$tn, m$n), sensitivity = c(m$tp, m$tp + m$fn),
                specificity = c(m$tn, m$tn + m$fp), ppv = c(m$tp, m$tp + m$fp), npv = c(m$tn, m$tn + m$fn))
    for (k in names(cnt)) {
      x <- cnt[[k]][1]; n <- cnt[[k]][2]
      label <- sprintf("%s at %g, %g", k, th, cl)
      if (n == 0) {
        expect_true(is.na(m[[k]]) && is.na(m[[paste0(k, "_lower")]]) && is.na(m[[paste0(k, "_upper")]]), label = label)
        next
      }
      ref <- suppressWarnings(stats::prop.test(x, n, correct = FALSE, conf.level = cl))
      expect_equal(m[[k]], unname(ref$estimate), tolerance = 1e-12, label = label)
      expect_equal(c(m[[paste0(k, "_lower")]], m[[paste0(k, "_upper")]]), as.vector(ref$conf.int),
                   tolerance = 1e-12, label = label)
    }
  }
  # all or none positive: the limits reach 0 and 1 exactly, as in prop.test
  m <- classification_metrics(c(1, 1, 1, 0, 0), c(0.9, 0.8, 0.7, 0.1, 0.2), threshold = 0.5)
  expect_equal(c(m$sensitivity_upper, m$specificity_upper), c(1, 1))
  expect_equal(m$sensitivity_lower, as.vector(suppressWarnings(stats::prop.test(3, 3, correct = FALSE))$conf.int)[1], tolerance = 1e-12)
  expect_identical(names(m), c("threshold", "accuracy", "accuracy_lower", "accuracy_upper", "sensitivity",
                               "sensitivity_lower", "sensitivity_upper", "specificity", "specificity_lower",
                               "specificity_upper", "ppv", "ppv_lower", "ppv_upper", "npv", "npv_lower",
                               "npv_upper", "tp", "fp", "tn", "fn", "n"))
  expect_error(classification_metrics(d$y, d$risk, conf_level = 95), class = "srnomogram_error_input")
})

# Obuchowski NA (1997), Biometrics 53:567-578, written out with loops over clusters and units:
# AUCs of the columns of `scores` and their covariance matrix (see tests/python/test_metrics.py).
obuchowski_reference <- function(y, scores, cluster) {
  psi <- function(x, yy) if (x > yy) 1 else if (x == yy) 0.5 else 0
  ids <- unique(cluster)
  big_i <- length(ids)
  m <- vapply(ids, function(c) sum(cluster == c & y == 1), numeric(1))
  n <- vapply(ids, function(c) sum(cluster == c & y == 0), numeric(1))
  big_m <- sum(m); big_n <- sum(n)
  i10 <- sum(m > 0); i01 <- sum(n > 0)
  k <- ncol(scores)
  theta <- numeric(k); vx <- matrix(0, big_i, k); vy <- matrix(0, big_i, k)
  for (r in seq_len(k)) {
    s <- scores[, r]
    xs <- s[y == 1]; ys <- s[y == 0]
    tot <- 0
    for (a in xs) for (b in ys) tot <- tot + psi(a, b)
    theta[r] <- tot / (big_m * big_n)
    for (i in seq_len(big_i)) {
      for (u in which(cluster == ids[i])) {
        if (y[u] == 1) {
          for (b in ys) vx[i, r] <- vx[i, r] + psi(s[u], b) / big_n
        } else {
          for (a in xs) vy[i, r] <- vy[i, r] + psi(a, s[u]) / big_m
        }
      }
    }
  }
  cv <- matrix(0, k, k)
  for (r in seq_len(k)) for (q in seq_len(k)) {
    s10 <- i10 / ((i10 - 1) * big_m) * sum((vx[, r] - m * theta[r]) * (vx[, q] - m * theta[q]))
    s01 <- i01 / ((i01 - 1) * big_n) * sum((vy[, r] - n * theta[r]) * (vy[, q] - n * theta[q]))
    s11_rq <- big_i / (big_i - 1) * sum((vx[, r] - m * theta[r]) * (vy[, q] - n * theta[q]))
    s11_qr <- big_i / (big_i - 1) * sum((vx[, q] - m * theta[q]) * (vy[, r] - n * theta[r]))
    cv[r, q] <- s10 / big_m + s01 / big_n + (s11_rq + s11_qr) / (big_m * big_n)
  }
  list(theta = theta, cov = cv)
}

clustered_data <- function(seed, n_patients = 40, digits = 8) {
  set.seed(seed)
  sizes <- sample(1:4, n_patients, replace = TRUE)
  g <- rep(sprintf("pt%03d", n_patients:1), sizes)  # not in sorted order
  u <- rep(rnorm(n_patients), sizes)
  y <- as.numeric(runif(length(g)) < plogis(u))
  s1 <- round(y + u + 0.7 * rnorm(length(g)), digits)
  s2 <- round(0.5 * s1 + 0.5 * y + u + rnorm(length(g)), digits)
  list(y = y, s1 = s1, s2 = s2, g = g)
}

test_that("roc_auc and compare_roc with cluster equal Obuchowski's 1997 formulas written with loops", {
  for (case in list(c(1, 8), c(2, 1), c(3, 0))) {  # digits 1 and 0: ties within and across patients
    d <- clustered_data(case[1], digits = case[2])
    expect_true(any(tapply(d$y, d$g, function(v) length(unique(v))) == 2))  # patients mixing benign and malignant
    ref <- obuchowski_reference(d$y, cbind(d$s1, d$s2), d$g)
    r <- roc_auc(d$y, d$s1, conf_level = 0.9, cluster = d$g)
    half <- qnorm(0.95) * sqrt(ref$cov[1, 1])
    expect_equal(r$auc, ref$theta[1], tolerance = 1e-12)
    expect_equal(c(r$lower, r$upper), c(max(ref$theta[1] - half, 0), min(ref$theta[1] + half, 1)), tolerance = 1e-12)
    expect_identical(r$method, "clustered DeLong (Obuchowski 1997), patients as clusters")
    t <- compare_roc(d$y, d$s1, d$s2, cluster = d$g)
    z <- (ref$theta[1] - ref$theta[2]) / sqrt(ref$cov[1, 1] + ref$cov[2, 2] - 2 * ref$cov[1, 2])
    expect_equal(unname(t$statistic), z, tolerance = 1e-12)
    expect_equal(t$p.value, 2 * pnorm(-abs(z)), tolerance = 1e-12)
    expect_match(t$method, "Obuchowski 1997")
  }
})

test_that("with one lesion per patient the clustered code is pROC's DeLong", {
  ex <- utils::read.csv(test_path("fixtures", "expected_roc.csv"), stringsAsFactors = FALSE)
  for (i in seq_len(nrow(ex))) {
    d <- golden_input(ex$case[i])
    # the clustered formula itself, forced on singleton clusters
    v <- delong_cov(d$y, cbind(d$risk, d$age), seq_along(d$y))
    r1 <- pROC::roc(d$y, d$risk, levels = c(0, 1), direction = "<", quiet = TRUE)
    r2 <- pROC::roc(d$y, d$age, levels = c(0, 1), direction = "<", quiet = TRUE)
    expect_equal(v$cov[1, 1], pROC::var(r1, method = "delong"), tolerance = 1e-12)
    expect_equal(v$cov[2, 2], pROC::var(r2, method = "delong"), tolerance = 1e-12)
    expect_equal(v$cov[1, 2], pROC::cov(r1, r2, method = "delong"), tolerance = 1e-12)
    # and the public functions keep pROC's numbers exactly
    r <- roc_auc(d$y, d$risk, cluster = paste0("p", seq_along(d$y)))
    expect_identical(c(r$lower, r$upper), c(roc_auc(d$y, d$risk)$lower, roc_auc(d$y, d$risk)$upper))
    expect_identical(r$method, "DeLong")
    t <- compare_roc(d$y, d$risk, d$age, cluster = seq_along(d$y))
    expect_equal(t$p.value, ex$delong_p[i], tolerance = 1e-10)
  }
})

test_that("two views per patient widen the interval; cluster must be one patient per lesion", {
  set.seed(5)
  n <- 80
  y1 <- rbinom(n, 1, 0.4)
  s <- y1 + rnorm(n)
  y <- rep(y1, each = 2)
  sv <- rep(s, each = 2) + 0.05 * rnorm(2 * n)
  g <- rep(seq_len(n), each = 2)
  naive <- roc_auc(y, sv)
  clustered <- roc_auc(y, sv, cluster = g)
  expect_gt(clustered$upper - clustered$lower, 1.3 * (naive$upper - naive$lower))
  ref <- obuchowski_reference(y, cbind(sv), g)
  expect_equal(clustered$upper, min(ref$theta + qnorm(0.975) * sqrt(ref$cov[1, 1]), 1), tolerance = 1e-12)
  expect_error(roc_auc(y, sv, cluster = g[-1]), class = "srnomogram_error_input")
  expect_error(compare_roc(y, sv, -sv, cluster = replace(g, 3, NA)), class = "srnomogram_error_input")
  # a lesion dropped for a missing score takes its patient with it
  sm <- replace(sv, 1, NA)
  expect_warning(r <- roc_auc(y, sm, cluster = g), class = "srnomogram_warning_missing")
  expect_equal(r$upper, roc_auc(y[-1], sv[-1], cluster = g[-1])$upper, tolerance = 1e-15)
})

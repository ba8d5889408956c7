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

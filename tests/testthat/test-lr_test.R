test_that("lr_test equals rms::lrtest and the deviance difference of glm", {
  d <- golden_input("paper_train")
  big <- fit_nomogram(y ~ age + size + score, d)
  small <- fit_nomogram(y ~ age + size, d)
  lr <- lr_test(big, small)
  ref <- rms::lrtest(big, small)$stats
  expect_equal(unname(lr$statistic), unname(ref["L.R. Chisq"]), tolerance = 1e-10)
  expect_equal(unname(lr$parameter), unname(ref["d.f."]))
  expect_equal(lr$p.value, unname(ref["P"]), tolerance = 1e-10)
  # independent reference: the drop in deviance between two glm fits
  dev <- deviance(glm(y ~ age + size, binomial, d)) - deviance(glm(y ~ age + size + score, binomial, d))
  expect_equal(unname(lr$statistic), dev, tolerance = 1e-6)
  expect_s3_class(lr, "htest")
  row <- as.data.frame(lr)
  expect_equal(c(row$statistic, row$df, row$p_value), c(unname(ref["L.R. Chisq"]), 1, unname(ref["P"])), tolerance = 1e-10)
  expect_output(print(lr), "Likelihood-ratio")
})

test_that("lr_test refuses models that are not nested or not fitted to the same rows", {
  d <- golden_input("paper_train")
  expect_error(lr_test(fit_nomogram(y ~ age + score, d), fit_nomogram(y ~ size, d)), "nested",
               class = "srnomogram_error_input")
  expect_error(lr_test(fit_nomogram(y ~ age + score, d), fit_nomogram(y ~ age, d[-1, ])), "same rows",
               class = "srnomogram_error_input")
  expect_error(lr_test(fit_nomogram(y ~ age, d), fit_nomogram(y ~ age, d)), "no coefficient",
               class = "srnomogram_error_input")
})

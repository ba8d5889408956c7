test_that("cross_fit_risk refits on the other folds and predicts the held-out fold", {
  d <- golden_input("paper_train")
  folds <- rep(1:4, length.out = nrow(d))
  cf <- cross_fit_risk(y ~ age + size + score, d, folds)
  for (k in 1:4) {
    g <- glm(y ~ age + size + score, binomial, d[folds != k, ])
    expect_equal(cf$risk[folds == k], unname(predict(g, d[folds == k, ], type = "response")), tolerance = 1e-6)
  }
  expect_true(all(cf$fitted_by == "rms::lrm"))
  expect_equal(cf$fold, folds)
  expect_error(cross_fit_risk(y ~ age, d, folds[-1]), "a fold for each", class = "srnomogram_error_input")
})

test_that("a fold that separates the outcome falls back to glm, with a warning naming it", {
  set.seed(3)
  d <- data.frame(x = c(rnorm(20, 0), rnorm(20, 4)), y = rep(0:1, each = 20))
  d$x[c(1, 21)] <- c(2.1, 1.9)  # the only overlap: both rows in fold 1
  folds <- rep(1:2, 20)
  folds[c(1, 21)] <- 1
  expect_warning(cf <- cross_fit_risk(y ~ x, d, folds), class = "srnomogram_warning_separation")
  g <- suppressWarnings(glm(y ~ x, binomial, d[folds != 1, ]))
  expect_equal(cf$risk[folds == 1], unname(predict(g, d[folds == 1, ], type = "response")), tolerance = 1e-12)
  expect_true(all(cf$fitted_by[folds == 1] == "stats::glm (separation)"))
  expect_true(all(cf$fitted_by[folds == 2] == "rms::lrm"))
})

# A new centre for an original model b = (-0.5, 0.8, 1.0, 0.9) on (age, size, margin), generated so that
# each candidate of the closed test is the truth: the original model, a shifted intercept, a shrunken
# linear predictor, or a reversed coefficient of size.
sim_update <- function(truth, seed = 1, n = 400) {
  set.seed(seed)
  X <- cbind(age = rnorm(n), size = rnorm(n), margin = rbinom(n, 1, 0.4))
  b <- c(-0.5, 0.8, 1.0, 0.9)
  lp <- drop(b[1] + X %*% b[-1])
  eta <- switch(truth, none = lp, intercept = lp + 1, recalibration = 0.2 + 0.45 * lp,
                refit = drop(b[1] + X %*% c(0.8, -0.6, 0.9)))
  list(y = rbinom(n, 1, plogis(eta)), lp = lp, X = X)
}

# The procedure of Vergouwe et al. (2017), by hand with glm() and pchisq().
closed_test_by_hand <- function(y, lp, X, alpha = 0.05) {
  d <- data.frame(y = y, lp = lp, X)
  m0 <- glm(y ~ -1 + offset(lp), family = binomial(), data = d)  # nothing estimated
  m1 <- glm(y ~ 1 + offset(lp), family = binomial(), data = d)
  m2 <- glm(y ~ lp, family = binomial(), data = d)
  m3 <- glm(y ~ age + size + margin, family = binomial(), data = d)
  ll <- sapply(list(m0, m1, m2, m3), function(m) as.numeric(logLik(m)))
  stat <- 2 * (ll[4] - ll[1:3])
  df <- c(4, 3, 2)
  p <- pchisq(stat, df, lower.tail = FALSE)
  method <- if (p[1] >= alpha) "none" else if (p[2] >= alpha) "intercept" else if (p[3] >= alpha) "recalibration" else "refit"
  list(statistic = stat, df = df, p = p, method = method, fits = list(m0, m1, m2, m3))
}

test_that("update_closed_test chooses each of the four methods as the hand-computed closed test does", {
  for (truth in c("none", "intercept", "recalibration", "refit")) {
    d <- sim_update(truth)
    res <- update_closed_test(d$y, d$lp, d$X)
    hand <- closed_test_by_hand(d$y, d$lp, d$X)
    expect_equal(res$method, truth)
    expect_equal(hand$method, truth)
    expect_equal(res$tests$statistic, hand$statistic, tolerance = 1e-9)
    expect_equal(res$tests$df, hand$df)
    expect_equal(res$tests$p_value, hand$p, tolerance = 1e-9)
    reached <- match(truth, c("none", "intercept", "recalibration", "refit"))
    expect_equal(res$tests$performed, seq_len(3) <= reached)
    expect_equal(res$tests$rejected[res$tests$performed], seq_len(min(reached, 3)) < reached)
    fit <- hand$fits[[reached]]
    expect_equal(res$lp, unname(predict(fit, type = "link")), tolerance = 1e-9)
    if (truth != "none") expect_equal(unname(res$coefficients), unname(coef(fit)), tolerance = 1e-9)
  }
  expect_equal(names(res$coefficients), c("(Intercept)", "age", "size", "margin"))
  expect_output(print(res), "Chosen: model revision")
  expect_s3_class(plot(res), "ggplot")
  expect_equal(summary(res), res$tests)
})

test_that("without X the most extensive model is logistic recalibration; one predictor makes step 3 moot", {
  d <- sim_update("intercept")
  res <- update_closed_test(d$y, d$lp)
  ll <- c(sum(dbinom(d$y, 1, plogis(d$lp), log = TRUE)),
          as.numeric(logLik(glm(d$y ~ 1, offset = d$lp, family = binomial()))),
          as.numeric(logLik(glm(d$y ~ d$lp, family = binomial()))))
  expect_equal(res$tests$statistic, 2 * (ll[3] - ll[1:2]), tolerance = 1e-9)
  expect_equal(res$tests$df, c(2L, 1L))
  expect_equal(res$method, "intercept")
  d <- sim_update("recalibration")
  one <- update_closed_test(d$y, 0.3 + 1.5 * d$X[, "age"], d$X[, "age", drop = FALSE])
  expect_equal(one$tests$df, c(2L, 1L, 0L))
  expect_false(one$tests$performed[3])
  expect_true(one$method %in% c("none", "intercept", "recalibration"))
})

test_that("update_closed_test rejects non-nested input and bad arguments with one-line input errors", {
  d <- sim_update("none")
  expect_error(update_closed_test(d$y, d$lp + rnorm(400), d$X), "not a linear function of", class = "srnomogram_error_input")
  expect_error(update_closed_test(d$y, d$lp, d$X[-1, ]), "one row per element", class = "srnomogram_error_input")
  expect_error(update_closed_test(d$y, d$lp, alpha = 5), "alpha", class = "srnomogram_error_input")
  expect_error(update_closed_test(d$y + 1, d$lp), "binary", class = "srnomogram_error_input")
  expect_error(update_closed_test(d$y, d$lp, letters), class = "srnomogram_error_input")
  # a data frame of predictors is expanded as the model's design matrix
  df <- as.data.frame(d$X)
  df$margin <- factor(df$margin, labels = c("smooth", "irregular"))
  res <- update_closed_test(d$y, d$lp, df)
  expect_equal(res$tests$statistic, update_closed_test(d$y, d$lp, d$X)$tests$statistic, tolerance = 1e-9)
})

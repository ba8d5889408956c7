test_that("nomogram points equal rms::nomogram golden values on every case", {
  ex <- utils::read.csv(test_path("fixtures", "expected_nomogram_points.csv"), stringsAsFactors = FALSE)
  for (case in golden_cases) {
    fit <- fit_nomogram(y ~ score + age + size, golden_input(case))
    tab <- nomogram_points_table(fit, fun_at = NULL)
    got <- tab[tab$axis == "predictor", ]
    e <- ex[ex$case == case, ]
    expect_identical(got$variable, e$variable, label = case)
    expect_equal(as.numeric(got$value), e$value, tolerance = 1e-12, label = case)
    expect_lt(max(abs(got$points - e$points)), 1e-10, label = case)
  }
})

test_that("fit_nomogram leaves no global datadist behind and keeps its own", {
  old <- getOption("datadist")
  fit <- fit_nomogram(y ~ score + age + size, golden_input("small"))
  expect_identical(getOption("datadist"), old)
  expect_s3_class(fit, "lrm")
  expect_s3_class(fit$datadist, "datadist")
  expect_s3_class(nomogram_rms(fit), "nomogram")
  expect_identical(getOption("datadist"), old)
})

test_that("fit_nomogram coefficients equal glm and predict gives fitted risks", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  g <- glm(y ~ score + age + size, binomial, d)
  expect_equal(unname(coef(fit)), unname(coef(g)), tolerance = 1e-6)
  nd <- golden_input("paper_test")
  expect_equal(predict(fit, nd), unname(predict(g, nd, type = "response")), tolerance = 1e-6)
  expect_equal(predict(fit), unname(fitted(g)), tolerance = 1e-6)
  expect_equal(predict(fit, nd, type = "lp"), unname(predict(g, nd)), tolerance = 1e-6)
  s <- summary(fit)
  expect_equal(s$odds_ratio, unname(exp(coef(g))), tolerance = 1e-6)
  expect_output(print(fit), "Logistic Regression Model")
})

test_that("total points map to risk through the reported scaling", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  tab <- nomogram_points_table(fit)
  sc <- attr(tab, "scaling")
  # points of one patient from the per-variable linear contributions
  b <- coef(fit)
  x <- d[1, ]
  pts <- sum(vapply(c("score", "age", "size"), function(v) {
    r <- tab[tab$axis == "predictor" & tab$variable == v, ]
    stats::approx(as.numeric(r$value), r$points, xout = x[[v]])$y
  }, numeric(1)))
  expect_equal(plogis(sc$intercept + pts / sc$points_per_lp), predict(fit, x), tolerance = 1e-8)
  # rms places risk ticks by interpolation on a grid, hence the looser tolerance
  rk <- tab[tab$axis == "risk", ]
  expect_equal(plogis(sc$intercept + rk$points / sc$points_per_lp), as.numeric(rk$value), tolerance = 1e-4)
})

test_that("fit_nomogram reports missing rows, bad outcomes and separation", {
  d <- golden_input("small")
  d$age[1] <- NA
  expect_warning(fit_nomogram(y ~ score + age, d), class = "srnomogram_warning_missing")
  d <- golden_input("small")
  d$sep <- d$y * 10 + runif(nrow(d))
  expect_error(fit_nomogram(y ~ sep, d), class = "srnomogram_error_separation")
  d$y[1] <- 3
  expect_error(fit_nomogram(y ~ score, d), class = "srnomogram_error_input")
  d$y <- 0
  expect_error(fit_nomogram(y ~ score, d), class = "srnomogram_error_input")
  expect_error(fit_nomogram(y ~ nothere, golden_input("small")), class = "srnomogram_error_input")
})

test_that("plot draws the publication nomogram as a ggplot", {
  fit <- fit_nomogram(y ~ score + age + size, golden_input("paper_train"))
  p <- plot(fit)
  expect_s3_class(p, "ggplot")
  expect_setequal(unique(p$data$axis), c("Points", "score", "age", "size", "Total Points", "Risk of malignancy"))
})

test_that("summary of a fit gives Wald intervals at conf_level, equal to confint.default", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  g <- glm(y ~ score + age + size, binomial, d)
  for (level in c(0.95, 0.8)) {
    s <- summary(fit, conf_level = level)
    ci <- exp(confint.default(g, level = level))
    expect_equal(s$lower, unname(ci[, 1]), tolerance = 1e-5)
    expect_equal(s$upper, unname(ci[, 2]), tolerance = 1e-5)
  }
  expect_error(summary(fit, conf_level = 1), class = "srnomogram_error_input")
})

test_that("the old order fit_nomogram(data, formula) fits the same model with a deprecation warning", {
  d <- golden_input("small")
  new <- fit_nomogram(y ~ score + age, d)
  expect_warning(old <- fit_nomogram(d, y ~ score + age), class = "srnomogram_warning_deprecated",
                 regexp = "formula first")
  expect_identical(coef(old), coef(new))
  expect_error(fit_nomogram(d, d), class = "srnomogram_error_input")
})

test_that("a factor enters with rms term names, one points value per level, and draws as a nomogram axis", {
  set.seed(11)
  n <- 200
  d <- data.frame(age = round(stats::rnorm(n, 50, 10)),
                  shape = factor(sample(c("oval", "round", "irregular"), n, TRUE),
                                 levels = c("round", "oval", "irregular")))  # reference first
  d$y <- stats::rbinom(n, 1, stats::plogis(-4 + 0.06 * d$age + 1.5 * (d$shape == "irregular")))
  fit <- fit_nomogram(y ~ age + shape, d)
  expect_identical(names(stats::coef(fit)), c("Intercept", "age", "shape=oval", "shape=irregular"))
  # the same coefficients as stats::glm with treatment contrasts (the first level is the reference)
  g <- stats::glm(y ~ age + shape, data = d, family = stats::binomial())
  expect_equal(unname(stats::coef(fit)), unname(stats::coef(g)), tolerance = 1e-6)
  tab <- nomogram_points_table(fit)
  ax <- tab[tab$axis == "predictor" & tab$variable == "shape", ]
  expect_identical(ax$value, c("round", "oval", "irregular"))
  # rms' points per level: the coefficients' differences on the points scale
  b <- stats::coef(fit)
  pts_per_lp <- attr(tab, "scaling")$points_per_lp
  expect_equal(ax$points - min(ax$points), (c(0, b[["shape=oval"]], b[["shape=irregular"]]) -
                                            min(0, b[["shape=oval"]], b[["shape=irregular"]])) * pts_per_lp,
               tolerance = 1e-8)
  new <- data.frame(age = c(45, 60), shape = c("irregular", "round"))
  expect_equal(predict(fit, new), stats::plogis(b[["Intercept"]] + b[["age"]] * new$age +
                                                  c(b[["shape=irregular"]], 0)), tolerance = 1e-12)
  p <- nomogram_plot(fit)
  expect_s3_class(p, "ggplot")
  built <- ggplot2::ggplot_build(p)$plot$data
  expect_true(all(c("round", "oval", "irregular") %in% built$label[built$axis == "shape"]))
})

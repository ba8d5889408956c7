table_data <- function() {
  d <- rbind(cbind(golden_input("paper_train"), split = "train"),
             cbind(golden_input("paper_test"), split = "test"))
  d$label <- factor(ifelse(d$y == 1, "malignant", "benign"))
  set.seed(4)
  d$shape <- ifelse(runif(nrow(d)) < 0.3 + 0.4 * d$y, "irregular", "oval")
  d$rare <- ifelse(seq_len(nrow(d)) %% 40 == 0, "yes", "no")
  d
}

test_that("baseline_table chooses the test by normality and matches base R tests", {
  d <- table_data()
  tab <- baseline_table(d, "label", c("age", "size", "shape", "rare"), split = "split")
  expect_setequal(unique(tab$split), c("train", "test", "overall"))
  for (s in c("train", "test")) {
    ds <- d[d$split == s, ]
    a <- split(ds$age, ds$label)
    normal <- all(vapply(a, function(z) shapiro.test(z)$p.value > 0.05, logical(1)))
    row <- tab[tab$split == s & tab$variable == "age", ]
    if (normal) {
      expect_equal(row$test, "t-test")
      expect_equal(row$p_value, t.test(a[[1]], a[[2]])$p.value, tolerance = 1e-12)
      expect_equal(row$benign, sprintf("%.1f \u00b1 %.1f", mean(a$benign), sd(a$benign)))
    } else {
      expect_equal(row$test, "Mann-Whitney U")
      expect_equal(row$p_value, wilcox.test(a[[1]], a[[2]], exact = FALSE)$p.value, tolerance = 1e-12)
    }
  }
  ov <- tab[tab$split == "overall" & tab$variable == "score", ]
  expect_equal(nrow(tab[tab$split == "overall" & tab$variable == "shape", ]), 2)
  sh <- tab[tab$split == "overall" & tab$variable == "shape", ][1, ]
  expect_equal(sh$test, "chi-square")
  expect_equal(sh$p_value, chisq.test(table(d$shape, d$label))$p.value, tolerance = 1e-12)
  n_irr <- sum(d$shape == "irregular" & d$label == "benign")
  expect_equal(sh$benign, sprintf("%d (%.1f%%)", n_irr, 100 * n_irr / sum(d$label == "benign")))
  rare <- tab[tab$split == "test" & tab$variable == "rare", ][1, ]
  expect_equal(rare$test, "Fisher's exact")
  dt <- d[d$split == "test", ]
  expect_equal(rare$p_value, fisher.test(table(dt$rare, dt$label))$p.value, tolerance = 1e-12)
})

test_that("baseline_table uses median [IQR] for skewed variables", {
  set.seed(2)
  d <- data.frame(g = rep(0:1, each = 60), x = c(rexp(60), rexp(60, 0.5)))
  tab <- baseline_table(d, "g", "x")
  expect_equal(tab$summary_type, "median_iqr")
  q <- quantile(d$x[d$g == 0], c(0.25, 0.5, 0.75))
  expect_equal(tab$`0`, sprintf("%.1f [%.1f, %.1f]", q[2], q[1], q[3]))
  expect_error(baseline_table(d, "x", "g"), class = "srnomogram_error_input")
})

test_that("logistic_table equals glm univariate and multivariate Wald odds ratios", {
  d <- golden_input("paper_train")
  set.seed(8)
  d$noise <- rnorm(nrow(d))
  tab <- logistic_table(d, "y", c("score", "age", "size", "noise"))
  u <- summary(glm(y ~ age, binomial, d))$coefficients
  expect_equal(tab$uni_or[tab$term == "age"], exp(u[2, 1]), tolerance = 1e-10)
  expect_equal(tab$uni_lower[tab$term == "age"], exp(u[2, 1] - qnorm(0.975) * u[2, 2]), tolerance = 1e-10)
  expect_equal(tab$uni_p[tab$term == "age"], u[2, 4], tolerance = 1e-10)
  keep <- tab$variable[tab$uni_p < 0.05]
  expect_false("noise" %in% keep)
  m <- summary(glm(reformulate(keep, "y"), binomial, d))$coefficients
  expect_equal(tab$multi_or[match(keep, tab$term)], unname(exp(m[keep, 1])), tolerance = 1e-10)
  expect_true(is.na(tab$multi_or[tab$term == "noise"]))
  expect_match(tab$uni[1], "^[0-9.]+ \\([0-9.]+-[0-9.]+\\)$")
})

test_that("logistic_table reports odds ratios per the unit asked for, as glm on the rescaled variable", {
  d <- golden_input("paper_train")
  tab <- logistic_table(d, "y", c("score", "age", "size"), per = list(score = 0.1, age = 10))
  plain <- logistic_table(d, "y", c("score", "age", "size"))
  expect_equal(tab$unit, c(0.1, 10, 1))
  # the OR per 0.1 of score is the OR per unit of 10 * score, fitted by glm
  d10 <- transform(d, score = score * 10, age = age / 10)
  u <- summary(glm(y ~ score, binomial, d10))$coefficients
  expect_equal(tab$uni_or[1], exp(u[2, 1]), tolerance = 1e-10)
  expect_equal(tab$uni_upper[1], exp(u[2, 1] + qnorm(0.975) * u[2, 2]), tolerance = 1e-10)
  m <- summary(glm(reformulate(tab$variable[!is.na(tab$multi_or)], "y"), binomial, d10))$coefficients
  expect_equal(tab$multi_or[2], exp(m["age", 1]), tolerance = 1e-10)
  expect_equal(tab$uni_p, plain$uni_p)
  expect_equal(tab[3, ], plain[3, ], ignore_attr = TRUE)
  expect_error(logistic_table(d, "y", c("score", "age"), per = c(size = 2)), "not in", class = "srnomogram_error_input")
  expect_error(logistic_table(d, "y", "score", per = c(score = -1)), "named positive", class = "srnomogram_error_input")
  expect_error(logistic_table(d, "y", "score", per = 0.1), "named positive", class = "srnomogram_error_input")
  d$grp <- factor(ifelse(d$age > 50, "old", "young"))
  expect_error(logistic_table(d, "y", c("score", "grp"), per = c(grp = 2)), "not numeric", class = "srnomogram_error_input")
})

test_that("logistic_table warns on separation and rejects a non-binary outcome", {
  d <- golden_input("small")
  d$sep <- d$y * 10 + runif(nrow(d))
  expect_warning(logistic_table(d, "y", c("sep")), class = "srnomogram_warning_separation")
  d$y[1] <- 5
  expect_error(logistic_table(d, "y", "age"), class = "srnomogram_error_input")
})

test_that("logistic_table rejects a constant predictor and keeps collinear terms as NA rows", {
  set.seed(3)
  d <- data.frame(y = rep(0:1, 30), age = rnorm(60, 50, 10), const = 1)
  expect_error(logistic_table(d, "y", c("age", "const")), class = "srnomogram_error_input")
  d$age2 <- 2 * d$age
  d$y <- as.integer(d$age + rnorm(60, 0, 3) > 50)
  expect_warning(tab <- logistic_table(d, "y", c("age", "age2")), class = "srnomogram_warning_aliased")
  expect_equal(tab$term, c("age", "age2"))
  ref <- summary(stats::glm(y ~ age, binomial, d))$coefficients
  expect_equal(tab$multi_or[1], exp(ref[2, 1]), tolerance = 1e-10)
  expect_true(is.na(tab$multi_or[2]))
})

test_that("logistic_table's conf_level sets the Wald intervals (equal to confint.default), not the entry rule", {
  d <- golden_input("paper_train")
  tab90 <- logistic_table(d, "y", c("score", "age"), conf_level = 0.9)
  tab95 <- logistic_table(d, "y", c("score", "age"))
  ci <- exp(confint.default(glm(y ~ age, binomial, d), level = 0.9)["age", ])
  expect_equal(c(tab90$uni_lower[2], tab90$uni_upper[2]), unname(ci), tolerance = 1e-8)
  expect_equal(tab90$uni_or, tab95$uni_or)
  expect_equal(tab90$multi_p, tab95$multi_p)
  expect_true(all(tab90$uni_upper - tab90$uni_lower < tab95$uni_upper - tab95$uni_lower))
  expect_error(logistic_table(d, "y", "age", conf_level = 95), "conf_level", class = "srnomogram_error_input")
})

test_that("logistic_table names factor, character and logical terms variable=level, read off the model", {
  set.seed(12)
  n <- 400
  d <- data.frame(shape = factor(sample(c("round", "oval +", "very irregular (spiculated)"), n, TRUE),
                                 levels = c("round", "oval +", "very irregular (spiculated)")),
                  size = sample(c("1", "2"), n, TRUE),  # character: glm names its level "2" `size2` ...
                  size2 = rnorm(n),                     # ... as it names this numeric variable
                  calcified = runif(n) < 0.4, stringsAsFactors = FALSE)
  d$y <- rbinom(n, 1, plogis(-1.5 + 1.2 * (d$shape == "oval +") + 2 * (d$shape != "round" & d$shape != "oval +") +
                                1 * (d$size == "2") + 0.8 * d$size2 + 1 * d$calcified))
  vars <- c("shape", "size", "size2", "calcified")
  tab <- logistic_table(d, "y", vars)
  expect_equal(tab$term, c("shape=oval +", "shape=very irregular (spiculated)", "size=2", "size2", "calcified=TRUE"))
  expect_equal(tab$variable, c("shape", "shape", "size", "size2", "calcified"))
  expect_equal(tab$level, c("oval +", "very irregular (spiculated)", "2", NA, "TRUE"))
  expect_equal(tab$unit, c(NA, NA, NA, 1, NA))
  # the odds ratios are glm's, taken by position (glm's own names are ambiguous here)
  for (v in vars) {
    cf <- coef(glm(reformulate(v, "y"), binomial, d))[-1]
    expect_equal(tab$uni_or[tab$variable == v], unname(exp(cf)), tolerance = 1e-12)
  }
  fit <- glm(y ~ shape + size + size2 + calcified, binomial, d)
  full <- coef(fit)[-1]
  expect_equal(sum(names(full) == "size2"), 2L)
  expect_true(all(tab$uni_p < 0.05))
  expect_equal(tab$multi_or, unname(exp(full)), tolerance = 1e-12)
  expect_equal(tab$multi_p, unname(summary(fit)$coefficients[-1, 4]), tolerance = 1e-12)
})

test_that("logistic_table gives odds ratios per level against the reference for ordered factors and under any options(contrasts)", {
  set.seed(13)
  d <- data.frame(g = sample(c("lo", "mid", "hi"), 300, TRUE), x = rnorm(300))
  d$y <- rbinom(300, 1, plogis(-1 + (d$g == "mid") + 2 * (d$g == "hi") + d$x))
  d$g <- factor(d$g, levels = c("lo", "mid", "hi"), ordered = TRUE)
  withr::local_options(contrasts = c("contr.sum", "contr.poly"))
  tab <- logistic_table(d, "y", c("g", "x"))
  expect_equal(tab$term, c("g=mid", "g=hi", "x"))
  ref <- coef(glm(y ~ factor(g, ordered = FALSE) + x, binomial, d, contrasts = list(`factor(g, ordered = FALSE)` = "contr.treatment")))[-1]
  expect_equal(tab$multi_or, unname(exp(ref)), tolerance = 1e-12)
})

test_that("logistic_table warns when missing data take a factor's reference out of the multivariate model", {
  set.seed(11)
  n <- 300
  shape <- factor(sample(c("a", "b", "c"), n, replace = TRUE), levels = c("a", "b", "c"))
  x <- rnorm(n)
  y <- rbinom(n, 1, plogis(-1 + 1.5 * (shape == "c") + 0.8 * (shape == "b") + 1.2 * x))
  d <- data.frame(y = y, shape = shape, x = x)
  d$x[d$shape == "a"] <- NA  # every reference-level row lacks x
  quiet_missing <- function(expr) withCallingHandlers(expr, srnomogram_warning_missing = function(w) invokeRestart("muffleWarning"))
  expect_warning(tab <- quiet_missing(logistic_table(d, "y", c("shape", "x"))), class = "srnomogram_warning_reference")
  # the multivariate odds ratio of shape=c is then against b, as glm on the complete rows gives it
  cc <- d[stats::complete.cases(d), ]
  fit <- stats::glm(y ~ shape + x, binomial, data = cc)
  expect_equal(tab$multi_or[tab$term == "shape=c"], unname(exp(coef(fit)["shapec"])), tolerance = 1e-12)
  # without missing data, no such warning
  d2 <- data.frame(y = y, shape = shape, x = x)
  expect_no_warning(logistic_table(d2, "y", c("shape", "x")), class = "srnomogram_warning_reference")
})

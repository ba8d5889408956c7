test_that("hl_test equals ResourceSelection::hoslem.test on every golden case", {
  ex <- utils::read.csv(test_path("fixtures", "expected_hoslem.csv"), stringsAsFactors = FALSE)
  expect_equal(nrow(ex), 16)
  for (i in seq_len(nrow(ex))) {
    d <- golden_input(ex$case[i])
    r <- suppressWarnings(hl_test(d$y, d[[ex$predictor[i]]], g = ex$g[i]))
    expect_s3_class(r, "htest")
    expect_equal(unname(r$parameter), ex$df[i], tolerance = 0, label = paste(ex$case[i], ex$predictor[i], ex$g[i]))
    if (is.na(ex$statistic[i])) {
      expect_true(is.na(r$statistic))
      expect_true(is.na(r$p.value))
    } else {
      expect_lt(abs(unname(r$statistic) - ex$statistic[i]), 1e-10)
      expect_lt(abs(r$p.value - ex$p.value[i]), 1e-10)
    }
  }
})

test_that("hl_test returns observed and expected tables that sum to the data", {
  d <- golden_input("paper_train")
  r <- hl_test(d$y, d$risk, g = 10)
  expect_equal(dim(r$observed), c(10L, 2L))
  expect_equal(sum(r$observed[, 2]), sum(d$y))
  expect_equal(sum(r$expected[, 2]), sum(d$risk), tolerance = 1e-10)
  expect_equal(unname(rowSums(r$observed)), unname(rowSums(r$expected)), tolerance = 1e-10)
})

test_that("hl_test matches a hand computation of the statistic", {
  set.seed(3)
  p <- runif(50)
  y <- rbinom(50, 1, p)
  r <- hl_test(y, p, g = 5)
  grp <- cut(p, unique(quantile(p, seq(0, 1, 0.2))), include.lowest = TRUE)
  o1 <- tapply(y, grp, sum); e1 <- tapply(p, grp, sum)
  o0 <- tapply(1 - y, grp, sum); e0 <- tapply(1 - p, grp, sum)
  expect_equal(unname(r$statistic), sum((o1 - e1)^2 / e1 + (o0 - e0)^2 / e0), tolerance = 1e-12)
  expect_equal(r$p.value, pchisq(unname(r$statistic), 3, lower.tail = FALSE), tolerance = 1e-12)
})

test_that("hl_test warns when ties allow fewer groups than g", {
  d <- golden_input("ties")
  expect_warning(hl_test(d$y, d$score, g = 10), class = "srnomogram_warning_groups")
  expect_no_warning(hl_test(d$y, d$risk, g = 10))
})

test_that("hl_test rejects bad input with classed errors", {
  expect_error(hl_test(c(0, 1, 2, 1), c(0.1, 0.2, 0.3, 0.4)), class = "srnomogram_error_input")
  expect_error(hl_test(rep(0:1, 10), runif(20), g = 2), class = "srnomogram_error_input")
  expect_error(hl_test(rep(0:1, 10), runif(21)), class = "srnomogram_error_input")
  expect_error(hl_test(rep(0:1, 10), c(1.5, runif(19))), "probabilities", class = "srnomogram_error_input")
  y <- rep(0:1, 20); p <- seq(0.01, 0.99, length.out = 40); p[3] <- NA
  expect_warning(r <- hl_test(y, p, g = 5), class = "srnomogram_warning_missing")
  expect_equal(sum(r$observed), 39)
})

test_that("engine = 'ResourceSelection' without the package is a classed error saying how to install it", {
  skip_if(requireNamespace("ResourceSelection", quietly = TRUE), "ResourceSelection is installed")
  d <- golden_input("small")
  expect_error(hl_test(d$y, d$risk, engine = "ResourceSelection"),
               'install.packages("ResourceSelection")', fixed = TRUE, class = "srnomogram_error_engine")
  expect_error(hl_test(d$y, d$risk, engine = "nope"))
})

test_that("the default engine equals ResourceSelection::hoslem.test called through engine =", {
  skip_if_not_installed("ResourceSelection")
  ex <- utils::read.csv(test_path("fixtures", "expected_hoslem.csv"), stringsAsFactors = FALSE)
  for (i in seq_len(nrow(ex))) {
    d <- golden_input(ex$case[i])
    label <- paste(ex$case[i], ex$predictor[i], ex$g[i])
    own <- suppressWarnings(hl_test(d$y, d[[ex$predictor[i]]], g = ex$g[i]))
    ref <- suppressWarnings(hl_test(d$y, d[[ex$predictor[i]]], g = ex$g[i], engine = "ResourceSelection"))
    expect_s3_class(ref, "htest")
    expect_identical(ref$engine, "ResourceSelection")
    expect_identical(ref$method, own$method)
    expect_identical(ref$data.name, own$data.name)
    expect_identical(ref$groups, own$groups, label = label)
    expect_equal(unname(ref$parameter), unname(own$parameter), tolerance = 0, label = label)
    expect_identical(is.na(ref$statistic), is.na(own$statistic), label = label)
    if (!is.na(own$statistic)) {
      expect_lt(abs(unname(ref$statistic) - unname(own$statistic)), 1e-10, label = label)
      expect_lt(abs(ref$p.value - own$p.value), 1e-10, label = label)
    }
    expect_lt(max(abs(ref$observed - own$observed)), 1e-10, label = label)
    expect_lt(max(abs(ref$expected - own$expected)), 1e-10, label = label)
  }
  expect_output(print(hl_test(golden_input("small")$y, golden_input("small")$risk, g = 5,
                              engine = "ResourceSelection")), "Hosmer and Lemeshow")
})

test_that("hl_test's old argument name prob still works, with a deprecation warning, and one row comes back", {
  d <- golden_input("small")
  new <- hl_test(d$y, d$risk, g = 10)
  expect_warning(old <- hl_test(d$y, prob = d$risk, g = 10), class = "srnomogram_warning_deprecated")
  expect_identical(old$statistic, new$statistic)
  expect_identical(old$data.name, "d$y, d$risk")
  row <- as.data.frame(new)
  expect_identical(nrow(row), 1L)
  expect_identical(row$statistic, unname(new$statistic))
  expect_identical(row$df, unname(as.numeric(new$parameter)))
  expect_identical(row$p_value, new$p.value)
  expect_s3_class(new, "htest")
})

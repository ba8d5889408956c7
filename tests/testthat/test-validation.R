test_that("validate_nomogram equals rms::validate under the same seed and keeps the caller's RNG", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  set.seed(99); before <- runif(1); set.seed(99)
  v <- validate_nomogram(fit, B = 40, seed = 5)
  expect_identical(runif(1), before)
  expect_null(getOption("datadist"))
  withr::local_options(datadist = rms::datadist(d))
  ref_fit <- rms::lrm(y ~ score + age + size, data = d, x = TRUE, y = TRUE)
  set.seed(5)
  utils::capture.output(ref <- rms::validate(ref_fit, method = "boot", B = 40))
  ref <- unclass(ref)
  tab <- v$table
  cols <- c("index.orig", "training", "test", "optimism", "index.corrected", "n")
  expect_identical(tab$index[seq_len(nrow(ref))], rownames(ref))
  expect_true(all(c("Dxy", "R2", "Intercept", "Slope", "Emax", "D", "U", "Q", "B") %in% tab$index))
  expect_equal(as.matrix(tab[seq_len(nrow(ref)), cols]), ref[, cols], tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_identical(v$B, 40L)
  expect_identical(v$n_obs, nrow(d))
})

test_that("the AUC row is Dxy/2 + 1/2 and its apparent value is roc_auc's AUC on the training data", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  v <- validate_nomogram(fit, B = 20, seed = 1)
  tab <- v$table
  dxy <- tab[tab$index == "Dxy", ]
  auc <- tab[tab$index == "AUC", ]
  for (col in c("index.orig", "training", "test", "index.corrected")) {
    expect_equal(auc[[col]], dxy[[col]] / 2 + 0.5, tolerance = 1e-14)
  }
  expect_equal(auc$optimism, dxy$optimism / 2, tolerance = 1e-14)
  expect_equal(auc$index.orig - auc$optimism, auc$index.corrected, tolerance = 1e-12)
  expect_equal(auc$index.orig, roc_auc(d$y, predict(fit))$auc, tolerance = 1e-12)
  s <- summary(v)
  expect_equal(s$auc_corrected, auc$index.corrected)
  expect_equal(s$brier_apparent, mean((predict(fit) - d$y)^2), tolerance = 1e-12)
  expect_identical(as.data.frame(v), tab)
  expect_output(print(v), "optimism-corrected")
  expect_output(print(v), "B = 20, seed 1")
})

test_that("seed = NULL draws from the current stream, so set.seed() reproduces it", {
  fit <- fit_nomogram(y ~ score + age, golden_input("small"))
  set.seed(3)
  a <- validate_nomogram(fit, B = 15, seed = NULL)
  set.seed(3)
  b <- validate_nomogram(fit, B = 15, seed = NULL)
  expect_identical(a$table, b$table)
  expect_output(print(a), "current RNG stream")
  expect_identical(validate_nomogram(fit, B = 15, seed = 3)$table, a$table)
})

test_that("bad fit, B or seed give classed one-line errors", {
  fit <- fit_nomogram(y ~ score + age, golden_input("small"))
  expect_error(validate_nomogram(fit, B = 10), "must be given", class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = 0, seed = 1), "whole number >= 1", class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = 2.5, seed = 1), class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = "10", seed = 1), class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = 10, seed = 1.5), "whole number or", class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = 10, seed = c(1, 2)), class = "srnomogram_error_input")
  expect_error(validate_nomogram(fit, B = 10, seed = NA), class = "srnomogram_error_input")
  expect_error(validate_nomogram(list(), B = 10, seed = 1), class = "srnomogram_error_input")
})

test_that("plot shows the apparent and the corrected value of each index as a ggplot", {
  fit <- fit_nomogram(y ~ score + age + size, golden_input("paper_train"))
  v <- validate_nomogram(fit, B = 10, seed = 2)
  p <- plot(v, indexes = c("AUC", "Slope"))
  expect_s3_class(p, "ggplot")
  pts <- ggplot2::layer_data(p, 2)
  expect_equal(sort(pts$x), sort(c(v$table$index.orig[v$table$index %in% c("AUC", "Slope")],
                                   v$table$index.corrected[v$table$index %in% c("AUC", "Slope")])))
  expect_error(plot(v, indexes = "C"), class = "srnomogram_error_input")
})

test_that("validate_nomogram with one patient per row equals the row bootstrap under the same seed", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  rows <- validate_nomogram(fit, B = 30, seed = 11)
  # ids whose sorted order is not row order: the codes follow first appearance, as rms needs
  pts <- validate_nomogram(fit, B = 30, seed = 11, cluster = sprintf("p%04d", rev(seq_len(nrow(d)))))
  expect_identical(pts$table, rows$table)
  expect_identical(pts$n_clusters, nrow(d))
})

test_that("the patient bootstrap of twinned rows is the row bootstrap of the patients (whole patients drawn)", {
  # every observation twice, the two copies one patient: rms draws sample(n_patients) and takes
  # both rows of each drawn patient, and the indexes below do not change when every row of a
  # sample is doubled, so the result must equal the row bootstrap of the original data
  d <- golden_input("paper_train")
  twin <- d[rep(seq_len(nrow(d)), each = 2), ]
  fit1 <- fit_nomogram(y ~ score + age + size, d)
  fit2 <- fit_nomogram(y ~ score + age + size, twin)
  ref <- validate_nomogram(fit1, B = 25, seed = 3)$table
  pat <- validate_nomogram(fit2, B = 25, seed = 3, cluster = rep(seq_len(nrow(d)), each = 2))
  expect_identical(pat$n_clusters, nrow(d))
  keep <- c("Dxy", "R2", "Intercept", "Slope", "Emax", "B", "AUC")
  cols <- c("index.orig", "training", "test", "optimism", "index.corrected")
  expect_equal(as.matrix(pat$table[match(keep, pat$table$index), cols]),
               as.matrix(ref[match(keep, ref$index), cols]), tolerance = 1e-7, ignore_attr = TRUE)
  # a row bootstrap of the twins lets a row's copy be in the training sample: more optimism-free fit
  lesion <- validate_nomogram(fit2, B = 25, seed = 3)$table
  expect_false(isTRUE(all.equal(lesion$optimism[lesion$index == "AUC"], ref$optimism[ref$index == "AUC"])))
})

test_that("cluster must give one patient per observation of the fit, without NA", {
  d <- golden_input("small")
  fit <- fit_nomogram(y ~ risk, d)
  expect_error(validate_nomogram(fit, B = 5, seed = 1, cluster = 1:3), class = "srnomogram_error_input",
               regexp = "one patient per observation")
  expect_error(validate_nomogram(fit, B = 5, seed = 1, cluster = c(NA, seq_len(nrow(d) - 1))),
               class = "srnomogram_error_input", regexp = "missing for observation 1")
})

test_that("save_figure writes a 300 dpi PNG and a PDF atomically", {
  dir <- withr::local_tempdir()
  p <- ggplot2::ggplot(data.frame(x = 1:3, y = 1:3), ggplot2::aes(x, y)) + ggplot2::geom_point() +
    theme_srnomogram()
  out <- save_figure(p, file.path(dir, "fig.png"), width = 2, height = 1.5)
  expect_equal(basename(out), c("fig.png", "fig.pdf"))
  expect_true(all(file.exists(out)))
  png <- readBin(out[1], "raw", 40)
  # IHDR width/height in pixels: 2 in x 300 dpi = 600, 1.5 in = 450
  w <- sum(as.integer(png[17:20]) * 256^(3:0)); h <- sum(as.integer(png[21:24]) * 256^(3:0))
  expect_equal(c(w, h), c(600, 450))
  expect_equal(rawToChar(readBin(out[2], "raw", 4)), "%PDF")
  expect_length(list.files(dir, all.files = TRUE, no.. = TRUE), 2)
})

test_that("every figure function returns a ggplot that renders", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  set.seed(1000)
  dc <- decision_curve(y ~ score + age + size, d, bootstraps = 5)
  figs <- list(nomogram_plot(fit, labels = c(score = "Radiomics score")),
               calibration_plot(calibrate_nomogram(fit, B = 5, seed = 1)),
               calibration_plot(calibrate_nomogram(fit, newdata = golden_input("paper_test"))),
               dca_plot(dc), roc_plot(roc_auc(d$y, d$risk)))
  dir <- withr::local_tempdir()
  for (i in seq_along(figs)) {
    expect_s3_class(figs[[i]], "ggplot")
    save_figure(figs[[i]], file.path(dir, paste0("f", i)), width = 4, height = 4)
  }
  expect_length(list.files(dir, pattern = "png$"), 5)
  expect_error(calibration_plot(1), class = "srnomogram_error_input")
})

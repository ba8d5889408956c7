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

test_that("save_figure writes only the formats asked for", {
  dir <- withr::local_tempdir()
  p <- ggplot2::ggplot(data.frame(x = 1:3, y = 1:3), ggplot2::aes(x, y)) + ggplot2::geom_point()
  expect_equal(basename(save_figure(p, file.path(dir, "f"), 2, 2, formats = "png")), "f.png")
  expect_equal(list.files(dir), "f.png")
  expect_error(save_figure(p, file.path(dir, "g"), formats = "svg"))
})

layer_of <- function(p, geom) {
  k <- which(vapply(p$layers, function(l) class(l$geom)[1], "") == geom)
  do.call(rbind, lapply(k, function(j) ggplot2::layer_data(p, j)))
}

test_that("nomogram_plot draws the same axes from the fit and from its points table", {
  d <- golden_input("paper_train")
  fit <- fit_nomogram(y ~ score + age + size, d)
  labels <- c(score = "Radiomics score", age = "Age (years)")
  from_fit <- nomogram_plot(fit, labels = labels)
  # the table as a CSV pin holds it: numbers written and read back
  csv <- withr::local_tempfile(fileext = ".csv")
  utils::write.csv(nomogram_points_table(fit), csv, row.names = FALSE)
  from_table <- nomogram_plot(utils::read.csv(csv), labels = labels)
  expect_equal(unique(from_table$data$axis), unique(from_fit$data$axis))
  a <- from_fit$data
  b <- from_table$data
  risk <- "Risk of malignancy"
  # predictor, Points and Total Points axes: identical (15 significant digits through the CSV)
  expect_equal(b$x[b$axis != risk], a$x[a$axis != risk], tolerance = 1e-13)
  expect_equal(b$label[b$axis != risk], a$label[a$axis != risk])
  # risk axis: exact from the scaling rows; rms::nomogram interpolates on a grid (within 1e-3 points)
  expect_equal(b$label[b$axis == risk], a$label[a$axis == risk])
  expect_lt(max(abs(b$x[b$axis == risk] - a$x[a$axis == risk])), 1e-3)
  sc <- attr(nomogram_points_table(fit), "scaling")
  tot <- max(nomogram_points_table(fit)$points[nomogram_points_table(fit)$axis == "total_points"])
  r <- as.numeric(b$label[b$axis == risk])
  expect_equal(b$x[b$axis == risk], (stats::qlogis(r) - sc$intercept) * sc$points_per_lp * 100 / tot,
               tolerance = 1e-12)
  expect_error(nomogram_plot(utils::read.csv(csv)[1:5, ]), class = "srnomogram_error_input")
})

test_that("calibration_plot overlays several models, each line the model's own table", {
  d <- golden_input("paper_train")
  te <- golden_input("paper_test")
  fits <- list(Clinical = fit_nomogram(y ~ age + size, d),
               Nomogram = fit_nomogram(y ~ score + age + size, d))
  boot <- lapply(fits, calibrate_nomogram, B = 10, seed = 1)
  p <- calibration_plot(boot, title = "Training set")
  lines <- layer_of(p, "GeomLine")
  cols <- c(Clinical = "#0072B2", Nomogram = "#D55E00")
  for (m in names(fits)) {
    tab <- boot[[m]]$table[order(boot[[m]]$table$predicted), ]
    got <- lines[lines$colour == cols[[m]] & lines$linetype == "solid", ]
    expect_equal(got$x[order(got$x)], tab$predicted, tolerance = 1e-12)
    expect_equal(got$y[order(got$x)], tab$bias_corrected, tolerance = 1e-12)
    got <- lines[lines$colour == cols[[m]] & lines$linetype == "dotted", ]
    expect_equal(got$y[order(got$x)], tab$apparent, tolerance = 1e-12)
  }
  expect_match(p$labels$subtitle, sprintf("Clinical %.3f, Nomogram %.3f", boot$Clinical$mae, boot$Nomogram$mae), fixed = TRUE)
  ext <- lapply(fits, calibrate_nomogram, newdata = te)
  p <- calibration_plot(ext)
  # the subtitle gives calibration-in-the-large (the offset intercept), never val.prob's recalibration intercept
  citl <- unname(coef(glm(te$y ~ 1 + offset(qlogis(predict(fits$Nomogram, te))), family = binomial)))
  expect_match(p$labels$subtitle, sprintf("Nomogram: CITL %.3f, slope %.3f; HL", citl, ext$Nomogram$slope), fixed = TRUE)
  expect_error(calibration_plot(list(a = boot$Clinical, b = ext$Nomogram)), "same mode", class = "srnomogram_error_input")
  # a table row without the Hosmer-Lemeshow test (the study's small sets): the subtitle leaves HL out
  info <- data.frame(mode = "external", n = nrow(te), mae = 0.05, citl = citl, slope = ext$Nomogram$slope)
  rebuilt <- calibration_from_table(ext$Nomogram$table, info, data.frame(statistic = NA_real_, df = NA_real_, p_value = NA_real_), NULL)
  expect_null(rebuilt$hl)
  sub <- calibration_plot(list(Nomogram = rebuilt))$labels$subtitle
  expect_match(sub, sprintf("CITL %.3f, slope %.3f", citl, ext$Nomogram$slope), fixed = TRUE)
  expect_no_match(sub, "Hosmer|HL")
  expect_error(calibration_plot(unname(boot)), "unique names", class = "srnomogram_error_input")
})

test_that("roc_plot and dca_plot label the intervals with their level", {
  d <- golden_input("paper_train")
  p <- roc_plot(d, outcome = "y", scores = c(Risk = "risk"), conf_level = 0.9)
  r <- roc_auc(d$y, d$risk, conf_level = 0.9)
  expect_equal(levels(p$data$label), sprintf("Risk (AUC %.3f, 90%% CI %.3f\u2013%.3f)", r$auc, r$lower, r$upper))
  set.seed(1000)
  dc <- decision_curve(y ~ risk, d, fitted_risk = TRUE, bootstraps = 5, conf_level = 0.9)
  expect_equal(dca_plot(dc)$labels$caption, "Bands: 90% bootstrap percentile intervals (5 resamples)")
  expect_null(dca_plot(dc, show_ci = FALSE)$labels$caption)
  # rebuilt from its table as the study's board holds it (curve names; "None" read back as NA)
  tab <- as.data.frame(dc)
  tab$curve <- ifelse(tab$model == "None", NA, tab$model)
  tab$model <- "nomogram"
  tab$conf_level <- 0.9
  back <- decision_curve_from_table(tab, bootstraps = 5)
  expect_equal(layer_of(dca_plot(back), "GeomLine"), layer_of(dca_plot(dc), "GeomLine"))
  expect_equal(layer_of(dca_plot(back), "GeomRibbon"), layer_of(dca_plot(dc), "GeomRibbon"))
  expect_equal(dca_plot(back)$labels$caption, dca_plot(dc)$labels$caption)
})

test_that("the study's figures take model labels from the model_labels pin by id, never by position", {
  board <- withr::local_tempdir()
  pin <- function(name, df) {
    v <- file.path(board, name, "20240101T000000Z-aaaaa")
    dir.create(v, recursive = TRUE)
    utils::write.csv(df, file.path(v, paste0(name, ".csv")), row.names = FALSE)
    yaml::write_yaml(list(api_version = 1L, created = "20240101T000000Z", file = paste0(name, ".csv"), type = "csv",
                          title = name, user = list(seed = 0)), file.path(v, "data.txt"))
  }
  # Table 2's order (model_aucs) differs from the label pin's rows: a positional pairing would swap them
  pin("model_aucs", data.frame(model = c("or_lr", "sr_svm"), train_auc = c(0.8, 0.7)))
  pin("model_labels", data.frame(model = c("sr_svm", "or_lr", "clinical"), label = c("SR-SVM", "OR-LR", "Clinical")))
  labs <- study_labels(board, list(cohort = list(clinical_labels = list(age = "Age (years)"))), c(or_lr = "Mine"))
  expect_equal(unname(labs[c("sr_svm", "clinical", "age", "or_lr", "nomogram")]),
               c("SR-SVM", "Clinical", "Age (years)", "Mine", "Nomogram"))
  expect_error(board_figure(board, "figure4_loss"), "loss_history_<model>", class = "srnomogram_error_input")
})

# BCG vaccine trials (Colditz et al. 1994), as metafor's dat.bcg: TB cases and non-cases in the
# vaccinated (tpos, tneg) and control (cpos, cneg) arms of 13 trials.
bcg <- data.frame(
  author = c("Aronson", "Ferguson & Simes", "Rosenthal et al", "Hart & Sutherland", "Frimodt-Moller et al",
             "Stein & Aronson", "Vandiviere et al", "TPT Madras", "Coetzee & Berjak", "Rosenthal et al",
             "Comstock et al", "Comstock & Webster", "Comstock et al"),
  tpos = c(4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27),
  tneg = c(119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886),
  cpos = c(11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29),
  cneg = c(128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825))
# log risk ratio and its sampling variance (metafor::escalc(measure = "RR"), written out)
bcg$yi <- log((bcg$tpos / (bcg$tpos + bcg$tneg)) / (bcg$cpos / (bcg$cpos + bcg$cneg)))
bcg$vi <- 1 / bcg$tpos - 1 / (bcg$tpos + bcg$tneg) + 1 / bcg$cpos - 1 / (bcg$cpos + bcg$cneg)

# REML by its fixed point (Viechtbauer 2005, eq. 10) and the Knapp-Hartung interval, by hand.
reml_by_hand <- function(y, v, level = 0.95) {
  tau2 <- 0
  for (i in 1:10000) {
    w <- 1 / (v + tau2)
    mu <- sum(w * y) / sum(w)
    new <- max(0, sum(w^2 * ((y - mu)^2 - v)) / sum(w^2) + 1 / sum(w))
    if (abs(new - tau2) < 1e-14) break
    tau2 <- new
  }
  w <- 1 / (v + tau2)
  mu <- sum(w * y) / sum(w)
  k <- length(y)
  se <- sqrt(sum(w * (y - mu)^2) / ((k - 1) * sum(w)))
  crit <- stats::qt(1 - (1 - level) / 2, k - 1)
  w0 <- 1 / v
  s2 <- (k - 1) * sum(w0) / (sum(w0)^2 - sum(w0^2))
  list(estimate = mu, lower = mu - crit * se, upper = mu + crit * se,
       pi_lower = mu - crit * sqrt(tau2 + se^2), pi_upper = mu + crit * sqrt(tau2 + se^2),
       tau2 = tau2, i2 = 100 * tau2 / (tau2 + s2))
}

rma_reference <- function(y, se, back = identity, level = 95) {
  fit <- metafor::rma(yi = y, sei = se, method = "REML", test = "knha", level = level)
  pr <- predict(fit)
  c(estimate = back(pr$pred), lower = back(pr$ci.lb), upper = back(pr$ci.ub), pi_lower = back(pr$pi.lb),
    pi_upper = back(pr$pi.ub), tau2 = fit$tau2, i2 = fit$I2, k = fit$k)
}

as_vector <- function(row) unlist(summary(row)[c("estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2", "k")])

test_that("meta_pool reproduces the published REML/Knapp-Hartung analysis of the BCG trials and its fixed point", {
  res <- meta_pool(bcg$yi, sqrt(bcg$vi), centre = bcg$author)
  # Viechtbauer (2010) and metafor's documentation: tau^2 = 0.3132, I^2 = 92.22%, -0.7145 (-1.1084, -0.3206),
  # prediction interval (-1.9960, 0.5670)
  expect_equal(res$tau2, 0.3132, tolerance = 5e-4 / 0.3132)
  expect_equal(res$i2, 92.22, tolerance = 1e-4)
  expect_equal(c(res$estimate, res$lower, res$upper, res$pi_lower, res$pi_upper),
               c(-0.7145, -1.1084, -0.3206, -1.9960, 0.5670), tolerance = 1e-4)
  hand <- reml_by_hand(bcg$yi, bcg$vi)
  expect_equal(as_vector(res)[1:7], unlist(hand)[names(as_vector(res))[1:7]], tolerance = 1e-6)
  expect_equal(res$k, 13L)
  # two trials of one author keep their own rows
  expect_equal(attr(res, "centres")$centre[c(3, 10)], c("Rosenthal et al", "Rosenthal et al 1"))
})

test_that("meta_pool equals metafor::rma(REML, knha) and predict() to 1e-9, on both scales", {
  set.seed(42)
  y <- rnorm(7, 0.1, 0.3)
  se <- runif(7, 0.05, 0.3)
  res <- meta_pool(y, se)
  expect_s3_class(res, "srnomogram_meta")
  expect_equal(as_vector(res), rma_reference(y, se), tolerance = 1e-9)
  # AUC: pooled on the logit scale, returned as AUCs; tau2 on the logit scale
  auc <- c(0.81, 0.76, 0.88, 0.72, 0.79)
  se_auc <- c(0.031, 0.042, 0.025, 0.045, 0.036)
  se_logit <- auc_logit_se(auc, se = se_auc)
  expect_equal(se_logit, se_auc / (auc * (1 - auc)), tolerance = 1e-15)
  res <- meta_pool(auc, se_logit, scale = "logit", conf_level = 0.9)
  expect_equal(as_vector(res), rma_reference(qlogis(auc), se_logit, plogis, level = 90), tolerance = 1e-9)
  expect_true(all(res$pi_lower < res$lower & res$upper < res$pi_upper))
  expect_output(print(res), "REML, Knapp-Hartung; 90% CI")
  expect_equal(as.data.frame(res, what = "centres")$weight,
               unname(weights(metafor::rma(yi = qlogis(auc), sei = se_logit, method = "REML", test = "knha"))),
               tolerance = 1e-9)
})

test_that("auc_logit_se from a confidence interval is its half-width on the logit scale over z", {
  lo <- plogis(qlogis(0.8) - 1.959964 * 0.2)
  hi <- plogis(qlogis(0.8) + 1.959964 * 0.2)
  expect_equal(auc_logit_se(0.8, lower = lo, upper = hi), 0.2 * 1.959964 / qnorm(0.975), tolerance = 1e-12)
  expect_error(auc_logit_se(1, se = 0.01), class = "srnomogram_error_input")
  expect_error(auc_logit_se(0.8), class = "srnomogram_error_input")
})

iecv_table <- function() {
  set.seed(7)
  k <- 5
  d <- expand.grid(centre = paste0("C", seq_len(k)), estimand = c("auc", "citl", "slope", "delta_auc"),
                   model = c("sr_nomogram", "clinical"), stringsAsFactors = FALSE)
  d$estimate <- ifelse(d$estimand == "auc", runif(nrow(d), 0.7, 0.9),
                       ifelse(d$estimand == "slope", rnorm(nrow(d), 1, 0.15), rnorm(nrow(d), 0, 0.2)))
  d$se <- runif(nrow(d), 0.08, 0.25)
  d[, c("model", "estimand", "centre", "estimate", "se")]
}

test_that("iecv_pool pools every model and estimand as a direct metafor::rma call does", {
  d <- iecv_table()
  res <- iecv_pool(d)
  expect_s3_class(res, c("srnomogram_iecv", "srnomogram_meta", "data.frame"))
  expect_equal(names(summary(res)), c("model", "estimand", "estimate", "lower", "upper", "pi_lower", "pi_upper",
                                      "tau2", "i2", "k"))
  expect_equal(nrow(res), 8L)
  expect_equal(res$model, rep(c("sr_nomogram", "clinical"), each = 4))
  for (i in seq_len(nrow(res))) {
    rows <- d$model == res$model[i] & d$estimand == res$estimand[i]
    ref <- if (res$estimand[i] == "auc") rma_reference(qlogis(d$estimate[rows]), d$se[rows], plogis) else
      rma_reference(d$estimate[rows], d$se[rows])
    expect_equal(as_vector(res[i, ]), ref, tolerance = 1e-9)
  }
  cen <- as.data.frame(res, what = "centres")
  expect_equal(nrow(cen), nrow(d))
  expect_equal(cen$estimate, d$estimate)
})

test_that("iecv_pool: one centre gives an NA row with a warning, two centres pool with wide intervals", {
  d <- iecv_table()
  two <- d[d$centre %in% c("C1", "C2") & d$estimand == "citl", ]
  one <- d[d$centre == "C1" & d$estimand == "slope" & d$model == "clinical", ]
  expect_warning(res <- iecv_pool(rbind(two, one)), class = "srnomogram_warning_single_centre")
  single <- res[res$estimand == "slope", ]
  expect_equal(single$k, 1L)
  expect_true(all(is.na(unlist(single[c("estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2")]))))
  pair <- res[res$estimand == "citl" & res$model == "clinical", ]
  rows <- two$model == "clinical"
  expect_equal(as_vector(pair), rma_reference(two$estimate[rows], two$se[rows]), tolerance = 1e-9)
  # the Knapp-Hartung interval and the prediction interval use t on k - 1 = 1 df (12.7 at 95%)
  hand <- reml_by_hand(two$estimate[rows], two$se[rows]^2)
  expect_equal(as_vector(pair)[1:7], unlist(hand)[names(as_vector(pair))[1:7]], tolerance = 1e-6)
})

test_that("bad centre rows are one-line input errors naming the row", {
  d <- iecv_table()
  bad <- d
  bad$se[3] <- 0
  expect_error(iecv_pool(bad), "se.*> 0.*row 3", class = "srnomogram_error_input")
  bad$se[3] <- NA
  expect_error(iecv_pool(bad), "row 3", class = "srnomogram_error_input")
  bad <- d
  bad$estimate[2] <- 1
  expect_error(iecv_pool(bad), "strictly between 0 and 1.*row 2", class = "srnomogram_error_input")
  bad <- d
  bad$estimand[4] <- "c_index"
  expect_error(iecv_pool(bad), "estimand", class = "srnomogram_error_input")
  expect_error(iecv_pool(rbind(d, d[1, ])), "two rows", class = "srnomogram_error_input")
  expect_error(iecv_pool(d[, -5]), "lacks column", class = "srnomogram_error_input")
  expect_error(meta_pool(0.3, 0.1), "at least 2 centres", class = "srnomogram_error_input")
  expect_error(meta_pool(c(0.3, 0.2), c(0.1, -0.1)), class = "srnomogram_error_input")
  expect_error(meta_pool(c(0, 0.2), c(0.1, 0.1), scale = "logit"), class = "srnomogram_error_input")
})

test_that("the forest plot draws each centre, the pooled diamond and the prediction interval", {
  res <- meta_pool(bcg$yi, sqrt(bcg$vi), centre = bcg$author)
  p <- plot(res)
  expect_s3_class(p, "ggplot")
  b <- ggplot2::ggplot_build(p)
  expect_equal(nrow(b$data[[1]]), 13L)  # centre intervals
  expect_equal(sort(b$data[[1]]$xmin), sort(attr(res, "centres")$lower))
  expect_equal(nrow(b$data[[2]]), 13L)  # centre squares
  expect_equal(b$data[[3]]$x, c(res$lower, res$estimate, res$upper, res$estimate))  # diamond
  expect_equal(c(b$data[[4]]$xmin, b$data[[4]]$xmax), c(res$pi_lower, res$pi_upper))
  # 13 centres + pooled + prediction interval on the y axis
  expect_length(b$layout$panel_params[[1]]$y$get_labels(), 15L)

  d <- iecv_table()
  res <- iecv_pool(d)
  p <- plot(res, estimand = "auc")
  b <- ggplot2::ggplot_build(p)
  expect_equal(nrow(b$layout$layout), 2L)  # one panel per model
  expect_equal(nrow(b$data[[1]]), 10L)
  auc <- res[res$estimand == "auc", ]
  expect_equal(sort(b$data[[4]]$xmax), sort(auc$pi_upper))
  expect_equal(p$labels$x, "AUC")
  expect_error(plot(res, estimand = "brier"), class = "srnomogram_error_input")
})

# A board holding the iecv stage's two pins, as a study writes them: iecv_centres wide (one row per centre and
# model: <measure>, <measure>_se) and iecv_pooled (iecv_pool of its long frame), with the study's alpha.
iecv_board <- function(d, pooled, alpha = 0.1) {
  board <- withr::local_tempdir(.local_envir = parent.frame())
  wide <- stats::reshape(d, idvar = c("centre", "model"), timevar = "estimand", direction = "wide", sep = "_")
  names(wide) <- sub("^se_(.*)$", "\\1_se", sub("^estimate_", "", names(wide)))
  for (name in c("iecv_centres", "iecv_pooled")) {
    v <- file.path(board, name, "20240101T000000Z-aaaaa")
    dir.create(v, recursive = TRUE)
    utils::write.csv(if (name == "iecv_pooled") summary(pooled) else wide, file.path(v, paste0(name, ".csv")), row.names = FALSE)
    yaml::write_yaml(list(api_version = 1L, created = "20240101T000000Z", file = paste0(name, ".csv"), type = "csv",
                          title = name, user = list(config = list(nomogram = list(alpha = alpha)))),
                     file.path(v, "data.txt"))
  }
  board
}

test_that("the study's IECV forest plots draw every centre and the pinned pooled estimate, CI and PI (1e-12)", {
  d <- iecv_table()
  res <- iecv_pool(d, conf_level = 0.9)
  board <- iecv_board(d, res)
  pinned <- read_pin(board, "iecv_pooled")
  for (e in c("auc", "citl", "slope")) {
    p <- board_figure(board, paste0("figure_iecv_", e), labels = c(sr_nomogram = "Nomogram (SR)"))
    b <- ggplot2::ggplot_build(p)
    pin <- pinned[pinned$estimand == e, ]
    mine <- d[d$estimand == e, ]
    expect_equal(levels(b$layout$layout$model), c("Nomogram (SR)", "Clinical model"))  # one panel per model, labelled by id
    expect_equal(nrow(b$data[[1]]), nrow(mine))  # k = 5 centres in each of the 2 panels
    for (i in 1:2) {  # panel i: model pin$model[i]
      cen <- attr(res, "centres")
      cen <- cen[cen$model == pin$model[i] & cen$estimand == e, ]
      sq <- b$data[[2]][b$data[[2]]$PANEL == i, ]
      expect_equal(sq$x, cen$estimate, tolerance = 1e-12)
      bars <- b$data[[1]][b$data[[1]]$PANEL == i, ]
      expect_equal(cbind(bars$xmin, bars$xmax), cbind(cen$lower, cen$upper), tolerance = 1e-12)  # the 90% Wald CIs
      # squares sized by the random-effects weights, from the pinned tau2: metafor's own (iecv_pool's)
      fd <- iecv_forest_data(read_pin(board, "iecv_centres"), pinned, e, conf_level = 0.9)
      expect_equal(attr(fd, "centres")$weight[attr(fd, "centres")$model == pin$model[i]], cen$weight, tolerance = 1e-9)
      dia <- b$data[[3]][b$data[[3]]$PANEL == i, ]
      expect_equal(dia$x, c(pin$lower[i], pin$estimate[i], pin$upper[i], pin$estimate[i]), tolerance = 1e-12)
      pi <- b$data[[4]][b$data[[4]]$PANEL == i, ]
      expect_equal(c(pi$xmin, pi$xmax), c(pin$pi_lower[i], pin$pi_upper[i]), tolerance = 1e-12)
    }
    # 5 centres + pooled + prediction interval on the y axis
    expect_equal(b$layout$panel_params[[1]]$y$get_labels(), c(paste0("C", 1:5), "Pooled", "Prediction interval"))
  }
  expect_match(p$labels$title, "Calibration slope (k = 5 centres)", fixed = TRUE)

  # the diamond is the pinned table's, never a second pooling: a pinned estimate moved is drawn where it was moved
  moved <- res
  moved$estimate[moved$estimand == "auc"] <- c(0.5, 0.6)
  b <- ggplot2::ggplot_build(iecv_forest(iecv_board(d, moved), "auc", models = "clinical"))
  expect_equal(b$data[[3]]$x[2], 0.6)
  expect_equal(nrow(b$layout$layout), 1L)

  paths <- study_figures(board, withr::local_tempdir(), names = c("figure_iecv_auc", "figure7_validation"))
  expect_equal(names(paths), "figure_iecv_auc")  # figure7's pins are not on this board: skipped
  expect_true(file.exists(sub("png$", "pdf", paths[["figure_iecv_auc"]])))
})

test_that("IECV forest plots refuse an absent measure, model or pin, and pins of two runs, in one line", {
  d <- iecv_table()
  res <- iecv_pool(d)
  board <- iecv_board(d, res)
  expect_error(iecv_forest(board, "brier"), "must be one of", class = "srnomogram_error_input")
  expect_error(iecv_forest(board, "auc", models = "or_lr"), "no \"auc\" row for model \"or_lr\"", class = "srnomogram_error_input")
  expect_error(iecv_forest(board, "auc", pins = "iecv_pooled"), "iecv_centres", class = "srnomogram_error_input")
  fewer <- iecv_pool(d[d$centre != "C5", ])
  expect_error(iecv_forest(iecv_board(d, fewer), "citl"), "different runs", class = "srnomogram_error_input")
})

#!/usr/bin/env Rscript
# From a score table to every figure and table of the paper's statistics.
#
# Input: a CSV file, or a pins folder board (written by the Python side) plus a pin name,
# holding one row per lesion with
#   case_id, label (0 benign / 1 malignant), split ("train"/"test"),
#   one column per model score (probabilities), and the clinical predictors.
# The board's score pins: `scores` (the study's Table 2 models by model id, e.g. or_lr,
# sr_mobilenet_v2, and deep_score), `radiomics_scores` (or_lr, or_svm, sr_lr, sr_svm) and
# `scores_<model_id>` (one model's `score`), written alike by `srnomogram run` and by
# `srnomogram radiomics fit` / `deep train --board`. Clinical predictors a pin lacks are taken from
# the board's `manifest` pin.
# Output (in out_dir): ROC, calibration (bootstrap and test), DCA and nomogram figures as
# PNG (300 dpi) and PDF; Table 1 (baseline), Table S2 (logistic), ROC/threshold metrics,
# Hosmer-Lemeshow tests, the internal validation (rms::validate), decision-curve net benefits
# and the nomogram points table as CSV.
#
# Usage:
#   Rscript inst/scripts/figures_from_scores.R demo OUT_DIR
#   Rscript inst/scripts/figures_from_scores.R scores.csv OUT_DIR [key=value ...]
#   Rscript inst/scripts/figures_from_scores.R BOARD_DIR OUT_DIR pin=scores [key=value ...]
# Keys (defaults): scores=deep_score (when there), then every other numeric column but label and the
#   clinical ones, nomogram=<first score>+age+max_diameter_cm,
#   clinical=age,max_diameter_cm, B=1000, bootstraps=500, seed=2024

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)[1]))
source(file.path(script_dir, "load_package.R"))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) stop("usage: figures_from_scores.R <scores.csv | board_dir | demo> <out_dir> [key=value ...]")
src <- args[1]
out <- args[2]
kv <- args[-(1:2)]
opt <- stats::setNames(sub("^[^=]*=", "", kv), sub("=.*$", "", kv))
get_opt <- function(key, default) if (key %in% names(opt)) opt[[key]] else default

if (src == "demo") {
  # Simulated cohort shaped like the paper's (333 lesions, 8:2 split); not real data.
  set.seed(7)
  n <- 333
  label <- rbinom(n, 1, 0.45)
  age <- round(rnorm(n, 47 + 8 * label, 12))
  max_diameter_cm <- round(pmax(0.3, rnorm(n, 1.6 + 0.5 * label, 0.8)), 2)
  sr_lr <- plogis(-1.2 + 2.6 * label + rnorm(n, 0, 1.1))
  or_lr <- plogis(-0.9 + 1.9 * label + rnorm(n, 0, 1.2))
  deep_score <- plogis(-1 + 2.2 * label + rnorm(n, 0, 1.2))
  scores <- data.frame(case_id = sprintf("case%03d", seq_len(n)), label, age, max_diameter_cm,
                       deep_score, sr_lr, or_lr)
  scores$split <- stratified_split(scores, test_size = 0.2, seed = 0)
} else if (dir.exists(src)) {
  scores <- read_board(src, get_opt("pin", "scores"))
  need <- setdiff(strsplit(get_opt("clinical", "age,max_diameter_cm"), ",")[[1]], names(scores))
  if (length(need) && "manifest" %in% list.files(src)) {
    cohort <- read_board(src, "manifest")
    scores <- merge(scores, cohort[, c("case_id", intersect(need, names(cohort))), drop = FALSE], by = "case_id", sort = FALSE)
  }
} else {
  scores <- utils::read.csv(src, stringsAsFactors = FALSE)
}
dir.create(out, recursive = TRUE, showWarnings = FALSE)

clinical <- strsplit(get_opt("clinical", "age,max_diameter_cm"), ",")[[1]]
numeric_cols <- names(scores)[vapply(scores, is.numeric, logical(1))]
score_cols <- if ("scores" %in% names(opt)) strsplit(opt[["scores"]], ",")[[1]] else
  c(intersect("deep_score", numeric_cols), setdiff(numeric_cols, c("label", clinical, "deep_score", "deep_score_fitted")))
nom_rhs <- get_opt("nomogram", paste(c(score_cols[1], clinical), collapse = " + "))
B <- as.integer(get_opt("B", "1000"))
nboot <- as.integer(get_opt("bootstraps", "500"))
seed <- as.integer(get_opt("seed", "2024"))
train <- scores[scores$split == "train", ]
test <- scores[scores$split == "test", ]
write_table <- function(df, name) utils::write.csv(df, file.path(out, paste0(name, ".csv")), row.names = FALSE)
message(sprintf("%d lesions (%d train, %d test); scores: %s; nomogram: label ~ %s",
                nrow(scores), nrow(train), nrow(test), paste(score_cols, collapse = ", "), nom_rhs))

# Table 1 and Table S2
scores$group <- factor(ifelse(scores$label == 1, "Malignant", "Benign"))
write_table(baseline_table(scores, "group", clinical, split = "split"), "table1_baseline")
write_table(logistic_table(train, "label", c(score_cols, clinical)), "tableS2_logistic")

# Nomogram on the training set
fit <- fit_nomogram(stats::as.formula(paste("label ~", nom_rhs)), train)
train$nomogram <- predict(fit)
test$nomogram <- predict(fit, test)
write_table(nomogram_points_table(fit), "nomogram_points")
save_figure(nomogram_plot(fit), file.path(out, "fig_nomogram"), width = 8, height = 4.5)

# ROC: all models, train and test panels; metrics at the training Youden cut-off
models <- c(Nomogram = "nomogram", stats::setNames(score_cols, score_cols))
both <- rbind(cbind(train[, c("label", models)], panel = "Training set"),
              cbind(test[, c("label", models)], panel = "Test set"))
both$panel <- factor(both$panel, levels = c("Training set", "Test set"))
save_figure(roc_plot(both, outcome = "label", scores = models, panel = "panel"),
            file.path(out, "fig_roc"), width = 9, height = 5)
metrics <- do.call(rbind, lapply(names(models), function(m) {
  th <- youden_threshold(train$label, train[[models[[m]]]])
  rbind(cbind(model = m, set = "train", summary(roc_auc(train$label, train[[models[[m]]]])),
              classification_metrics(train$label, train[[models[[m]]]], th)),
        cbind(model = m, set = "test", summary(roc_auc(test$label, test[[models[[m]]]])),
              classification_metrics(test$label, test[[models[[m]]]], th)))
}))
write_table(metrics, "table2_roc_metrics")
cmp <- do.call(rbind, lapply(score_cols, function(s) {
  t <- compare_roc(test$label, test$nomogram, test[[s]])
  data.frame(set = "test", model1 = "Nomogram", model2 = s, z = unname(t$statistic), p_value = t$p.value)
}))
write_table(cmp, "delong_tests")

# Calibration: bootstrap (training) and external (test), with Hosmer-Lemeshow
cal <- calibrate_nomogram(fit, B = B, seed = seed)
ext <- calibrate_nomogram(fit, newdata = test)
save_figure(calibration_plot(cal, title = "Training set"), file.path(out, "fig_calibration_train"), 5, 5)
save_figure(calibration_plot(ext, title = "Test set"), file.path(out, "fig_calibration_test"), 5, 5)
hl <- rbind(data.frame(set = "train", t(unlist(hl_test(train$label, train$nomogram)[c("statistic", "parameter", "p.value")]))),
            data.frame(set = "test", t(unlist(ext$hl[c("statistic", "parameter", "p.value")]))))
write_table(hl, "hosmer_lemeshow")

# Internal validation: Harrell's optimism-corrected bootstrap (rms::validate) of the nomogram
write_table(as.data.frame(validate_nomogram(fit, B = B, seed = seed)), "internal_validation")

# Decision curves (training and test), nomogram vs each score
dca_for <- function(d) {
  curves <- lapply(names(models), function(m) {
    set.seed(seed)
    decision_curve(stats::as.formula(paste("label ~", models[[m]])), d, fitted_risk = TRUE,
                   bootstraps = nboot)
  })
  stats::setNames(curves, names(models))
}
for (s in c("train", "test")) {
  dcs <- dca_for(if (s == "train") train else test)
  save_figure(dca_plot(dcs, xlim = c(0, 0.99)), file.path(out, paste0("fig_dca_", s)), 6.5, 5)
  write_table(do.call(rbind, lapply(dcs, summary)), paste0("dca_", s))
}
message("wrote ", length(list.files(out)), " files to ", normalizePath(out))

test_that("stratified_split takes floor(0.2 * n + 0.5) of each class to the test set", {
  d <- data.frame(case_id = sprintf("case%03d", 1:57), label = c(rep(0, 34), rep(1, 23)))
  s <- stratified_split(d, test_size = 0.2, seed = 0)
  expect_type(s, "character")
  expect_setequal(unique(s), c("train", "test"))
  expect_equal(sum(s == "test" & d$label == 0), floor(0.2 * 34 + 0.5))  # 7
  expect_equal(sum(s == "test" & d$label == 1), floor(0.2 * 23 + 0.5))  # 5
})

test_that("stratified_split ranks cases by sha256('<seed>:<case_id>') within a class", {
  d <- data.frame(case_id = c("a", "b", "c", "d", "e"), label = 1)
  d <- rbind(d, data.frame(case_id = c("f", "g", "h", "i", "j"), label = 0))
  s <- stratified_split(d, test_size = 0.2, seed = 7)
  # reference: the smallest digest of each class
  h <- vapply(paste0("7:", d$case_id), digest::digest, "", algo = "sha256", serialize = FALSE)
  expected <- c(d$case_id[d$label == 1][which.min(rank(h[d$label == 1]))],
                d$case_id[d$label == 0][which.min(rank(h[d$label == 0]))])
  expect_setequal(d$case_id[s == "test"], expected)
  # the hash is pinned to Python's hashlib.sha256(b"7:a").hexdigest()
  expect_equal(unname(h[1]), "82d9d62baa6a7870f2637c9be0181e6b8ec19b5c394ba7e569549a13bafe47b6")
})

test_that("stratified_split is deterministic and changes with the seed", {
  d <- data.frame(case_id = sprintf("id%d", 1:100), label = rep(0:1, 50))
  expect_identical(stratified_split(d, seed = 3), stratified_split(d, seed = 3))
  expect_false(identical(stratified_split(d, seed = 3), stratified_split(d, seed = 4)))
})

test_that("stratified_split rejects a split that leaves a class empty", {
  d <- data.frame(case_id = sprintf("id%d", 1:12), label = c(rep(0, 10), 1, 1))
  expect_error(stratified_split(d, test_size = 0.2, seed = 0), class = "srnomogram_error_input",
               regexp = "empty in the test set")
  expect_error(stratified_split(d, test_size = 0.96, seed = 0), class = "srnomogram_error_input",
               regexp = "empty in the train set")
})

test_that("stratified_split validates its arguments", {
  d <- data.frame(case_id = c("a", "a", "b", "c"), label = c(0, 1, 0, 1))
  expect_error(stratified_split(d), class = "srnomogram_error_input", regexp = "more than once")
  d$case_id <- c("a", "b", "c", "d")
  expect_error(stratified_split(d, test_size = 1.5), class = "srnomogram_error_input", regexp = "test_size")
  expect_error(stratified_split(d, seed = -1), class = "srnomogram_error_input", regexp = "seed")
  expect_error(stratified_split(d, seed = 0, id_col = "id"), class = "srnomogram_error_input", regexp = "lacks column")
  expect_error(stratified_split(d), class = "srnomogram_error_input", regexp = "seed. must be given")
})

test_that("stratified_split keeps a patient's lesions together, stratified by the patient's label", {
  set.seed(3)
  n_les <- sample(1:3, 50, replace = TRUE)
  pid <- rep(sprintf("P%02d", 1:50), n_les)
  mal <- rep(runif(50) < 0.4, n_les)
  d <- data.frame(case_id = paste0(pid, "_", sequence(n_les)), patient_id = pid,
                  label = as.integer(mal & (sequence(n_les) == 1 | runif(length(pid)) < 0.5)))
  s <- stratified_split(d, test_size = 0.2, seed = 5)
  expect_true(all(tapply(s, d$patient_id, function(x) length(unique(x))) == 1))
  # reference: patients malignant if any lesion is; per class the smallest digests of "5:<patient>"
  plab <- tapply(d$label, d$patient_id, max)
  h <- vapply(paste0("5:", names(plab)), digest::digest, "", algo = "sha256", serialize = FALSE)
  expected <- unlist(lapply(0:1, function(k) {
    p <- names(plab)[plab == k]
    p[order(h[plab == k])][seq_len(floor(0.2 * length(p) + 0.5))]
  }))
  expect_setequal(unique(d$patient_id[s == "test"]), expected)
  # patient = lesion (same names), or no patient id at all: the lesion split
  d1 <- data.frame(case_id = sprintf("id%d", 1:40), label = rep(0:1, 20))
  expect_identical(stratified_split(transform(d1, patient_id = case_id), seed = 1), stratified_split(d1, seed = 1))
  expect_identical(stratified_split(transform(d1, patient_id = NA), seed = 1), stratified_split(d1, seed = 1))
  expect_identical(stratified_split(d, seed = 5, patient_col = NULL),
                   stratified_split(d[, c("case_id", "label")], seed = 5))
})

test_that("a patient split takes factor labels by their level order", {
  d <- data.frame(case_id = sprintf("c%02d", 1:20), patient_id = sprintf("p%02d", (0:19) %/% 2),
                  label = factor(rep(c("benign", "malignant"), 10), levels = c("benign", "malignant")))
  s <- stratified_split(d, seed = 2)
  num <- stratified_split(transform(d, label = as.integer(label)), seed = 2)
  expect_identical(s, num)  # every patient malignant here: one class of 10 patients, 2 to test
  expect_identical(sum(s == "test"), 4L)
})

test_that("stratified_split takes the Python function's column arguments; the old names still work, deprecated", {
  d <- data.frame(id = sprintf("c%02d", 1:20), y = rep(0:1, 10), pid = sprintf("p%02d", rep(1:10, 2)))
  new <- stratified_split(d, seed = 5, id_col = "id", label_col = "y", patient_col = "pid")
  ref <- stratified_split(setNames(d, c("case_id", "label", "patient_id")), seed = 5)
  expect_identical(new, ref)
  rlang::reset_warning_verbosity("stratified_split(id = )")
  expect_warning(old <- stratified_split(d, seed = 5, id = "id", label_col = "y", patient_col = "pid"),
                 "id_col", class = "srnomogram_deprecated")
  expect_identical(old, new)
})

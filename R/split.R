#' Stratified train/test split, identical to the Python one
#'
#' Splits a cohort 8:2 (by default) within each label without a random number
#' generator, so that R and Python give the same split for the same seed:
#' inside each class the cases are ranked by the SHA-256 hex digest of the
#' UTF-8 string `"<seed>:<case_id>"` (ties broken by the case id, in C-locale
#' order), and the first `floor(test_size * n_class + 0.5)` cases of each class
#' form the test set. This is the rule of `srnomogram.data.stratified_split()`
#' in the Python package; the Python test suite checks that both agree.
#'
#' @param data A data frame with one row per lesion (a cohort manifest).
#' @param test_size Fraction of each class assigned to the test set, in (0, 1).
#' @param seed A whole number >= 0 mixed into the hash (required: the split is
#'   a choice of the study, so there is no default).
#' @param id Name of the case id column.
#' @param label Name of the label column (any values; each distinct value is a
#'   stratum, usually 0 = benign and 1 = malignant).
#' @return A character vector of `"train"`/`"test"`, one per row of `data`.
#' @references Yang & Ma split their cohort 8:2 into training and test sets,
#'   stratified by pathology.
#' @examples
#' d <- data.frame(case_id = sprintf("c%02d", 1:20), label = rep(0:1, 10))
#' s <- stratified_split(d, seed = 0)
#' table(s, d$label)
#' @export
stratified_split <- function(data, test_size = 0.2, seed, id = "case_id", label = "label") {
  data <- check_data_frame(data)
  if (!is.numeric(test_size) || length(test_size) != 1L || is.na(test_size) ||
      test_size <= 0 || test_size >= 1) {
    abort_input("{.arg test_size} must be a single number in (0, 1), not {.val {test_size}}.")
  }
  if (!missing(seed) && (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed < 0 ||
      seed != round(seed) || seed > .Machine$integer.max)) {
    abort_input("{.arg seed} must be a single whole number >= 0, not {.val {seed}}.")
  }
  check_columns(data, c(id, label))
  ids <- trimws(as.character(data[[id]]))
  dup <- duplicated(ids)
  if (any(dup)) {
    abort_input(c("{.field {id}} {.val {ids[dup][1]}} appears more than once.",
                  i = "Each lesion needs its own case id."))
  }
  lab <- data[[label]]
  if (anyNA(lab)) {
    abort_input(c("{.field {label}} is missing in row {which(is.na(lab))[1]}.",
                  i = "Fill in 0/1 or drop the row."))
  }
  if (missing(seed)) {
    abort_input(c("{.arg seed} must be given: a whole number >= 0 (the same seed gives Python's split).",
                  i = "e.g. {.code stratified_split(data, seed = 0)}."))
  }
  keys <- vapply(enc2utf8(paste0(sprintf("%d", as.integer(seed)), ":", ids)),
                 digest::digest, character(1), algo = "sha256", serialize = FALSE,
                 USE.NAMES = FALSE)
  out <- rep("train", nrow(data))
  for (cl in sort(unique(lab))) {
    idx <- which(lab == cl)
    n <- length(idx)
    k <- floor(test_size * n + 0.5)
    if (k < 1 || k > n - 1) {
      side <- if (k < 1) "test" else "train"
      abort_input(c("The split leaves class {.val {cl}} empty in the {side} set ({n} case{?s}, {.arg test_size} = {test_size}).",
                    i = "Add cases of that class or change {.arg test_size}."))
    }
    ord <- idx[order(keys[idx], ids[idx], method = "radix")]
    out[ord[seq_len(k)]] <- "test"
  }
  out
}

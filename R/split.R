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
#' When `data` has a patient column (`patient_col`, by default `patient_id`), the
#' unit is the patient: a patient's label is the largest of their lesions'
#' labels (malignant if any lesion is), the patients of each class are ranked
#' by the digest of `"<seed>:<patient_id>"` and the first
#' `floor(test_size * n_patients + 0.5)` go to the test set with all their
#' lesions, so no patient is on both sides. A lesion with a missing (or blank)
#' patient id is its own patient, ranked by its case id (after a real patient
#' of the same name, should one exist). Without the column the split is the
#' lesion split above, unchanged.
#'
#' @param data A data frame with one row per lesion (a cohort manifest).
#' @param test_size Fraction of each class assigned to the test set, in (0, 1).
#' @param seed A whole number >= 0 mixed into the hash (required: the split is
#'   a choice of the study, so there is no default).
#' @param id_col Name of the case id column.
#' @param label_col Name of the label column (any values; each distinct value
#'   is a stratum, usually 0 = benign and 1 = malignant).
#' @param patient_col Name of the patient id column, used when `data` has it;
#'   `NULL` splits lesions even then. The three names are the Python
#'   function's (`id_col`, `label_col`, `patient_col`).
#' @param id,label,patient Deprecated names of `id_col`, `label_col` and
#'   `patient_col` (a warning once per session).
#' @return A character vector of `"train"`/`"test"`, one per row of `data`.
#' @references Yang & Ma split their cohort 8:2 into training and test sets,
#'   stratified by pathology.
#' @examples
#' d <- data.frame(case_id = sprintf("c%02d", 1:20), label = rep(0:1, 10))
#' s <- stratified_split(d, seed = 0)
#' table(s, d$label)
#' # two lesions of patient p01 stay together
#' d$patient_id <- c("p01", "p01", sprintf("p%02d", 2:19))
#' s <- stratified_split(d, seed = 0)
#' s[1:2]
#' @export
stratified_split <- function(data, test_size = 0.2, seed, id_col = "case_id", label_col = "label",
                             patient_col = "patient_id", id, label, patient) {
  if (!missing(id)) {
    deprecated_name("stratified_split(id = )", "stratified_split(id_col = )")
    id_col <- id
  }
  if (!missing(label)) {
    deprecated_name("stratified_split(label = )", "stratified_split(label_col = )")
    label_col <- label
  }
  if (!missing(patient)) {
    deprecated_name("stratified_split(patient = )", "stratified_split(patient_col = )")
    patient_col <- patient
  }
  id <- id_col
  label <- label_col
  patient <- patient_col
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
  # the unit of the split: the patient when the column is there, else the lesion; `name` is what
  # a unit is hashed under and `lone` marks a lesion without a patient id (ranked after a
  # patient of the same name)
  by_patient <- !is.null(patient) && patient %in% names(data)
  if (by_patient) {
    pid <- trimws(as.character(data[[patient]]))
    lone_row <- is.na(pid) | pid == ""
    group <- ifelse(lone_row, paste0("\001case:", ids), paste0("p:", pid))
    name_row <- ifelse(lone_row, ids, pid)
  } else {
    lone_row <- rep(FALSE, length(ids))
    group <- name_row <- ids
  }
  first <- !duplicated(group)
  units <- group[first]
  name <- name_row[first]
  lone <- lone_row[first]
  unit_lab <- if (by_patient) {
    # a patient's label is the largest of their lesions' (factor labels by their level order)
    codes <- if (is.factor(lab)) as.integer(lab) else lab
    top <- unname(vapply(split(codes, factor(group, levels = units)), max, codes[1]))
    if (is.factor(lab)) factor(levels(lab)[top], levels = levels(lab)) else top
  } else lab
  unit_word <- if (by_patient) "patient" else "case"
  keys <- vapply(enc2utf8(paste0(sprintf("%d", as.integer(seed)), ":", name)),
                 digest::digest, character(1), algo = "sha256", serialize = FALSE,
                 USE.NAMES = FALSE)
  test_units <- character(0)
  for (cl in sort(unique(unit_lab))) {
    idx <- which(unit_lab == cl)
    n <- length(idx)
    k <- floor(test_size * n + 0.5)
    if (k < 1 || k > n - 1) {
      side <- if (k < 1) "test" else "train"
      abort_input(c("The split leaves class {.val {cl}} empty in the {side} set ({n} {unit_word}{?s}, {.arg test_size} = {test_size}).",
                    i = "Add cases of that class or change {.arg test_size}."))
    }
    ord <- idx[order(keys[idx], name[idx], lone[idx], method = "radix")]
    test_units <- c(test_units, units[ord[seq_len(k)]])
  }
  ifelse(group %in% test_units, "test", "train")
}

# Input checks shared by every statistic. They run once, at the boundary, and
# raise classed conditions so that tests (and the Python bridge) can match them.
# Every error of the package goes through an abort_*() helper below; every
# warning through warn_classed().

# An error of class c("srnomogram_error_<kind>", "srnomogram_error").
abort_classed <- function(message, kind, ..., call = .envir, .envir = parent.frame()) {
  cli::cli_abort(message, ..., class = c(paste0("srnomogram_error_", kind), "srnomogram_error"),
                 call = call, .envir = .envir)
}

# Bad input (argument value, column, data): `srnomogram_error_input`.
abort_input <- function(message, ..., call = .envir, .envir = parent.frame()) {
  abort_classed(message, "input", ..., call = call, .envir = .envir)
}

# A pin that cannot be read: `srnomogram_error_pin`.
abort_pin <- function(message, ..., call = .envir, .envir = parent.frame()) {
  abort_classed(message, "pin", ..., call = call, .envir = .envir)
}

# A model that cannot be fitted (no convergence): `srnomogram_error_fit`.
abort_fit <- function(message, ..., call = .envir, .envir = parent.frame()) {
  abort_classed(message, "fit", ..., call = call, .envir = .envir)
}

# Complete separation (no maximum likelihood estimates): `srnomogram_error_separation`.
abort_separation <- function(message, ..., call = .envir, .envir = parent.frame()) {
  abort_classed(message, "separation", ..., call = call, .envir = .envir)
}

# An optional reference engine that is not installed: `srnomogram_error_engine`.
abort_engine <- function(message, ..., call = .envir, .envir = parent.frame()) {
  abort_classed(message, "engine", ..., call = call, .envir = .envir)
}

# A warning of class c("srnomogram_warning_<kind>", "srnomogram_warning").
warn_classed <- function(message, kind, ..., call = .envir, .envir = parent.frame()) {
  cli::cli_warn(message, ..., class = c(paste0("srnomogram_warning_", kind), "srnomogram_warning"),
                call = call, .envir = .envir)
}

# An argument renamed after 0.1.0 (rms/pROC style: the old name still works, with a
# warning of class `srnomogram_warning_deprecated` naming the new one). `dots`
# is list(...) of the caller; `renamed` maps old name -> new name. Returns the
# value given under the old name (or `missing_value` when none), and rejects any
# other argument in `...` as R would ("unused argument").
renamed_argument <- function(dots, renamed, fname, missing_value = NULL, call = rlang::caller_env()) {
  old <- names(renamed)
  nm <- names(dots) %||% rep("", length(dots))
  unused <- nm[!nm %in% old]
  if (length(unused)) {
    shown <- ifelse(nzchar(unused), unused, "<unnamed>")
    abort_input("{.fn {fname}} has no argument{?s} {.arg {shown}}.", call = call)
  }
  if (!length(dots)) return(missing_value)
  warn_classed(c("{.arg {nm[1]}} of {.fn {fname}} is deprecated: it is now {.arg {renamed[[nm[1]]]}}.",
                 i = "Use {.code {renamed[[nm[1]]]} = }; the old name will be removed."),
               "deprecated", call = call)
  dots[[1]]
}

# Drop the incomplete rows of `data` (columns `vars`), warning with their count
# (as rmda does). Returns the complete rows.
complete_rows <- function(data, vars, what = NULL, call = rlang::caller_env()) {
  cc <- stats::complete.cases(data[, vars, drop = FALSE])
  if (!all(cc)) {
    warn_classed(paste0("{sum(!cc)} observation{?s} with missing data removed", if (!is.null(what)) " for {.field {what}}", "."),
                 "missing", call = call)
  }
  data[cc, , drop = FALSE]
}

# Coerce a 0/1 outcome (numeric, logical, or a two-level factor) to integer 0/1.
check_binary <- function(y, arg = rlang::caller_arg(y), call = rlang::caller_env(),
                         allow_single_class = FALSE) {
  if (is.factor(y)) {
    if (nlevels(y) != 2L) {
      abort_input(c("{.arg {arg}} must be a binary outcome (0/1).",
                       x = "It is a factor with {nlevels(y)} level{?s}: {.val {levels(y)}}."), call = call)
    }
    y <- as.integer(y) - 1L
  } else if (is.logical(y)) {
    y <- as.integer(y)
  }
  if (!is.numeric(y)) {
    abort_input(c("{.arg {arg}} must be a binary outcome (0/1).",
                     x = "It is of class {.cls {class(y)}}."), call = call)
  }
  bad <- !is.na(y) & !(y %in% c(0, 1))
  if (any(bad)) {
    abort_input(c("{.arg {arg}} must be a binary outcome coded 0/1.",
                     x = "Found {sum(bad)} other value{?s}, e.g. {.val {utils::head(unique(y[bad]), 3)}}."), call = call)
  }
  if (!allow_single_class && length(unique(y[!is.na(y)])) < 2L) {
    abort_input(c("{.arg {arg}} must contain both classes (0 and 1).",
                     x = "All {sum(!is.na(y))} non-missing value{?s} {?is/are} {.val {unique(y[!is.na(y)])}}."), call = call)
  }
  as.integer(y)
}

check_probability <- function(p, arg = rlang::caller_arg(p), call = rlang::caller_env()) {
  if (!is.numeric(p)) {
    abort_input("{.arg {arg}} must be numeric, not {.cls {class(p)}}.", call = call)
  }
  bad <- !is.na(p) & (p < 0 | p > 1)
  if (any(bad)) {
    abort_input(c("{.arg {arg}} must be probabilities in [0, 1].",
                     x = "{sum(bad)} value{?s} {?is/are} outside, range {.val {signif(range(p[bad]), 4)}}."), call = call)
  }
  invisible(p)
}

check_numeric <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is.numeric(x)) {
    abort_input("{.arg {arg}} must be a numeric vector, not {.cls {class(x)}}.", call = call)
  }
  invisible(x)
}

check_same_length <- function(a, b, arg_a, arg_b, call = rlang::caller_env()) {
  if (length(a) != length(b)) {
    abort_input("{.arg {arg_a}} and {.arg {arg_b}} must have the same length ({length(a)} vs {length(b)}).", call = call)
  }
}

# Drop incomplete rows of paired vectors, warning with the count (as rmda does).
drop_missing <- function(..., call = rlang::caller_env()) {
  args <- list(...)
  ok <- Reduce(`&`, lapply(args, function(v) !is.na(v)))
  if (!all(ok)) {
    warn_classed("{sum(!ok)} observation{?s} with missing data removed.", "missing", call = call)
  }
  lapply(args, function(v) v[ok])
}

# The boundary of every (outcome, score) statistic: `y` coded 0/1, `score` numeric (or
# probabilities in [0, 1]), both of one length, incomplete pairs dropped with a warning.
# Returns list(y = , score = ) of the complete pairs; errors name `arg` for the score.
check_outcome_score <- function(y, score, arg, probability = FALSE, call = rlang::caller_env()) {
  y <- check_binary(y, arg = "y", call = call)
  if (probability) {
    check_probability(score, arg = arg, call = call)
  } else {
    check_numeric(score, arg = arg, call = call)
  }
  check_same_length(y, score, "y", arg, call = call)
  cc <- drop_missing(y, score, call = call)
  list(y = cc[[1]], score = cc[[2]])
}

check_data_frame <- function(data, arg = rlang::caller_arg(data), call = rlang::caller_env()) {
  if (!is.data.frame(data)) {
    abort_input("{.arg {arg}} must be a data frame, not {.cls {class(data)}}.", call = call)
  }
  as.data.frame(data)
}

check_columns <- function(data, cols, arg = "data", call = rlang::caller_env()) {
  missing_cols <- setdiff(cols, names(data))
  if (length(missing_cols)) {
    abort_input(c("{.arg {arg}} lacks column{?s} {.field {missing_cols}}.",
                     i = "Available: {.field {names(data)}}."), call = call)
  }
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# Accept a formula or its text (the Python bridge passes a formula; its text is
# accepted too, so that a caller never needs to build one by hand).
as_two_sided_formula <- function(formula, arg = "formula", call = rlang::caller_env()) {
  if (is.character(formula) && length(formula) == 1L) {
    formula <- tryCatch(stats::as.formula(formula, env = globalenv()), error = function(e) NULL)
  }
  if (!inherits(formula, "formula") || length(formula) != 3L) {
    abort_input("{.arg {arg}} must be a two-sided formula such as {.code y ~ x} (or its text).", call = call)
  }
  formula
}

# An optional reference engine (a package in Suggests) must be installed before
# it is used; say how to get it rather than failing inside the call.
check_engine_installed <- function(pkg, fun, call = rlang::caller_env()) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    abort_engine(c("{.code engine = \"{pkg}\"} in {.fn {fun}} needs the {.pkg {pkg}} package, which is not installed.",
                     i = "Install it with {.code install.packages(\"{pkg}\")}, or use the default {.code engine = \"srnomogram\"} (proven equal to it)."), call = call)
  }
  invisible(TRUE)
}

# A confidence level in (0, 1); returns the two-sided normal quantile z of it.
check_conf_level <- function(conf_level, arg = rlang::caller_arg(conf_level), call = rlang::caller_env()) {
  if (!is.numeric(conf_level) || length(conf_level) != 1L || is.na(conf_level) ||
      conf_level <= 0 || conf_level >= 1) {
    abort_input("{.arg {arg}} must be a number in (0, 1), e.g. 0.95, not {.val {format(conf_level)}}.", call = call)
  }
  stats::qnorm(1 - (1 - conf_level) / 2)
}

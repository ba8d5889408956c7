# Input checks shared by every statistic. They run once, at the boundary, and
# raise classed conditions so that tests (and the Python bridge) can match them.

abort_input <- function(message, ..., .envir = parent.frame()) {
  cli::cli_abort(message, ..., class = c("srnomogram_error_input", "srnomogram_error"),
                 .envir = .envir)
}

warn_input <- function(message, ..., .envir = parent.frame()) {
  cli::cli_warn(message, ..., class = c("srnomogram_warning_input", "srnomogram_warning"),
                .envir = .envir)
}

# Coerce a 0/1 outcome (numeric, logical, or a two-level factor) to integer 0/1.
check_binary <- function(y, arg = rlang::caller_arg(y), call = rlang::caller_env(),
                         allow_single_class = FALSE) {
  if (is.factor(y)) {
    if (nlevels(y) != 2L) {
      cli::cli_abort(c("{.arg {arg}} must be a binary outcome (0/1).",
                       x = "It is a factor with {nlevels(y)} level{?s}: {.val {levels(y)}}."),
                     class = c("srnomogram_error_input", "srnomogram_error"), call = call)
    }
    y <- as.integer(y) - 1L
  } else if (is.logical(y)) {
    y <- as.integer(y)
  }
  if (!is.numeric(y)) {
    cli::cli_abort(c("{.arg {arg}} must be a binary outcome (0/1).",
                     x = "It is of class {.cls {class(y)}}."),
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  bad <- !is.na(y) & !(y %in% c(0, 1))
  if (any(bad)) {
    cli::cli_abort(c("{.arg {arg}} must be a binary outcome coded 0/1.",
                     x = "Found {sum(bad)} other value{?s}, e.g. {.val {utils::head(unique(y[bad]), 3)}}."),
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  if (!allow_single_class && length(unique(y[!is.na(y)])) < 2L) {
    cli::cli_abort(c("{.arg {arg}} must contain both classes (0 and 1).",
                     x = "All {sum(!is.na(y))} non-missing value{?s} {?is/are} {.val {unique(y[!is.na(y)])}}."),
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  as.integer(y)
}

check_probability <- function(p, arg = rlang::caller_arg(p), call = rlang::caller_env()) {
  if (!is.numeric(p)) {
    cli::cli_abort("{.arg {arg}} must be numeric, not {.cls {class(p)}}.",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  bad <- !is.na(p) & (p < 0 | p > 1)
  if (any(bad)) {
    cli::cli_abort(c("{.arg {arg}} must be probabilities in [0, 1].",
                     x = "{sum(bad)} value{?s} {?is/are} outside, range {.val {signif(range(p[bad]), 4)}}."),
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  invisible(p)
}

check_numeric <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is.numeric(x)) {
    cli::cli_abort("{.arg {arg}} must be a numeric vector, not {.cls {class(x)}}.",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  invisible(x)
}

check_same_length <- function(a, b, arg_a, arg_b, call = rlang::caller_env()) {
  if (length(a) != length(b)) {
    cli::cli_abort("{.arg {arg_a}} and {.arg {arg_b}} must have the same length ({length(a)} vs {length(b)}).",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
}

# Drop incomplete rows of paired vectors, warning with the count (as rmda does).
drop_missing <- function(..., call = rlang::caller_env()) {
  args <- list(...)
  ok <- Reduce(`&`, lapply(args, function(v) !is.na(v)))
  if (!all(ok)) {
    cli::cli_warn("{sum(!ok)} observation{?s} with missing data removed.",
                  class = c("srnomogram_warning_missing", "srnomogram_warning"), call = call)
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
    cli::cli_abort("{.arg {arg}} must be a data frame, not {.cls {class(data)}}.",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  as.data.frame(data)
}

check_columns <- function(data, cols, arg = "data", call = rlang::caller_env()) {
  missing_cols <- setdiff(cols, names(data))
  if (length(missing_cols)) {
    cli::cli_abort(c("{.arg {arg}} lacks column{?s} {.field {missing_cols}}.",
                     i = "Available: {.field {names(data)}}."),
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# Accept a formula or its text (convenient from Python through rpy2).
as_two_sided_formula <- function(formula, arg = "formula", call = rlang::caller_env()) {
  if (is.character(formula) && length(formula) == 1L) {
    formula <- tryCatch(stats::as.formula(formula, env = globalenv()), error = function(e) NULL)
  }
  if (!inherits(formula, "formula") || length(formula) != 3L) {
    cli::cli_abort("{.arg {arg}} must be a two-sided formula such as {.code y ~ x} (or its text).",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  formula
}

# An optional reference engine (a package in Suggests) must be installed before
# it is used; say how to get it rather than failing inside the call.
check_engine_installed <- function(pkg, fun, call = rlang::caller_env()) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    cli::cli_abort(c("{.code engine = \"{pkg}\"} in {.fn {fun}} needs the {.pkg {pkg}} package, which is not installed.",
                     i = "Install it with {.code install.packages(\"{pkg}\")}, or use the default {.code engine = \"srnomogram\"} (proven equal to it)."),
                   class = c("srnomogram_error_engine", "srnomogram_error"), call = call)
  }
  invisible(TRUE)
}

# A confidence level in (0, 1); returns the two-sided normal quantile z of it.
check_conf_level <- function(conf_level, arg = rlang::caller_arg(conf_level), call = rlang::caller_env()) {
  if (!is.numeric(conf_level) || length(conf_level) != 1L || is.na(conf_level) ||
      conf_level <= 0 || conf_level >= 1) {
    cli::cli_abort("{.arg {arg}} must be a number in (0, 1), e.g. 0.95, not {.val {format(conf_level)}}.",
                   class = c("srnomogram_error_input", "srnomogram_error"), call = call)
  }
  stats::qnorm(1 - (1 - conf_level) / 2)
}

#' Read a pin from a folder board written by Python's pins
#'
#' The same verbs as the Python package (`srnomogram.board.read_pin`,
#' `read_file_pin`, `pin_versions`). Reads `path/name/<version>/data.txt` (the pins metadata, YAML) and the data
#' file it names, without the R pins package (which Debian lacks). The latest
#' version is the one with the latest `created` time (ties broken by the
#' modification time of `data.txt`). Types `csv` and `json` (a table of
#' records) are read; `parquet` and `arrow` only when the suggested `arrow`
#' package is installed; pickle-based types (`joblib`) and others are refused
#' with an error of class `srnomogram_error_pin`, since untrusted pickles must
#' never be loaded. The data file is checked against the SHA-256 that Python's
#' `write_pin` records (`content_sha256`): a pin edited after it was written is
#' refused with the same class of error, naming the stage to rerun.
#'
#' @param path Folder of the board (`board_folder(path, versioned = True)`).
#' @param name Pin name, e.g. `"scores"`.
#' @param version Version folder name; `NULL` (default) reads the latest.
#' @return A data frame with attribute `pin_meta` (the parsed `data.txt`: `type`,
#'   `file`, `created`, `pin_hash`, `title`, `user` metadata, and `version`).
#' @examples
#' board <- file.path(tempdir(), "board")
#' v <- file.path(board, "scores", "20240101T000000Z-abcde")
#' dir.create(v, recursive = TRUE, showWarnings = FALSE)
#' write.csv(data.frame(case_id = c("a", "b"), score = c(0.2, 0.9)),
#'           file.path(v, "scores.csv"), row.names = FALSE)
#' writeLines(c("api_version: 1", "created: 20240101T000000Z", "file: scores.csv",
#'              "type: csv", "title: scores", "user:", "  seed: 0"),
#'            file.path(v, "data.txt"))
#' read_pin(board, "scores")
#' pin_versions(board, "scores")
#' @export
read_pin <- function(path, name, version = NULL) {
  meta <- board_pin_meta(path, name, version)
  version <- meta$version
  vdir <- file.path(path, name, version)
  type <- meta$type %||% ""
  files <- unlist(meta$file)
  if (length(files) != 1L) {
    abort_pin("Pin {.val {name}} holds {length(files)} files; {.fn read_board} reads single-file pins.")
  }
  f <- file.path(vdir, files)
  if (!file.exists(f)) {
    abort_pin("Pin {.val {name}} version {.val {version}}: data file {.path {f}} is missing.")
  }
  check_pin_file(f, meta, path, name)
  df <- switch(type,
    csv = utils::read.csv(f, stringsAsFactors = FALSE, check.names = FALSE),
    json = as.data.frame(jsonlite::fromJSON(f, simplifyVector = TRUE)),
    parquet = ,
    arrow = {
      # arrow is optional and not installable from Debian here, so it is not
      # declared; it is looked up by name only when a parquet pin is read.
      arrow_pkg <- "arrow"
      if (!requireNamespace(arrow_pkg, quietly = TRUE)) {
        abort_pin(c("Pin {.val {name}} is of type {.val {type}}, which needs the {.pkg arrow} package.",
                         i = "Write R-facing pins with {.code type = \"csv\"}."))
      }
      reader <- getExportedValue(arrow_pkg, if (type == "parquet") "read_parquet" else "read_feather")
      as.data.frame(reader(f))
    },
    abort_pin(c("Pin {.val {name}} is of type {.val {type}}, which {.fn read_board} cannot read.",
                     i = "Readable types: csv, json (and parquet/arrow with {.pkg arrow}); pickle-based types are never loaded.")))
  attr(df, "pin_meta") <- meta
  df
}

#' @rdname read_pin
#' @return `read_file_pin()`: the path of a `file` pin's file (e.g. Grad-CAM
#'   maps as `.npz`, read with [read_npz()]), checked against the SHA-256 in its
#'   metadata (`content_sha256`), with attribute `pin_meta`.
#' @export
read_file_pin <- function(path, name, version = NULL) {
  meta <- board_pin_meta(path, name, version)
  if (!identical(meta$type, "file")) {
    abort_pin("Pin {.val {name}} is of type {.val {meta$type}}; {.fn read_file_pin} reads {.val file} pins.")
  }
  f <- file.path(path, name, meta$version, unlist(meta$file)[1])
  if (!file.exists(f)) abort_pin("Pin {.val {name}} version {.val {meta$version}}: data file {.path {f}} is missing.")
  check_pin_file(f, meta, path, name)
  structure(f, pin_meta = meta)
}

# A pin's file must have the SHA-256 that Python's write_pin recorded in `content_sha256` (the file's
# bytes; for CSV pins of boards written before that, srnomogram.utils.hash_bytes of them: SHA-256 of
# the length as 8 little-endian bytes, then the bytes). An edited pin is refused, never read.
check_pin_file <- function(f, meta, path, name) {
  want <- meta$user$content_sha256
  if (is.null(want)) return(invisible(f))
  if (identical(digest::digest(file = f, algo = "sha256"), want)) return(invisible(f))
  n <- file.size(f)
  prefixed <- c(as.raw(floor(n / 256^(0:7)) %% 256), readBin(f, "raw", n))
  if (identical(digest::digest(prefixed, algo = "sha256", serialize = FALSE), want)) return(invisible(f))
  stage <- meta$user$stage
  remedy <- if (is.null(stage)) "rewrite it with the command that wrote it" else
    paste0("rerun the stage that writes it with --force ", stage, " (srnomogram run STUDY.yaml --force ", stage, ")")
  abort_pin(c("Pin {.val {name}} on board {.path {path}} was changed after it was written: {.file {basename(f)}} (version {.val {meta$version}}) does not match its SHA-256 recorded then, so it is not read.",
              i = "{remedy}."))
}

# The parsed data.txt of a pin's version (the latest by default), with `version`.
board_pin_meta <- function(path, name, version = NULL) {
  versions <- pin_versions(path, name)
  if (is.null(version)) {
    version <- versions$version[nrow(versions)]
  } else if (!version %in% versions$version) {
    abort_pin(c("Pin {.val {name}} has no version {.val {version}}.",
                     i = "Available: {.val {versions$version}}."))
  }
  meta <- yaml::read_yaml(file.path(path, name, version, "data.txt"))
  meta$version <- version
  meta
}

#' Read a NumPy `.npz` file
#'
#' Reads the arrays of an `.npz` archive (`numpy.savez`, `savez_compressed`)
#' with base R, so that the study's file pins (Grad-CAM maps) need no Python:
#' little- and big-endian floats (`f4`, `f8`), integers (`i1`-`i4`, `u1`,
#' `u2`), booleans and Unicode strings (`U`), in C or Fortran order. Object
#' arrays (pickles) are refused.
#'
#' @param path Path of the `.npz` file.
#' @return A named list of arrays (vectors for 1-d arrays), with NumPy's
#'   shape and index order (`x[i, , ]` is NumPy's `x[i]`).
#' @examples
#' \dontrun{
#' maps <- read_npz(read_file_pin("study/board", "gradcam_sr_mobilenet_v2"))
#' dim(maps$cam)
#' }
#' @export
read_npz <- function(path) {
  if (!is.character(path) || length(path) != 1L || !file.exists(path)) {
    abort_input("{.arg path} must be an existing {.file .npz} file, not {.path {path}}.")
  }
  dir <- tempfile("npz-")
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  files <- utils::unzip(path, exdir = dir)
  out <- lapply(files, read_npy)
  stats::setNames(out, sub("\\.npy$", "", basename(files)))
}

# One .npy array (format versions 1-3: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
read_npy <- function(file) {
  con <- file(file, "rb")
  on.exit(close(con))
  magic <- readBin(con, "raw", 6L)
  if (!identical(magic, c(as.raw(0x93), charToRaw("NUMPY")))) abort_input("{.path {file}} is not a NumPy {.file .npy} array.")
  major <- readBin(con, "integer", 2L, size = 1L, signed = FALSE)[1]
  hlen <- readBin(con, "integer", 1L, size = if (major == 1L) 2L else 4L, signed = major != 1L, endian = "little")
  header <- rawToChar(readBin(con, "raw", hlen))
  descr <- sub(".*'descr': *'([^']+)'.*", "\\1", header)
  shape_text <- gsub("[^0-9,]", "", sub(".*'shape': *\\(([^)]*)\\).*", "\\1", header))
  shape <- as.integer(strsplit(shape_text, ",", fixed = TRUE)[[1]])
  n <- prod(shape)
  endian <- if (substr(descr, 1L, 1L) == ">") "big" else "little"
  kind <- substr(descr, 2L, 2L)
  size <- as.integer(substring(descr, 3L))
  x <- switch(kind,
    f = readBin(con, "double", n, size = size, endian = endian),
    i = readBin(con, "integer", n, size = size, endian = endian),
    u = readBin(con, "integer", n, size = size, signed = size >= 4L, endian = endian),
    b = readBin(con, "integer", n, size = 1L, signed = FALSE) != 0L,
    U = {
      codes <- readBin(con, "integer", n * size, size = 4L, endian = endian)
      vapply(seq_len(n), function(i) {
        cp <- codes[(i - 1L) * size + seq_len(size)]
        intToUtf8(cp[cp != 0L])
      }, "")
    },
    abort_input("{.path {file}} holds a NumPy array of type {.val {descr}}, which {.fn read_npz} does not read."))
  if (length(shape) > 1L) {
    x <- if (grepl("'fortran_order': *True", header)) array(x, shape) else aperm(array(x, rev(shape)), rev(seq_along(shape)))
  }
  x
}

#' Versions of a pin in a folder board
#'
#' @inheritParams read_pin
#' @return A data frame with `version`, `created` (POSIXct, UTC) and `type`,
#'   oldest first.
#' @export
pin_versions <- function(path, name) {
  if (!is.character(path) || length(path) != 1L || !dir.exists(path)) {
    abort_pin("{.arg path} must be an existing board folder, not {.path {path}}.")
  }
  pdir <- file.path(path, name)
  if (!dir.exists(pdir)) {
    abort_pin(c("Board {.path {path}} has no pin {.val {name}}.",
                     i = "Pins: {.val {list.dirs(path, full.names = FALSE, recursive = FALSE)}}."))
  }
  vs <- list.dirs(pdir, full.names = FALSE, recursive = FALSE)
  vs <- vs[file.exists(file.path(pdir, vs, "data.txt"))]
  if (!length(vs)) {
    abort_pin("Pin {.val {name}} in {.path {path}} has no version with a {.file data.txt}.")
  }
  metas <- lapply(file.path(pdir, vs, "data.txt"), yaml::read_yaml)
  created <- as.POSIXct(vapply(metas, function(m) as.character(m$created %||% NA), ""),
                        format = "%Y%m%dT%H%M%SZ", tz = "UTC")
  mtime <- file.mtime(file.path(pdir, vs, "data.txt"))
  o <- order(created, mtime, vs)
  data.frame(version = vs[o], created = created[o],
             type = vapply(metas, function(m) as.character(m$type %||% NA), "")[o],
             stringsAsFactors = FALSE)
}

#' Deprecated names of the board readers
#'
#' `read_board()` and `board_versions()` are the former names of [read_pin()]
#' and [pin_versions()], which now carry the Python package's verbs; they
#' still work, with a deprecation warning once per session.
#'
#' @inheritParams read_pin
#' @return As [read_pin()] and [pin_versions()].
#' @keywords internal
#' @export
read_board <- function(path, name, version = NULL) {
  deprecated_name("read_board", "read_pin")
  read_pin(path, name, version)
}

#' @rdname read_board
#' @export
board_versions <- function(path, name) {
  deprecated_name("board_versions", "pin_versions")
  pin_versions(path, name)
}

deprecated_name <- function(old, new) {
  old <- if (grepl("=", old, fixed = TRUE)) old else paste0(old, "()")
  new <- if (grepl("=", new, fixed = TRUE)) new else paste0(new, "()")
  rlang::warn(paste0("`", old, "` is deprecated; use `", new, "`, the name the Python package uses too."),
              class = "srnomogram_deprecated", .frequency = "once", .frequency_id = old)
}

#' Read a pin from a folder board written by Python's pins
#'
#' Reads `path/name/<version>/data.txt` (the pins metadata, YAML) and the data
#' file it names, without the R pins package (which Debian lacks). The latest
#' version is the one with the latest `created` time (ties broken by the
#' modification time of `data.txt`). Types `csv` and `json` (a table of
#' records) are read; `parquet` and `arrow` only when the suggested `arrow`
#' package is installed; pickle-based types (`joblib`) and others are refused
#' with an error of class `srnomogram_error_pin`, since untrusted pickles must
#' never be loaded.
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
#' read_board(board, "scores")
#' board_versions(board, "scores")
#' @export
read_board <- function(path, name, version = NULL) {
  versions <- board_versions(path, name)
  if (is.null(version)) {
    version <- versions$version[nrow(versions)]
  } else if (!version %in% versions$version) {
    abort_pin(c("Pin {.val {name}} has no version {.val {version}}.",
                     i = "Available: {.val {versions$version}}."))
  }
  vdir <- file.path(path, name, version)
  meta <- yaml::read_yaml(file.path(vdir, "data.txt"))
  type <- meta$type %||% ""
  files <- unlist(meta$file)
  if (length(files) != 1L) {
    abort_pin("Pin {.val {name}} holds {length(files)} files; {.fn read_board} reads single-file pins.")
  }
  f <- file.path(vdir, files)
  if (!file.exists(f)) {
    abort_pin("Pin {.val {name}} version {.val {version}}: data file {.path {f}} is missing.")
  }
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
  meta$version <- version
  attr(df, "pin_meta") <- meta
  df
}

#' Versions of a pin in a folder board
#'
#' @inheritParams read_board
#' @return A data frame with `version`, `created` (POSIXct, UTC) and `type`,
#'   oldest first.
#' @export
board_versions <- function(path, name) {
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

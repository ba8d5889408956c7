write_pin_fixture <- function(board, name, version, df, type = "csv", created = "20240101T000000Z",
                              user = list(seed = 0)) {
  v <- file.path(board, name, version)
  dir.create(v, recursive = TRUE, showWarnings = FALSE)
  file <- paste0(name, ".", type)
  if (type == "csv") utils::write.csv(df, file.path(v, file), row.names = FALSE)
  if (type == "json") jsonlite::write_json(df, file.path(v, file))
  if (type %in% c("joblib", "parquet")) writeBin(as.raw(1:10), file.path(v, file))
  yaml::write_yaml(list(api_version = 1L, created = created, description = NULL, file = file,
                        file_size = file.size(file.path(v, file)), pin_hash = "abc", title = name,
                        type = type, user = user), file.path(v, "data.txt"))
}

test_that("read_pin reads the latest csv version with its metadata", {
  board <- withr::local_tempdir()
  write_pin_fixture(board, "scores", "20240101T000000Z-aaaaa", data.frame(case_id = c("a", "b"), score = c(0.1, 0.9)))
  write_pin_fixture(board, "scores", "20240102T000000Z-bbbbb", data.frame(case_id = c("a", "b"), score = c(0.2, 0.8)),
                    created = "20240102T000000Z", user = list(seed = 1, git = "abc"))
  df <- read_pin(board, "scores")
  expect_equal(df$score, c(0.2, 0.8))
  expect_equal(attr(df, "pin_meta")$user$seed, 1)
  expect_equal(attr(df, "pin_meta")$version, "20240102T000000Z-bbbbb")
  old <- read_pin(board, "scores", version = "20240101T000000Z-aaaaa")
  expect_equal(old$score, c(0.1, 0.9))
  expect_equal(nrow(pin_versions(board, "scores")), 2)
  write_pin_fixture(board, "js", "20240101T000000Z-ccccc", data.frame(a = 1:2, b = c("x", "y")), type = "json")
  expect_equal(read_pin(board, "js")$b, c("x", "y"))
})

test_that("read_board and board_versions still work, with a deprecation warning naming the new verb", {
  board <- withr::local_tempdir()
  write_pin_fixture(board, "scores", "20240101T000000Z-aaaaa", data.frame(case_id = c("a", "b"), score = c(0.1, 0.9)))
  rlang::reset_warning_verbosity("read_board()")
  rlang::reset_warning_verbosity("board_versions()")
  expect_warning(df <- read_board(board, "scores"), "read_pin", class = "srnomogram_deprecated")
  expect_identical(df, read_pin(board, "scores"))
  expect_warning(v <- board_versions(board, "scores"), "pin_versions", class = "srnomogram_deprecated")
  expect_identical(v, pin_versions(board, "scores"))
})

test_that("read_file_pin returns a file pin's file after checking its SHA-256, and refuses a table pin", {
  board <- withr::local_tempdir()
  v <- file.path(board, "maps", "20240101T000000Z-aaaaa")
  dir.create(v, recursive = TRUE)
  writeBin(as.raw(0:255), file.path(v, "maps.npz"))
  sha <- digest::digest(file = file.path(v, "maps.npz"), algo = "sha256")
  yaml::write_yaml(list(api_version = 1L, created = "20240101T000000Z", file = "maps.npz", title = "maps", type = "file",
                        user = list(content_sha256 = sha)), file.path(v, "data.txt"))
  f <- read_file_pin(board, "maps")
  expect_equal(readBin(f, "raw", 300), as.raw(0:255))
  writeBin(as.raw(1:3), file.path(v, "maps.npz"))
  expect_error(read_file_pin(board, "maps"), "SHA-256", class = "srnomogram_error_pin")
  write_pin_fixture(board, "scores", "20240101T000000Z-aaaaa", data.frame(a = 1))
  expect_error(read_file_pin(board, "scores"), "file", class = "srnomogram_error_pin")
})

test_that("read_pin refuses unknown pins, versions and pickle types", {
  board <- withr::local_tempdir()
  write_pin_fixture(board, "obj", "20240101T000000Z-aaaaa", NULL, type = "joblib")
  expect_error(read_pin(board, "obj"), "joblib", class = "srnomogram_error_pin")
  expect_error(read_pin(board, "nothere"), class = "srnomogram_error_pin")
  expect_error(read_pin(board, "obj", version = "v9"), class = "srnomogram_error_pin")
  expect_error(read_pin(file.path(board, "nope"), "obj"), class = "srnomogram_error_pin")
  arrow_pkg <- "arrow"
  skip_if(requireNamespace(arrow_pkg, quietly = TRUE), "arrow is installed, parquet is readable")
  write_pin_fixture(board, "pq", "20240101T000000Z-aaaaa", NULL, type = "parquet")
  expect_error(read_pin(board, "pq"), "arrow", class = "srnomogram_error_pin")
})

test_that("read_pin reads a board written by Python pins when available", {
  # keep the venv's symlink: resolving it would lose the venv's site-packages
  py <- file.path(normalizePath(file.path(testthat::test_path(), "..", ".."), mustWork = FALSE),
                  ".venv", "bin", "python")
  skip_if_not(file.exists(py), "project Python venv not found")
  board <- withr::local_tempdir()
  script <- file.path(board, "write_pin.py")
  writeLines(c("import sys, pins, pandas as pd",
               "b = pins.board_folder(sys.argv[1], versioned=True)",
               "df = pd.DataFrame({'case_id': ['a', 'b'], 'score': [0.25, 0.75]})",
               "b.pin_write(df, 'scores', type='csv', metadata={'seed': 3})"), script)
  status <- system2(py, c(shQuote(script), shQuote(board)), stdout = FALSE, stderr = FALSE)
  skip_if_not(status == 0, "Python pins not importable")
  df <- read_pin(board, "scores")
  expect_equal(df$score, c(0.25, 0.75))
  expect_equal(attr(df, "pin_meta")$user$seed, 3)
})

test_that("read_pin checks a Python pin's SHA-256 and refuses an edited pin, naming the stage to rerun", {
  # fixtures/board_python: written by srnomogram.board.write_pin; legacy_scores records the earlier
  # length-prefixed hash (srnomogram.utils.hash_bytes) that boards written before 0.1.1 hold
  board <- withr::local_tempdir()
  file.copy(testthat::test_path("fixtures", "board_python"), board, recursive = TRUE)
  board <- file.path(board, "board_python")
  t2 <- read_pin(board, "table2")
  expect_equal(t2$auc, c(0.8125, 0.875), tolerance = 0)
  expect_equal(read_pin(board, "legacy_scores")$score, c(0.25, 0.75), tolerance = 0)
  f <- list.files(file.path(board, "table2"), pattern = "\\.csv$", recursive = TRUE, full.names = TRUE)
  writeLines(sub("0.8125", "0.999", readLines(f), fixed = TRUE), f)
  expect_equal(utils::read.csv(f)$auc[1], 0.999)  # the edit is there to be read
  err <- expect_error(read_pin(board, "table2"), "changed after it was written", class = "srnomogram_error_pin")
  expect_match(conditionMessage(err), "--force table2", fixed = TRUE)
  expect_match(conditionMessage(err), "table2.csv", fixed = TRUE)
  g <- list.files(file.path(board, "legacy_scores"), pattern = "\\.csv$", recursive = TRUE, full.names = TRUE)
  writeLines(sub("0.75", "0.7", readLines(g), fixed = TRUE), g)
  expect_error(read_pin(board, "legacy_scores"), "command that wrote it", class = "srnomogram_error_pin")
})

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

test_that("read_board reads the latest csv version with its metadata", {
  board <- withr::local_tempdir()
  write_pin_fixture(board, "scores", "20240101T000000Z-aaaaa", data.frame(case_id = c("a", "b"), score = c(0.1, 0.9)))
  write_pin_fixture(board, "scores", "20240102T000000Z-bbbbb", data.frame(case_id = c("a", "b"), score = c(0.2, 0.8)),
                    created = "20240102T000000Z", user = list(seed = 1, git = "abc"))
  df <- read_board(board, "scores")
  expect_equal(df$score, c(0.2, 0.8))
  expect_equal(attr(df, "pin_meta")$user$seed, 1)
  expect_equal(attr(df, "pin_meta")$version, "20240102T000000Z-bbbbb")
  old <- read_board(board, "scores", version = "20240101T000000Z-aaaaa")
  expect_equal(old$score, c(0.1, 0.9))
  expect_equal(nrow(board_versions(board, "scores")), 2)
  write_pin_fixture(board, "js", "20240101T000000Z-ccccc", data.frame(a = 1:2, b = c("x", "y")), type = "json")
  expect_equal(read_board(board, "js")$b, c("x", "y"))
})

test_that("read_board refuses unknown pins, versions and pickle types", {
  board <- withr::local_tempdir()
  write_pin_fixture(board, "obj", "20240101T000000Z-aaaaa", NULL, type = "joblib")
  expect_error(read_board(board, "obj"), "joblib", class = "srnomogram_error_pin")
  expect_error(read_board(board, "nothere"), class = "srnomogram_error_pin")
  expect_error(read_board(board, "obj", version = "v9"), class = "srnomogram_error_pin")
  expect_error(read_board(file.path(board, "nope"), "obj"), class = "srnomogram_error_pin")
  arrow_pkg <- "arrow"
  skip_if(requireNamespace(arrow_pkg, quietly = TRUE), "arrow is installed, parquet is readable")
  write_pin_fixture(board, "pq", "20240101T000000Z-aaaaa", NULL, type = "parquet")
  expect_error(read_board(board, "pq"), "arrow", class = "srnomogram_error_pin")
})

test_that("read_board reads a board written by Python pins when available", {
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
  df <- read_board(board, "scores")
  expect_equal(df$score, c(0.25, 0.75))
  expect_equal(attr(df, "pin_meta")$user$seed, 3)
})

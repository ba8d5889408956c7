# Golden values copied from ../shared/golden (README there: exact calls, package versions).
golden_input <- function(case) {
  utils::read.csv(testthat::test_path("fixtures", sprintf("input_%s.csv", case)))
}
golden_cases <- c("paper_train", "paper_test", "small", "ties")

# Sourced by the scripts beside it: the R package from the source tree when run from the repository
# root (with pkgload), the installed one otherwise.
suppressPackageStartupMessages({
  if (requireNamespace("pkgload", quietly = TRUE) && file.exists("DESCRIPTION") &&
      any(grepl("^Package: srnomogram", readLines("DESCRIPTION")))) {
    pkgload::load_all(".", quiet = TRUE)
  } else {
    library(srnomogram)
  }
})

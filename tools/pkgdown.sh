#!/usr/bin/env bash
# Build the pkgdown site of the R package (reference, the vignettes as articles, NEWS) into pkgdown/,
# which git and R CMD build ignore. Offline: pkgdown's look-up of the package on CRAN/Bioconductor
# (for a "View on CRAN" link) is switched off, and Bootstrap 5 comes from bslib, compiled locally.
# Any warning pkgdown raises while building (a bad reference, a missing file, ...) fails the build;
# warnings inside examples and vignettes are shown in the pages, as R CMD check shows them.
#
# Usage: bash tools/pkgdown.sh          (site in pkgdown/index.html)
set -euo pipefail
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in *UTF-8*|*utf8*) ;; *) export LC_ALL=C.UTF-8 ;; esac
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
Rscript --vanilla - <<'RSCRIPT'
options(pkgdown.internet = FALSE)
warned <- character()
withCallingHandlers({
  pkgdown::check_pkgdown(".")
  # In this process (so the option above holds), into pkgdown/. install = TRUE installs the sources
  # into a temporary library first: the articles are rendered in fresh R processes that attach the
  # installed package (its inst/extdata board included), not the sources.
  pkgdown::build_site(".", override = list(destination = "pkgdown"), install = TRUE, new_process = FALSE,
                      devel = FALSE, preview = FALSE)
}, warning = function(w) warned <<- c(warned, conditionMessage(w)))
if (length(warned)) {
  message("pkgdown.sh: pkgdown warned (treated as errors):\n", paste0("  ", warned, collapse = "\n"))
  quit(status = 1)
}
message("pkgdown.sh: site in ", normalizePath("pkgdown/index.html"))
RSCRIPT

#!/usr/bin/env bash
# Run every test: pytest (Python) then testthat (R). Either failing fails the run.
# Extra arguments go to pytest (e.g. -m slow for the real-cohort comparisons).
set -uo pipefail
cd "$(dirname "$0")/.."
bash setup.sh || exit 1
export R_LIBS="$PWD/.venv/R-library${R_LIBS:+:$R_LIBS}"
export MPLBACKEND=Agg
status=0
echo "== pytest =="
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
echo "== testthat =="
Rscript -e 'res <- as.data.frame(testthat::test_local(".", reporter = testthat::ProgressReporter$new(show_praise = FALSE), stop_on_failure = FALSE)); f <- sum(res$failed) + sum(res$error); cat(sprintf("testthat: %d passed, %d failed, %d skipped\n", sum(res$nb) - sum(res$failed) - sum(res$skipped), f, sum(res$skipped))); quit(status = as.integer(f > 0))' || status=1
exit $status

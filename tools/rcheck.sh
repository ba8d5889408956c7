#!/usr/bin/env bash
# R CMD build + R CMD check of the srnomogram R package, run from anywhere.
#
# ResourceSelection and rmda are in Suggests (optional reference engines of
# hl_test() and decision_curve()) but cannot be installed on every machine;
# _R_CHECK_FORCE_SUGGESTS_=false lets the check run without them (their tests
# skip). Prints the check's Status line; exits non-zero when it reports an ERROR
# (or the build/check itself fails). The check directory is kept and printed
# when something goes wrong.
set -euo pipefail
# The package is Encoding: UTF-8; without a UTF-8 locale (CI may run with none) R CMD check tries
# en_US.UTF-8, which a minimal Debian lacks, and warns. C.UTF-8 is always there.
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in *UTF-8*|*utf8*) ;; *) export LC_ALL=C.UTF-8 ;; esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/srnomogram-rcheck.XXXXXX")"
keep=0
cleanup() { if [ "$keep" -eq 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# R CMD build copies the whole source directory before it applies .Rbuildignore, .venv (several GB of
# torch/CUDA wheels) included: a CI machine with a small /tmp ran out of space there. Stage only the
# files git knows (tracked, plus untracked ones it does not ignore) and build from that copy. Outside
# a git checkout, copy the tree less the large ignored folders.
src="$work/srnomogram"
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$src"
else
  tar -C "$repo" --exclude=./.venv --exclude=./.git --exclude=./studies --exclude=./demo_study -cf - . \
    | tar -xf - -C "$src"
fi

cd "$work"
# The vignettes (vignettes/*.Rmd, knitr + rmarkdown + pandoc) are built here, into the tarball's
# inst/doc; the check then runs their code again (--no-build-vignettes only skips rebuilding the
# HTML a second time). Each vignette uses small bootstrap counts so that this stays short.
if ! R CMD build "$src" > build.log 2>&1; then
  keep=1
  cat build.log >&2
  echo "R CMD build failed; log in $work/build.log" >&2
  exit 1
fi
tarball="$(ls -1 srnomogram_*.tar.gz | head -n 1)"

rc=0
_R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-build-vignettes "$tarball" > check.log 2>&1 || rc=$?

status="$(grep -E '^Status:' check.log || true)"
# Show what the check flagged: each WARNING/NOTE/ERROR step with its details
# (the indented lines up to the next "* checking" step).
log="srnomogram.Rcheck/00check.log"
[ -f "$log" ] || log=check.log
awk '/^\* / { show = ($0 ~ /(WARNING|NOTE|ERROR)[[:space:]]*$/) } show' "$log" | grep -v '^Status:' || true
if [ -z "$status" ]; then
  keep=1
  tail -n 40 check.log >&2
  echo "R CMD check gave no Status line (exit $rc); log in $work/check.log" >&2
  exit 1
fi
echo "$status"
if [ "$rc" -ne 0 ] || grep -q ERROR <<< "$status"; then
  keep=1
  echo "R CMD check reported an ERROR; details in $work/srnomogram.Rcheck" >&2
  exit 1
fi

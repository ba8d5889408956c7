#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml, docs/) offline with warnings as errors, into a temporary
# folder (or into $1). Uses the .venv that setup.sh made (the docs extra); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-}
if [[ -z $out ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
if [[ ! -x .venv/bin/mkdocs ]]; then
  echo "tools/docs.sh: .venv/bin/mkdocs not found; run 'bash setup.sh' (it installs the docs extra)." >&2
  exit 1
fi
start=$SECONDS
# this checkout's sources (the API pages are read by griffe from python/; the hook imports the configuration);
# NO_MKDOCS_2_WARNING: Material's notice about MkDocs 2, printed on every build, says nothing about this site
# (not --quiet: it hides the warnings from --strict too, which then passes whatever they say; INFO lines are dropped here)
PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" NO_MKDOCS_2_WARNING=1 \
  .venv/bin/mkdocs build --strict -d "$out" 2>&1 | { grep -v '^INFO ' || true; }
echo "tools/docs.sh: site built in $((SECONDS - start)) s (mkdocs build --strict) into $out"

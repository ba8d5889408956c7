#!/usr/bin/env bash
# One idempotent set-up for srnomogram on Debian 12: Debian's R and R packages, a .venv with the
# Python package and its dependencies, and the R package installed where the venv's rpy2 finds it.
# A second run with nothing changed returns in about a second.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
RLIB="$VENV/R-library"
STAMP="$ROOT/.setup-stamp"

APT_PKGS=(r-base-core r-base-dev r-cran-rms r-cran-proc r-cran-testthat r-cran-ggplot2 r-cran-yaml
          r-cran-cli r-cran-rlang r-cran-jsonlite r-cran-withr r-cran-scales r-cran-patchwork
          r-cran-digest r-cran-mass r-cran-pkgload r-cran-roxygen2 r-cran-metafor python3-venv chromium
          r-cran-knitr r-cran-rmarkdown pandoc r-cran-pkgdown)

stamp_of() {
  # Everything that changes what set-up installs.
  { cat pyproject.toml setup.sh DESCRIPTION NAMESPACE R/*.R 2>/dev/null || true; } | sha256sum | cut -d" " -f1
}

if [[ -f "$STAMP" && -x "$VENV/bin/srnomogram" && "$(cat "$STAMP")" == "$(stamp_of)" ]]; then
  exit 0
fi

# 1. Debian packages -----------------------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do
  if [[ $p == python3-venv ]] && python3 -m venv --help >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: these Debian packages are missing; run as root, then run setup.sh again:" >&2
    echo "  sudo sh -c '$cmd'" >&2
    exit 1
  fi
  echo "setup.sh: installing Debian packages: ${missing[*]}"
  sh -c "$cmd"
fi

# 2. Python virtual environment ---------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup.sh: creating $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip setuptools wheel
# PyRadiomics 3.0.1 (the paper's version) builds against numpy 2 only without build isolation.
if ! "$VENV/bin/python" -c "import radiomics, sys; sys.exit(radiomics.__version__ != 'v3.0.1' and radiomics.__version__ != '3.0.1')" 2>/dev/null; then
  echo "setup.sh: building pyradiomics 3.0.1"
  "${PIP[@]}" install numpy setuptools wheel versioneer
  "${PIP[@]}" install --no-build-isolation pyradiomics==3.0.1
fi
echo "setup.sh: installing srnomogram and its Python dependencies (torch and torchvision resolved together)"
"${PIP[@]}" install -e ".[test,docs]"
# The reference of the ComBat tests (tests/python/radiomics/test_harmonise.py). Its metadata pins numpy<2
# and pandas<3, which would downgrade the venv; the functions the tests call run on numpy 2 and pandas 3,
# and its imports (statsmodels, nibabel) come with the test extra.
"${PIP[@]}" install --no-deps neuroHarmonize==2.5.2 neuroCombat==0.2.12

# 3. The R package, where the venv's rpy2 and the tests look for it ------------------------------
mkdir -p "$RLIB"
echo "setup.sh: installing the R package into $RLIB"
R CMD INSTALL --no-multiarch --library="$RLIB" . >"$VENV/R-install.log" 2>&1 || {
  tail -20 "$VENV/R-install.log" >&2; echo "setup.sh: R CMD INSTALL failed (log: $VENV/R-install.log)" >&2; exit 1; }

stamp_of >"$STAMP"
echo "setup.sh: done. Python: $VENV/bin/python, CLI: $VENV/bin/srnomogram, R library: $RLIB"

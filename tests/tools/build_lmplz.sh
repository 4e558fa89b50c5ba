#!/usr/bin/env bash
# tests/tools/build_lmplz.sh [CACHE_DIR]
#
# Build KenLM's `lmplz` and `build_binary` from the kenlm 0.3.0 source package and install them
# into CACHE_DIR/bin (default ~/.cache/asrsweep/kenlm-bin). The estimator test compares our
# pure-Python Kneser-Ney against this lmplz; CI runs this script first so that test really runs.
# Skips all work when CACHE_DIR/bin/lmplz already exists. Takes ≈ 3 min on 2 cores.
set -euo pipefail

CACHE="${1:-$HOME/.cache/asrsweep/kenlm-bin}"
KENLM_VERSION="0.3.0"
JOBS="${JOBS:-2}"
PIP="${PIP:-}"

if [[ -x "$CACHE/bin/lmplz" && -x "$CACHE/bin/build_binary" ]]; then
    echo "lmplz already built: $CACHE/bin/lmplz"
    exit 0
fi

# Boost (program_options, system, thread, test) and compression libraries are build
# dependencies of lmplz; install the missing ones when we may (root), else say what is missing.
PKGS=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if (( ${#missing[@]} )); then
    if [[ "$(id -u)" == 0 ]]; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "error: missing packages: ${missing[*]}; install them (sudo apt-get install ...)" >&2
        exit 1
    fi
fi

if [[ -z "$PIP" ]]; then
    for cand in "$(dirname "$0")/../../.venv/bin/pip" pip3 pip; do
        if command -v "$cand" >/dev/null 2>&1; then PIP="$cand"; break; fi
    done
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kenlm-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# Only kenlm as source: `--no-binary :all:` would compile cmake and friends from source too.
"$PIP" download --quiet --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$WORK"
tar -xzf "$WORK"/kenlm-*.tar.gz -C "$WORK"
SRC="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kenlm-*' | head -n1)"
mkdir -p "$SRC/build"
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$SRC/build" -j"$JOBS" lmplz build_binary
mkdir -p "$CACHE/bin"
install -m 0755 "$SRC/build/bin/lmplz" "$SRC/build/bin/build_binary" "$CACHE/bin/"
echo "built: $CACHE/bin/lmplz"

#!/usr/bin/env bash
# Create the peer-simulator venvs used by benchmarks/bench_perf_vs_scalesim.py.
# They live in benchmarks/.peers/ (git-ignored), never in the project's own .venv:
#   venv-scalesim : scalesim 3.0.0 (needs numpy < 2.4, the project pins 2.4)
#   venv-zigzag   : zigzag-dse 3.9.1 (+ six, an undeclared dependency)
# Idempotent: a stamp file per venv records the exact requirement line; rerunning is a no-op.
# Exit codes: 0 ok, 3 package registry unreachable / install failed, 2 usage error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$(cd "$HERE/.." && pwd)/.peers}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

make_venv() {  # name, requirement words...
    local name="$1"; shift
    local dir="$PEERS_DIR/$name"
    local want="$*"
    local stamp="$dir/.installed"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "setting up peer venv $name ($want) in $dir" >&2
    rm -rf "$dir"
    mkdir -p "$PEERS_DIR"
    "$PYTHON" -m venv "$dir"
    local log="$PEERS_DIR/$name.pip.log"
    if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        echo "ERROR: could not install '$want' into $dir (package registry unreachable?)." >&2
        echo "       pip log: $log" >&2
        tail -n 5 "$log" >&2 || true
        rm -rf "$dir"
        exit 3
    fi
    echo "$want" >"$stamp"
}

which_ones="${1:-all}"
case "$which_ones" in
    all) make_venv venv-scalesim "scalesim==3.0.0" "numpy<2.4"
         make_venv venv-zigzag "zigzag-dse==3.9.1" "six" ;;
    scalesim) make_venv venv-scalesim "scalesim==3.0.0" "numpy<2.4" ;;
    zigzag) make_venv venv-zigzag "zigzag-dse==3.9.1" "six" ;;
    *) echo "usage: $0 [all|scalesim|zigzag]" >&2; exit 2 ;;
esac
echo "$PEERS_DIR"

#!/usr/bin/env bash
# One entry point for newcomers and CI; needs only python3 (3.11+) and a C compiler.
#   bash dev.sh demo     set up .venv and run the demo (a simulated public-agency peak day)
#   bash dev.sh test     set up .venv and run the whole test suite
#   bash dev.sh bench    peak-load measurements (full size; takes a few minutes)
#   bash dev.sh bench-ci asv suite in quick mode + core/reference throughput guard
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${ACD_VENV:-.venv}

# step LABEL CMD...: run CMD, then finish the line "dev.sh: LABEL ... 12.3 s" (CMD's exit status kept)
step() {
    local label=$1 t0=${EPOCHREALTIME:-$SECONDS} rc=0
    shift
    printf 'dev.sh: %s ... ' "$label" >&2
    if "$@"; then rc=0; else rc=$?; fi
    local t1=${EPOCHREALTIME:-$SECONDS}
    if [ "$rc" -eq 0 ]; then
        LC_ALL=C awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s\n", b - a }' >&2
    else
        LC_ALL=C awk -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN { printf "failed (exit %d) after %.1f s\n", rc, b - a }' >&2
    fi
    return "$rc"
}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        step "create $VENV" "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.acd-installed"
    # reinstall when the build inputs changed
    if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml setup.py constraints.txt src/acd/adapters/asterisk/agi_relay.c src/acd/_core.pyx src/acd/_core.pxd src/acd/sim/_loop.pyx -newer "$stamp" 2>/dev/null)" ]; then
        step "upgrade pip" "$VENV/bin/python" -m pip install -q --upgrade pip
        step "build and install acd with its test, bench, postgres and planning extras (compiles the core)" \
            "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test,bench,postgres,planning]"
        touch "$stamp"
    else
        echo "dev.sh: $VENV is up to date" >&2
    fi
}

# asv keeps its machine file in ~/.asv-machine.json (HOME is its only setting): give it a home in the repository
ASV_HOME="$PWD/.asv-home"
asv() {
    mkdir -p "$ASV_HOME"
    (cd bench && HOME="$ASV_HOME" "../$VENV/bin/asv" "$@")
}

case "${1:-}" in
    demo)
        setup
        "$VENV/bin/python" -m acd demo "${@:2}"
        ;;
    test)
        setup
        "$VENV/bin/python" -m pytest "${@:2}"
        ;;
    bench)
        setup
        "$VENV/bin/python" bench/peak_load.py "${@:2}"
        ;;
    bench-ci)
        setup
        step "asv machine (file in .asv-home/)" asv machine --yes --machine ci >/dev/null
        asv run --python=same --quick --show-stderr --machine ci --set-commit-hash "$(git rev-parse HEAD)"
        "$VENV/bin/python" bench/peak_load.py --quick --guard 20
        ;;
    *)
        sed -n '2,6p' "$0"
        exit 2
        ;;
esac

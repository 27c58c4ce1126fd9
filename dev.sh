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

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.acd-installed"
    # reinstall when the build inputs changed
    if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml setup.py constraints.txt src/acd/_core.pyx src/acd/_core.pxd src/acd/sim/_loop.pyx -newer "$stamp" 2>/dev/null)" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test,bench,postgres]"
        touch "$stamp"
    fi
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
        (cd bench && "../$VENV/bin/asv" machine --yes >/dev/null \
            && "../$VENV/bin/asv" run --python=same --quick --show-stderr --set-commit-hash "$(git rev-parse HEAD)")
        "$VENV/bin/python" bench/peak_load.py --quick --guard 20
        ;;
    *)
        sed -n '2,7p' "$0"
        exit 2
        ;;
esac

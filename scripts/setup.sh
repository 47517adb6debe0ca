#!/usr/bin/env bash
# Install everything i2dl-dsl needs on a fresh Debian/Ubuntu machine with Python >= 3.10.
#   scripts/setup.sh          the package and its runtime dependencies, Graphviz's `dot`
#   scripts/setup.sh --test   also pytest and the PyTorch CPU build the reference tests use
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e .
if ! command -v dot >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq graphviz >/dev/null
    else
        echo "warning: Graphviz's dot is missing; pictures are written as .dot text only" >&2
    fi
fi
if [ "${1:-}" = "--test" ]; then
    python3 -m pip install -q --disable-pip-version-check -e '.[test]' "torch==2.13.0"
fi

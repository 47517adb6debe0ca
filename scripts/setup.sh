#!/usr/bin/env bash
# Install i2dl-dsl into the project environment .venv, on a fresh Debian/Ubuntu
# machine with Python >= 3.10 (whose system Python may refuse `pip install`,
# PEP 668: "externally-managed-environment"):
#   scripts/setup.sh          .venv with the package (editable) and its runtime
#                             dependencies; Graphviz's `dot`
#   scripts/setup.sh --test   also pytest and the PyTorch CPU build the reference tests use,
#                             and torchvision's model definitions
# Then `. .venv/bin/activate` puts i2dl-compile, i2dl-run and i2dl-train on PATH.
# PYTHON=python3.12 scripts/setup.sh picks the interpreter the environment is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

check_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "error: i2dl-dsl needs Python >= 3.10; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)" >&2
        echo "hint: install python3 (apt-get install python3), or run PYTHON=python3.X scripts/setup.sh" >&2
        exit 2
    fi
}

# Debian and Ubuntu ship venv's ensurepip apart, in python3-venv (python3.X-venv):
# without it `python3 -m venv` fails and leaves a .venv with no pip in it.
make_venv() {
    if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return
    fi
    rm -rf "$VENV"
    if "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        return
    fi
    rm -rf "$VENV"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: '$PYTHON -m venv' failed and there is no apt-get to install venv with" >&2
        exit 2
    fi
    local version
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "installing Debian's python$version-venv (venv and ensurepip)" >&2
    apt_install "python$version-venv" || apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
}

install_dot() {
    if command -v dot >/dev/null 2>&1; then
        return
    fi
    if command -v apt-get >/dev/null 2>&1; then
        apt_install graphviz
    else
        echo "warning: Graphviz's dot is missing; pictures are written as .dot text only" >&2
    fi
}

install_vscode_modules() {
    # VS Code's own TextMate engine for the grammar test, where node is installed (the test skips without it).
    if command -v npm >/dev/null 2>&1; then
        (cd editors/vscode && npm install --no-audit --no-fund --silent) ||
            echo "warning: npm install in editors/vscode failed; the VS Code engine's grammar test will skip" >&2
    fi
}

case "${1:-}" in
    "" | --test) ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
esac
check_python
if [ "${1:-}" = "--test" ]; then install_vscode_modules; fi
make_venv
"${PIP[@]}" -e .
install_dot
if [ "${1:-}" = "--test" ]; then
    "${PIP[@]}" -e '.[test]' "torch==2.13.0"
    # torchvision's model definitions are the zoo's oracle; without its
    # dependencies, which would replace the CPU torch build (tests/torchvision_oracle.py)
    "${PIP[@]}" --no-deps "torchvision==0.28.0"
fi

#!/usr/bin/env bash
# Create .venv and install the project with its dev extras. Re-run only when pyproject.toml changes
# (the Makefile keeps a stamp), so an unchanged tree costs nothing.
set -euo pipefail
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "$python not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "$("$python" --version 2>&1) is too old; desktop-chat needs Python 3.11 or newer" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
touch .venv/.installed

#!/usr/bin/env bash
# Install the Debian packages that devstack, the app and the test suite need; `system-deps.sh package` also
# what `make package-check` needs (lintian).
# As root it installs what is missing with apt-get; otherwise it lists what to install and fails.
set -euo pipefail

packages=(
  # devstack: database, logical decoding for realtime, cache
  postgresql-15 postgresql-contrib postgresql-15-wal2json redis-server
  # Qt: a virtual display for screenshot tests, and the xcb libraries PySide6 loads
  xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxkbcommon-x11-0 libegl1 libgl1
  libfontconfig1 libdbus-1-3 fonts-dejavu-core
  # emoji in colour, as the .deb recommends; a session bus for the notification tests
  fonts-noto-color-emoji dbus-daemon
  # the .deb (tests/packaging/): readelf and strip, RUNPATH clean-up, the entry and metainfo validators, and
  # the Wayland libraries the bundled Qt needs, which must be installed for its Depends to be derived
  binutils patchelf desktop-file-utils appstream libwayland-client0 libwayland-cursor0
)
if [ "${1:-}" = package ]; then
  packages=(lintian)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# A Debian python3 without ensurepip cannot create the virtual environment.
python="${PYTHON:-python3}"
if [ "${1:-}" != package ] && ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
# PyInstaller bundles libpython: Debian's python3.X keeps it in its own package.
if [ "${1:-}" != package ] && [ "$("$python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" = /usr ]; then
  libpython="lib$("$python" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
  dpkg-query -W -f='${Status}' "$libpython" 2>/dev/null | grep -q "install ok installed" || missing+=("$libpython")
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing system packages (${missing[*]}) and no apt-get to install them with." >&2
  exit 1
fi

echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

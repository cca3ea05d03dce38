#!/usr/bin/env bash
# Installs the Debian packages aero builds with, then builds it (Release) into build/.
#   scripts/setup.sh            packages + build
#   scripts/setup.sh --deps     packages only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  libzstd-dev libpcre2-dev libedit-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev librust-blake3-dev libcurl4-openssl-dev libcpp-httplib-dev liburing-dev
  clang-14 libclang-rt-14-dev b3sum qemu-user
  # The Python package (import aero) and its tests; torch makes state dicts torch tensors.
  python3-dev pybind11-dev python3-numpy python3-pytest python3-torch
  libcpp-httplib-dev chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm for the server's client tests: Debian's, unless a node (e.g. NodeSource's, which
# bundles npm) is already there.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The server's client tests (tests/server: the openai client, puppeteer-core), pinned by the lock file.
if [ ! -d tests/server/node_modules ] || [ tests/server/package-lock.json -nt tests/server/node_modules ]; then
  npm ci --prefix tests/server --no-audit --no-fund
fi
[ "${1:-}" = "--deps" ] && exit 0

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
echo "setup: built build/bin/aero"

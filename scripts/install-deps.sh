#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those that are missing.
# Idempotent and quiet when nothing is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libmbedtls-dev zlib1g-dev libdivsufsort-dev libssl-dev libcli11-dev nlohmann-json3-dev openssl
  mosquitto mosquitto-dev libmosquitto-dev mosquitto-clients libsqlite3-dev libcpp-httplib-dev libjsmn-dev
  libsodium-dev  # operator passwords (Argon2id) and sessions
  clang-14 libclang-rt-14-dev
  bsdiff xdelta3 zstd xz-utils
  prometheus  # promtool, for the /metrics test (its server is not used)
  python3-jsonschema  # scripts/check-openapi.py, for the OpenAPI test
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
  qemu-system-arm
  libunicorn-dev  # the emulated FIRE board (sim/m4): the real Cortex-M4 images on Unicorn 2
  nodejs npm  # the web console's build (server/console: npm ci, tsc, esbuild)
  chromium    # the console's browser tests (tests/console), driven by playwright-core
)

# A Node.js from elsewhere (e.g. NodeSource's nodejs package) brings its own npm, which
# Debian's npm package would conflict with: take Debian's only when no npm command exists.
if command -v npm >/dev/null 2>&1; then
  kept=()
  for p in "${packages[@]}"; do
    [[ "$p" == npm ]] || kept+=("$p")
  done
  packages=("${kept[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"

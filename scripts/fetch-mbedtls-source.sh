#!/usr/bin/env bash
# Prints the directory of Debian's mbedTLS source, the same version as the installed headers,
# unpacked under build/third_party/ (fetched once with `apt-get source`, which needs deb-src
# entries: added for the configured Debian archives if missing). The Cortex-M4 loader compiles
# its SHA-256 and ECDSA from it. Progress goes to stderr; only the path goes to stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/build/third_party"
version=$(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null || true)
[[ -n "$version" ]] || { echo "fetch-mbedtls-source: libmbedtls-dev is not installed" >&2; exit 1; }
upstream=${version%-*}
upstream=${upstream#*:}
dir="$dest/mbedtls-$upstream"
if [[ -f "$dir/library/ecdsa.c" ]]; then echo "$dir"; exit 0; fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
mkdir -p "$dest"
cd "$dest"
if ! apt-get source --print-uris "mbedtls=$version" >/dev/null 2>&1; then
  echo "fetch-mbedtls-source: adding deb-src entries for the configured Debian archives" >&2
  list=/etc/apt/sources.list.d/ota-deb-src.sources
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      "${sudo_cmd[@]}" tee "$list" >/dev/null
  elif [[ -f /etc/apt/sources.list ]]; then
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/ota-deb-src.list >/dev/null
  fi
  "${sudo_cmd[@]}" apt-get update -qq >&2
fi
echo "fetch-mbedtls-source: apt-get source mbedtls=$version" >&2
apt-get source -qq "mbedtls=$version" >&2
[[ -f "$dir/library/ecdsa.c" ]] || { echo "fetch-mbedtls-source: no $dir after apt-get source" >&2; exit 1; }
echo "$dir"

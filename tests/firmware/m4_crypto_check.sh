#!/usr/bin/env bash
# Runs the board build of the loader's signature check (m4_crypto_check.elf, built by
# `make cross`) on QEMU's netduinoplus2 (a Cortex-M4F like the STM32F429) against signatures
# made by OpenSSL: a good one must be accepted; a changed signature, a changed message and
# another key's signature refused. Messages of 0, 1000 and 70000 bytes (one and many SHA-256
# blocks). Usage: m4_crypto_check.sh path/to/m4_crypto_check.elf
# Needs qemu-system-arm, openssl and python3. Prints ok/not ok per case; exits 1 on a failure.
set -euo pipefail
ELF=$(realpath "$1")
command -v qemu-system-arm >/dev/null || {
  echo "m4_crypto_check: needs qemu-system-arm (Debian package qemu-system-arm)" >&2
  exit 1
}
W=$(mktemp -d "${TMPDIR:-/tmp}/m4_crypto_check.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
openssl ecparam -name prime256v1 -genkey -noout -out key.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out other.pem 2>/dev/null
openssl ec -in key.pem -pubout -outform DER -out pub.der 2>/dev/null

# make_case OUT MESSAGE SIGNATURE PUBKEY-DER [flip]: the test case blob (m4_crypto_check.cpp).
make_case() {
  python3 - "$@" <<'PY'
import struct, sys
out, msg, sig, pub = sys.argv[1:5]
flip = len(sys.argv) > 5
m = open(msg, 'rb').read()
s = bytearray(open(sig, 'rb').read())
if flip:
    s[len(s) // 2] ^= 0x01
p = open(pub, 'rb').read()[-65:]
blob = struct.pack('<II', 0x4343344D, len(m)) + p + bytes([len(s)]) + bytes(s).ljust(72, b'\0') + m
open(out, 'wb').write(blob)
PY
}
failures=0
run_case() {  # run_case NAME BLOB EXPECTED ("accepted" or "refused: verify-failed")
  local out
  out=$(timeout 120 qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$ELF" \
    -device loader,file="$2",addr=0x08080000 2>&1 || true)
  if grep -q "^m4-crypto: $3" <<<"$out"; then
    echo "ok - $1: $3"
  else
    echo "not ok - $1: expected $3, got: $out"
    failures=$((failures + 1))
  fi
}
for size in 0 1000 70000; do
  head -c "$size" /dev/urandom >msg
  openssl dgst -sha256 -sign key.pem -out sig.der msg
  openssl dgst -sha256 -sign other.pem -out other.der msg
  make_case good.bin msg sig.der pub.der
  make_case badsig.bin msg sig.der pub.der flip
  make_case otherkey.bin msg other.der pub.der
  cp msg msg2 && printf 'x' >>msg2
  make_case badmsg.bin msg2 sig.der pub.der
  run_case "$size-byte message, good signature" good.bin accepted
  run_case "$size-byte message, changed signature" badsig.bin "refused: verify-failed"
  run_case "$size-byte message, another key's signature" otherkey.bin "refused: verify-failed"
  run_case "$size-byte message, changed message" badmsg.bin "refused: verify-failed"
done
[[ $failures -eq 0 ]] || { echo "m4_crypto_check: $failures case(s) failed" >&2; exit 1; }
echo "m4-crypto: all cases ok on the emulated Cortex-M4"

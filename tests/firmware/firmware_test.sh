#!/usr/bin/env bash
# Checks the stm32f429-fire images that `make firmware` writes (docs/firmware.md):
#  - loader.bin, appv1.bin, appv2.bin exist and fit: the loader its 32 KB budget (and its
#    128 KB of flash at 0x08000000), each app its 512 KB slot at 0x08020000;
#  - each starts with a vector table whose initial SP lies in the 192 KB of SRAM1-3
#    (0x20000000 < SP <= 0x20030000, 8-byte aligned) and whose reset handler is a Thumb address
#    inside the image itself (an app's: after its header, before its trailer);
#  - the apps are stamped app images (docs/spec/image.md): header at 0x200 with the magic,
#    load address 0x08020000, versions FOTAV1 and FOTAV2, a SHA-256 trailer that matches;
#  - a signed diff package appv1 -> appv2 (`ota pack --diff`), applied by the loader's code on
#    the emulated board (`ota apply --old appv1.bin`), gives appv2.bin byte for byte; so does
#    a full package of appv2 (both run ValidateImage on the installed image). Prints
#    `firmware: appv1->appv2 diff=<bytes> full=<bytes>`.
#
# Usage: firmware_test.sh path/to/ota FIRMWARE_DIR   ($OTA_FIRMWARE_DIR overrides the dir)
# Prints `ok - NAME` / `not ok - NAME` per check; exits non-zero if any failed or an image is
# missing (a missing image is a failure, not a skip: run `make firmware`).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 path/to/ota FIRMWARE_DIR" >&2
  exit 2
fi
OTA=$(realpath "$1")
DIR=${OTA_FIRMWARE_DIR:-$2}
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }

for f in loader.bin appv1.bin appv2.bin; do
  if [[ ! -s $DIR/$f ]]; then
    echo "not ok - $DIR/$f is missing: run 'make firmware' (make test does)" >&2
    exit 1
  fi
done

# Vector table, sizes and headers, checked in python3 (little-endian words).
python3 - "$DIR" <<'PY' || failures=$((failures + 1))
import hashlib, struct, sys
d = sys.argv[1]
RAM_LO, RAM_HI = 0x20000000, 0x20030000
images = {  # name: (flash base, flash region, size limit)
    'loader': (0x08000000, 128 * 1024, 32 * 1024),
    'appv1': (0x08020000, 512 * 1024, 512 * 1024),
    'appv2': (0x08020000, 512 * 1024, 512 * 1024),
}
bad = 0
def check(cond, name):
    global bad
    print(('ok - ' if cond else 'not ok - ') + name)
    bad += 0 if cond else 1
for name, (base, region, limit) in images.items():
    data = open(f'{d}/{name}.bin', 'rb').read()
    check(len(data) <= limit and len(data) <= region, f'{name}: {len(data)} bytes fit {limit}')
    sp, reset = struct.unpack_from('<II', data, 0)
    check(RAM_LO < sp <= RAM_HI and sp % 8 == 0, f'{name}: initial SP {sp:#010x} in SRAM')
    check(reset & 1 == 1, f'{name}: reset handler {reset:#010x} has the Thumb bit')
    # An app's code starts after the vector table and the image header, and ends before the
    # SHA-256 trailer: the rule ota::CheckVectorTable applies (docs/spec/image.md). The
    # loader's table holds the 16 core entries only (it takes no interrupt, startup.cpp).
    lo, hi = (0x40, len(data)) if name == 'loader' else (0x240, len(data) - 32)
    check(base + lo <= (reset & ~1) < base + hi,
          f'{name}: reset handler inside the code [{base + lo:#010x}, {base + hi:#010x})')
    if name == 'loader':
        continue
    magic, hver, hsize, isize, load, flags = struct.unpack_from('<IHHIII', data, 0x200)
    version = data[0x200 + 20:0x200 + 52].rstrip(b'\0').decode('ascii', 'replace')
    check(magic == 0x4941544F and hver == 1 and hsize == 64, f'{name}: image header at 0x200')
    check(load == base and flags == 0, f'{name}: load address {load:#010x}')
    check(version == 'FOTAV' + name[-1], f'{name}: version {version}')
    check(isize + 32 == len(data) and
          hashlib.sha256(data[:isize]).digest() == data[isize:],
          f'{name}: SHA-256 trailer over {isize} bytes')
a1 = open(f'{d}/appv1.bin', 'rb').read()
a2 = open(f'{d}/appv2.bin', 'rb').read()
check(a1 != a2, 'appv1.bin and appv2.bin differ')
sys.exit(1 if bad else 0)
PY

W=$(mktemp -d "${TMPDIR:-/tmp}/firmware_test.XXXXXX")
trap 'rm -rf "$W"' EXIT
echo "firmware-test-password" >"$W/pass"
run() {  # run NAME CMD...: a check that CMD succeeds
  local name=$1
  shift
  if out=$("$@" </dev/null 2>&1); then ok "$name"; else not_ok "$name: $out"; fi
}
run "keygen" "$OTA" keygen -o "$W/key.pem" --pub "$W/pub.pem" --password-file "$W/pass"
run "pack --diff appv1 -> appv2" "$OTA" pack --diff "$DIR/appv1.bin" "$DIR/appv2.bin" \
  --from-version FOTAV1 --version FOTAV2 -o "$W/diff.pkg" --key "$W/key.pem" \
  --password-file "$W/pass"
run "pack --full appv2" "$OTA" pack --full "$DIR/appv2.bin" --version FOTAV2 \
  -o "$W/full.pkg" --key "$W/key.pem" --password-file "$W/pass"
run "apply diff on appv1" "$OTA" apply "$W/diff.pkg" --old "$DIR/appv1.bin" \
  -o "$W/diff-out.bin" --pub "$W/pub.pem"
run "apply full on appv1" "$OTA" apply "$W/full.pkg" --old "$DIR/appv1.bin" \
  -o "$W/full-out.bin" --pub "$W/pub.pem"
for k in diff full; do
  if [[ -f $W/$k-out.bin ]] && cmp -s "$W/$k-out.bin" "$DIR/appv2.bin"; then
    ok "$k package: installed image == appv2.bin"
  else
    not_ok "$k package: installed image == appv2.bin"
  fi
done
if [[ -f $W/diff.pkg && -f $W/full.pkg ]]; then
  echo "firmware: appv1->appv2 diff=$(stat -c %s "$W/diff.pkg") full=$(stat -c %s "$W/full.pkg")"
fi

if [[ $failures -ne 0 ]]; then
  echo "firmware_test: $failures check(s) failed" >&2
  exit 1
fi

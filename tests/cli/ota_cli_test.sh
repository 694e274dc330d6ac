#!/usr/bin/env bash
# Command-line tests of the `ota` tool (docs/tools/ota.md): key handling, pack/sign/verify/
# inspect/apply round trips, exit codes, one-line errors, outputs written whole or not at all,
# and what is printed with and without a terminal.
#
# Usage: tests/cli/ota_cli_test.sh path/to/ota
# Needs bash, coreutils, python3 and the openssl command line (scripts/install-deps.sh).
# Prints `ok - NAME` or `not ok - NAME` per check and exits non-zero if any check failed.
# Every command runs in a new session with stdin from /dev/null, so no check can stop at a
# password prompt on the terminal of whoever runs the tests; the checks about the terminal
# run the tool on a pseudo-terminal made by python3.
#
# Conditions are single-quoted strings that check() evaluates, so variables in them expand then:
# shellcheck disable=SC2016,SC2034
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/ota" >&2
  exit 2
fi
if [[ ! -x $1 || -d $1 ]]; then
  echo "$0: '$1' is not an executable" >&2
  exit 2
fi
OTA=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v python3 >/dev/null; then
  echo "$0: FAIL: python3 is missing" >&2
  exit 1
fi
# The interpreter itself, not a version manager's shim: it runs a few hundred times.
PY=$(python3 -c 'import sys; print(sys.executable)')
if ! command -v openssl >/dev/null; then
  echo "$0: FAIL: the openssl command line is missing; scripts/install-deps.sh installs it" \
       "(Debian package 'openssl')" >&2
  exit 1
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/ota_cli_test.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
unset OTA_KEY_PASSWORD

# ---------------------------------------------------------------------------------------------
# Helpers

# notty.py CMD...: runs CMD in a new session (no controlling terminal) with stdin /dev/null;
# kills it after 30 s. Exits with CMD's code (128+N for signal N).
cat >notty.py <<'EOF'
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as e:
        sys.stderr.write("notty: %s: %s\n" % (sys.argv[1], e))
        os._exit(127)
def timeout(*_):
    sys.stderr.write("notty: timed out after 30 s\n")
    os.killpg(pid, signal.SIGKILL)
signal.signal(signal.SIGALRM, timeout)
signal.alarm(30)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
EOF

# ptyrun.py OUTFILE CMD...: runs CMD on a new pseudo-terminal, answers each prompt (output
# ending in ':') with the next line of $PTY_INPUT, writes all it printed to OUTFILE, and exits
# with CMD's code (124 if it still runs after $PTY_TIMEOUT seconds, default 10).
cat >ptyrun.py <<'EOF'
import os, pty, select, signal, sys, time
out_path, cmd = sys.argv[1], sys.argv[2:]
answers = os.environ["PTY_INPUT"].split("\n") if os.environ.get("PTY_INPUT") else []
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
out, since, code = b"", 0, None
deadline = time.monotonic() + float(os.environ.get("PTY_TIMEOUT", "10"))
while time.monotonic() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.05)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            break
        out += data
        if answers and out[since:].rstrip().endswith(b":"):
            os.write(fd, answers.pop(0).encode() + b"\n")
            since = len(out)
    else:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
if code is None:
    if time.monotonic() >= deadline:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        code = 124
    else:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
open(out_path, "wb").write(out)
sys.exit(code if code >= 0 else 128 - code)
EOF

declare -i total=0 failed=0
RC=0

# run CMD...: runs CMD without a terminal; RC is its exit code, out and err its output.
run() {
  RC=0
  "$PY" -S "$W/notty.py" "$@" >"$W/out" 2>"$W/err" || RC=$?
}

# runpty INPUT CMD...: runs CMD on a pseudo-terminal; RC, and its output in tty.out.
runpty() {
  local input=$1
  shift
  RC=0
  : >"$W/out"
  : >"$W/err"
  PTY_INPUT=$input "$PY" -S "$W/ptyrun.py" "$W/tty.out" "$@" >/dev/null 2>&1 || RC=$?
}

show() {  # prints a file's first lines as TAP comments
  local label=$1 file=$2
  [[ -s $file ]] || { echo "#   $label: (empty)"; return 0; }
  head -c 1200 "$file" | cat -v | head -n 12 | awk -v l="$label" '{ print "#   " l ": " $0 }'
}

# check NAME CONDITION: CONDITION is a shell expression evaluated now.
check() {
  local name=$1 cond=$2
  total+=1
  if eval "$cond" 2>"$W/cond.err"; then
    echo "ok - $name"
  else
    failed+=1
    echo "not ok - $name"
    echo "#   condition: $cond"
    echo "#   last run: exit $RC"
    show stdout "$W/out"
    show stderr "$W/err"
    [[ -s $W/cond.err ]] && show check "$W/cond.err"
    [[ -e $W/tty.out && $cond == *tty* ]] && show terminal "$W/tty.out"
    return 0
  fi
}

rc_is() { [[ $RC -eq $1 ]]; }
out_empty() { [[ ! -s $W/out ]]; }
err_empty() { [[ ! -s $W/err ]]; }
# exactly one newline-terminated line
one_line() { [[ $(wc -l <"$1") -eq 1 && -z $(tail -n +2 "$1") ]]; }
err_has() { grep -qF -- "$1" "$W/err"; }
out_has() { grep -qF -- "$1" "$W/out"; }
# clean_error CODE TEXT...: exit CODE, nothing on stdout, one "ota: " line on stderr holding
# every TEXT.
clean_error() {
  local code=$1
  shift
  rc_is "$code" && out_empty && one_line "$W/err" && grep -q '^ota: ' "$W/err" || return 1
  local t
  for t in "$@"; do err_has "$t" || return 1; done
}
# succeeded PREFIX: exit 0, nothing on stderr, one stdout line starting with PREFIX.
succeeded() { rc_is 0 && err_empty && one_line "$W/out" && grep -q "^$1" "$W/out"; }
same() { cmp -s "$1" "$2"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
no_temp_files() { [[ -z $(find "${1:-.}" -maxdepth 1 -name '.*.??????' -print -quit) ]]; }

# ---------------------------------------------------------------------------------------------
# Test data: app binaries (0x200 bytes of vector table, 64 reserved zero bytes for the header,
# then the body), stamped into images, and keys. The vector table starts with an initial SP at
# the top of SRAM and a Thumb reset vector inside the image (docs/spec/image.md); the rest of
# it is random.

"$PY" - <<'EOF'
import hashlib, random, struct

def raw(seed, body):
    r = random.Random(seed)
    table = struct.pack("<II", 0x20030000, 0x08020401)
    table += bytes(r.randrange(256) for _ in range(0x200 - len(table)))
    return table + bytes(64) + body

r = random.Random(1)
body1 = bytes(r.randrange(256) for _ in range(60 * 1024 - 0x240))
v1 = raw(7, body1)
v2 = bytearray(v1)
v2[0x1000:0x1100] = bytes(0x100)           # a changed region
v2[0x4000:0x4010] = b"version two here"
v2 += bytes(random.Random(2).randrange(256) for _ in range(1500))  # and growth
open("v1.raw", "wb").write(v1)
open("v2.raw", "wb").write(bytes(v2))
r = random.Random(3)
open("big.raw", "wb").write(raw(3, bytes(r.randrange(256) for _ in range(600 * 1024 - 0x240))))

# A 600 KB image with a valid header and trailer, made without `ota stamp` (which refuses it),
# so that pack's own size check is reached. Layout: docs/spec/image.md.
big = bytearray(open("big.raw", "rb").read())
header = struct.pack("<IHHIII32s12s", 0x4941544F, 1, 64, len(big), 0x08020000, 0,
                     b"BIG", bytes(12))
big[0x200:0x240] = header
open("big.bin", "wb").write(bytes(big) + hashlib.sha256(big).digest())
EOF

printf 'correct horse\n' >pw
printf 'another one\n' >pw2
printf 'not the password\n' >badpw

setup_ok=1
run "$OTA" stamp v1.raw --version FOTAV1 -o v1.bin
check "stamp v1: exit 0, one 'stamp:' line" 'succeeded "stamp: v1.bin version=FOTAV1 size="'
[[ $RC -eq 0 ]] || setup_ok=0
run "$OTA" stamp v2.raw --version FOTAV2 -o v2.bin
check "stamp v2: exit 0, one 'stamp:' line" 'succeeded "stamp: v2.bin version=FOTAV2 size="'
[[ $RC -eq 0 ]] || setup_ok=0
check "stamp: image = binary with header at 0x200 + SHA-256 trailer" \
  '[[ $(stat -c %s v1.bin) -eq $(( $(stat -c %s v1.raw) + 32 )) ]] &&
   [[ $(head -c $(stat -c %s v1.raw) v1.bin | sha256sum | cut -d" " -f1) == \
      $(tail -c 32 v1.bin | od -An -tx1 | tr -d " \n") ]] &&
   cmp -s <(head -c 512 v1.raw) <(head -c 512 v1.bin) &&
   [[ $(dd if=v1.bin bs=1 skip=512 count=4 2>/dev/null) == OTAI ]]'

# ---------------------------------------------------------------------------------------------
# keygen

run "$OTA" keygen -o key.pem --pub key.pub --password-file pw
check "keygen --password-file: exit 0, one 'keygen:' line with the key id" \
  'succeeded "keygen: private=key.pem public=key.pub key_id=[0-9a-f]\{64\}$"'
[[ $RC -eq 0 ]] || setup_ok=0
KEY_ID=$(sed -n 's/.*key_id=\([0-9a-f]*\).*/\1/p' out)
check "keygen: private key mode 0600, public key 0644" \
  '[[ $(stat -c %a key.pem) == 600 && $(stat -c %a key.pub) == 644 ]]'
check "keygen: private key PEM is ENCRYPTED (PKCS#8)" \
  '[[ $(head -n 1 key.pem) == "-----BEGIN ENCRYPTED PRIVATE KEY-----" ]] &&
   ! grep -q "BEGIN PRIVATE KEY\|BEGIN EC PRIVATE KEY" key.pem'
check "keygen: openssl opens the key with the password, not without" \
  'openssl pkey -in key.pem -passin file:pw -noout 2>/dev/null &&
   ! openssl pkey -in key.pem -passin pass:wrongpass -noout 2>/dev/null'
check "keygen: public key is EC P-256" \
  'openssl pkey -pubin -in key.pub -noout -text 2>/dev/null | grep -q "prime256v1\|P-256"'
check "keygen: key_id is the SHA-256 of the 65-byte public point" \
  '[[ $(openssl pkey -pubin -in key.pub -outform DER 2>/dev/null | tail -c 65 |
       sha256sum | cut -d" " -f1) == "$KEY_ID" ]]'

sum_before=$(sha key.pem)
pub_before=$(sha key.pub)
run "$OTA" keygen -o key.pem --pub key.pub --password-file pw
check "keygen on an existing key: exit 3, one line with 'exists'" 'clean_error 3 key.pem exists'
check "keygen on an existing key: key and public key unchanged" \
  '[[ $(sha key.pem) == "$sum_before" && $(sha key.pub) == "$pub_before" &&
     $(stat -c %a key.pem) == 600 ]]'
run "$OTA" keygen -o key.pem --pub fresh.pub --password-file pw
check "keygen on an existing key with a new --pub: exit 3, no public key written" \
  'clean_error 3 key.pem exists && [[ ! -e fresh.pub && $(sha key.pem) == "$sum_before" ]]'
run "$OTA" keygen -o fresh.pem --pub key.pub --password-file pw
check "keygen onto an existing --pub: exit 3, no private key written" \
  'clean_error 3 key.pub exists && [[ ! -e fresh.pem && $(sha key.pub) == "$pub_before" ]]'

run "$OTA" keygen -o other.pem --pub other.pub --password-file pw2
check "keygen: a second key pair" 'succeeded "keygen: private=other.pem"'

run env OTA_KEY_PASSWORD=from-the-env "$OTA" keygen -o envkey.pem --pub envkey.pub
check "keygen with \$OTA_KEY_PASSWORD: exit 0, key opens with that password" \
  'succeeded "keygen: private=envkey.pem" &&
   openssl pkey -in envkey.pem -passin pass:from-the-env -noout 2>/dev/null'
run env OTA_KEY_PASSWORD=from-the-env "$OTA" keygen -o prec.pem --password-file pw
check "keygen: --password-file wins over \$OTA_KEY_PASSWORD" \
  'succeeded "keygen: private=prec.pem public=- key_id=-" &&
   openssl pkey -in prec.pem -passin file:pw -noout 2>/dev/null'

run "$OTA" keygen -o nopw.pem --pub nopw.pub
check "keygen with no password source and no terminal: exit 3, one clear line, no files" \
  'clean_error 3 "no terminal" --password-file OTA_KEY_PASSWORD &&
   [[ ! -e nopw.pem && ! -e nopw.pub ]]'
run env OTA_KEY_PASSWORD= "$OTA" keygen -o nopw.pem
check "keygen with an empty \$OTA_KEY_PASSWORD and no terminal: exit 3" \
  'clean_error 3 "no terminal" && [[ ! -e nopw.pem ]]'
run "$OTA" keygen -o nopw.pem --password-file missing-pw-file
check "keygen with a missing --password-file: exit 3, names the file" \
  'clean_error 3 missing-pw-file && [[ ! -e nopw.pem ]]'
printf '\n' >emptypw
run "$OTA" keygen -o nopw.pem --password-file emptypw
check "keygen with an empty password file: exit 3" 'clean_error 3 emptypw && [[ ! -e nopw.pem ]]'
printf 'abc\n' >shortpw
run "$OTA" keygen -o short.pem --password-file shortpw
check "keygen with a 3-character password: exit 3 (an input is wrong), one line" \
  'clean_error 3 "at least 4" && [[ ! -e short.pem ]]'
run "$OTA" keygen -o half.pem --pub no-such-dir/half.pub --password-file pw
check "keygen whose public key cannot be written: exit 4, no half key pair left" \
  'clean_error 4 no-such-dir/half.pub && [[ ! -e half.pem ]]'
run "$OTA" keygen -o no-such-dir/k.pem --password-file pw
check "keygen into a missing directory: exit 4" 'clean_error 4 no-such-dir/k.pem'

if ((setup_ok == 0)); then
  echo "Bail out! stamping or keygen failed; the remaining checks need their files"
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# pack, sign, verify

# pack_line_ok FILE KIND SIGNED: stdout is exactly one parseable line describing FILE.
pack_line_ok() {
  "$PY" - "$W/out" "$1" "$2" "$3" <<'EOF'
import hashlib, os, re, sys
out, pkg, kind, signed = sys.argv[1:]
raw = open(out, "rb").read()
def bad(why):
    print("#   " + why)
    sys.exit(1)
if b"\r" in raw or b"\x1b" in raw:
    bad("carriage return or escape code in the output")
text = raw.decode()
if text.count("\n") != 1 or not text.endswith("\n"):
    bad("not exactly one line")
m = re.fullmatch(r"pack: (\S+)((?: [a-z_0-9]+=\S+)+)\n", text)
if not m:
    bad("not 'pack: FILE key=value...'")
f = dict(kv.split("=", 1) for kv in m.group(2).split())
want = {"kind", "version", "size", "payload", "overhead", "signed", "sha256"}
if set(f) != want:
    bad("fields %s, expected %s" % (sorted(f), sorted(want)))
data = open(pkg, "rb").read()
checks = [
    (m.group(1) == pkg, "file name"),
    (f["kind"] == kind, "kind"),
    (f["signed"] == signed, "signed"),
    (int(f["size"]) == len(data), "size is the file size"),
    (int(f["overhead"]) == len(data) - int(f["payload"]), "overhead = size - payload"),
    (f["sha256"] == hashlib.sha256(data).hexdigest(), "sha256 of the file"),
]
for good, what in checks:
    if not good:
        bad("wrong " + what)
EOF
}

run "$OTA" pack --full v2.bin --version FOTAV2 -o full.pkg --key key.pem --password-file pw
check "pack --full --key: exit 0" 'rc_is 0 && err_empty'
check "pack output (no terminal): one 'pack: FILE key=value' line, no CR/escapes, true values" \
  'pack_line_ok full.pkg full yes'
run "$OTA" pack --diff v1.bin v2.bin --version FOTAV2 --from-version FOTAV1 -o diff.pkg \
  --key key.pem --password-file pw
check "pack --diff --key: exit 0, one parseable line" 'rc_is 0 && pack_line_ok diff.pkg diff yes'
check "pack --diff: the diff package is much smaller than the image" \
  '[[ $(stat -c %s diff.pkg) -lt $(( $(stat -c %s v2.bin) / 4 )) ]]'
run "$OTA" pack --diff v1.bin v2.bin --version FOTAV2 --from-version FOTAV1 -o diff.u.pkg
check "pack --diff without --key: exit 0, signed=no" 'rc_is 0 && pack_line_ok diff.u.pkg diff no'
run "$OTA" pack --full v2.bin --version FOTAV2 -o full.u.pkg
check "pack --full without --key: exit 0, signed=no" 'rc_is 0 && pack_line_ok full.u.pkg full no'
run env OTA_KEY_PASSWORD='correct horse' "$OTA" pack --full v2.bin --version FOTAV2 \
  -o full.env.pkg --key key.pem
check "pack --key with the password from \$OTA_KEY_PASSWORD" 'succeeded "pack: full.env.pkg "'
run env OTA_KEY_PASSWORD=wrong "$OTA" pack --full v2.bin --version FOTAV2 -o full.prec.pkg \
  --key key.pem --password-file pw
check "pack: --password-file wins over \$OTA_KEY_PASSWORD" 'succeeded "pack: full.prec.pkg "'
run "$OTA" pack --full v2.bin --version FOTAV2 -o full.stored.pkg --codec stored
check "pack --codec stored: payload is the image" \
  'succeeded "pack: full.stored.pkg kind=full" && out_has "payload=$(stat -c %s v2.bin) "'

run "$OTA" sign diff.u.pkg --key key.pem --password-file pw -o diff.s.pkg
check "sign: exit 0, one 'sign:' line with the key id" \
  'succeeded "sign: diff.s.pkg size=$(stat -c %s diff.s.pkg) key_id=$KEY_ID \
sha256=$(sha diff.s.pkg)$"'
check "sign: adds the 112-byte signature block to the unchanged package" \
  '[[ $(stat -c %s diff.s.pkg) -eq $(( $(stat -c %s diff.u.pkg) + 112 )) ]] &&
   cmp -s diff.u.pkg <(head -c $(stat -c %s diff.u.pkg) diff.s.pkg)'
run "$OTA" sign diff.s.pkg --key key.pem --password-file pw -o twice.pkg
check "sign of a signed package: exit 3, 'already signed', no output" \
  'clean_error 3 "already signed" && [[ ! -e twice.pkg ]]'
run "$OTA" sign v1.bin --key key.pem --password-file pw -o notpkg.pkg
check "sign of a non-package: exit 3" 'clean_error 3 v1.bin "not a valid package"'

for p in full.pkg diff.pkg diff.s.pkg; do
  run "$OTA" verify "$p" --pub key.pub
  check "verify $p with the right --pub: exit 0, one 'verify:' line" \
    'succeeded "verify: $p valid size=$(stat -c %s $p) time_ms=[0-9.]*$"'
done
run "$OTA" verify full.pkg --pub other.pub
check "verify with another key's --pub: exit 1, bad-signature" \
  'clean_error 1 full.pkg bad-signature'
run "$OTA" verify full.pkg --pub other.pub --pub key.pub
check "verify with several --pub, one of them right: exit 0" 'succeeded "verify: full.pkg valid"'
run "$OTA" verify diff.u.pkg --pub key.pub
check "verify of an unsigned package: exit 1, bad-signature" \
  'clean_error 1 diff.u.pkg bad-signature'
run "$OTA" verify full.pkg --pub key.pub --counter 5
check "verify of a counter-0 package on a device at counter 5: exit 1, downgrade" \
  'clean_error 1 downgrade'
run "$OTA" verify v1.bin --pub key.pub
check "verify of a file that is not a package: exit 1, package-invalid" \
  'clean_error 1 package-invalid'

# Anti-rollback: a lower counter needs the allow-downgrade flag, the flag needs a downgrade key.
run "$OTA" pack --full v2.bin --version FOTAV2 -o c7.pkg --counter 7 --key key.pem \
  --password-file pw
check "pack --counter 7: exit 0" 'succeeded "pack: c7.pkg kind=full"'
run "$OTA" inspect --json c7.pkg
check "inspect --json shows security_counter 7, allow_downgrade false" \
  'rc_is 0 && "$PY" -c "import json,sys; j=json.load(open(sys.argv[1]));
assert j[\"security_counter\"] == 7 and j[\"allow_downgrade\"] is False" out'
run "$OTA" verify c7.pkg --pub key.pub --counter 7
check "verify counter-7 package on a device at 7: exit 0" 'succeeded "verify: c7.pkg valid"'
run "$OTA" verify c7.pkg --pub key.pub --counter 8
check "verify counter-7 package on a device at 8: exit 1, downgrade" 'clean_error 1 downgrade'
run "$OTA" pack --full v2.bin --version FOTAV2 -o dg.pkg --counter 1 --allow-downgrade \
  --key key.pem --password-file pw
check "pack --allow-downgrade: exit 0" 'succeeded "pack: dg.pkg kind=full"'
run "$OTA" verify dg.pkg --pub key.pub --counter 5
check "verify allow-downgrade package signed by a plain --pub key: exit 1, downgrade" \
  'clean_error 1 dg.pkg downgrade'
run "$OTA" verify dg.pkg --downgrade-pub key.pub --counter 5
check "verify allow-downgrade package with --downgrade-pub: exit 0" \
  'succeeded "verify: dg.pkg valid"'
run "$OTA" apply dg.pkg --downgrade-pub key.pub --counter 5 -o dg.bin
check "apply allow-downgrade package with --downgrade-pub: installs the image" \
  'rc_is 0 && same dg.bin v2.bin'

check "signature block verifies with openssl (ECDSA P-256 over SHA-256 of the signed part)" \
  '"$PY" - diff.s.pkg <<"EOF" &&
import struct, sys
b = open(sys.argv[1], "rb").read()
manifest, payload = struct.unpack_from("<H", b, 6)[0], struct.unpack_from("<I", b, 8)[0]
n = 16 + manifest + payload
magic, alg, _, der_len = struct.unpack_from("<IBBH", b, n)
assert magic == 0x4753544F and alg == 1 and len(b) == n + 112, "signature block"
open("signed.part", "wb").write(b[:n])
open("sig.der", "wb").write(b[n + 40:n + 40 + der_len])
open("sig.keyid", "w").write(b[n + 8:n + 40].hex())
EOF
   openssl dgst -sha256 -verify key.pub -signature sig.der signed.part >/dev/null 2>&1 &&
   [[ $(cat sig.keyid) == "$KEY_ID" ]]'

# ---------------------------------------------------------------------------------------------
# inspect

run "$OTA" inspect diff.pkg
check "inspect: exit 0, shows kind, target, source, codec and signature" \
  'rc_is 0 && err_empty &&
   grep -q "^kind  *diff$" out &&
   grep -q "^target  *FOTAV2, $(stat -c %s v2.bin) bytes, sha256 $(sha v2.bin)$" out &&
   grep -q "^source  *FOTAV1, $(stat -c %s v1.bin) bytes, sha256 $(sha v1.bin)$" out &&
   grep -q "^codec  *delta" out && grep -q "^security counter  *0$" out &&
   grep -q "^signature  *ECDSA P-256/SHA-256, key id $KEY_ID" out'
run "$OTA" inspect full.u.pkg
check "inspect of an unsigned full package: no source, signature none" \
  'rc_is 0 && grep -q "^kind  *full$" out && ! grep -q "^source" out &&
   grep -q "^signature  *none" out'

# inspect_json_ok PKG KIND SIGNED: the JSON parses and holds the right values.
inspect_json_ok() {
  "$PY" - "$W/out" "$1" "$2" "$3" "$KEY_ID" <<'EOF'
import hashlib, json, sys
out, pkg, kind, signed, key_id = sys.argv[1:]
j = json.load(open(out))
def h(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()
import os
want_target = {"version": "FOTAV2", "size": os.path.getsize("v2.bin"), "sha256": h("v2.bin")}
want_source = {"version": "FOTAV1", "size": os.path.getsize("v1.bin"), "sha256": h("v1.bin")}
problems = []
def expect(cond, what):
    if not cond:
        problems.append(what)
expect(j.get("kind") == kind, "kind")
expect(j.get("file_size") == os.path.getsize(pkg), "file_size")
expect(j.get("sha256") == h(pkg), "sha256")
expect(j.get("target") == want_target, "target")
if kind == "diff":
    expect(j.get("source") == want_source, "source")
else:
    expect("source" not in j, "no source in a full package")
if signed == "yes":
    s = j.get("signature") or {}
    expect(s.get("key_id") == key_id and s.get("algorithm") == "ecdsa-p256-sha256", "signature")
else:
    expect("signature" in j and j["signature"] is None, "signature null")
expect(j.get("payload", {}).get("size", -1) > 0, "payload.size")
for p in problems:
    print("#   wrong " + p)
sys.exit(1 if problems else 0)
EOF
}
run "$OTA" inspect --json diff.pkg
check "inspect --json (signed diff): parses, kind/target/source/signature right" \
  'rc_is 0 && err_empty && inspect_json_ok diff.pkg diff yes'
run "$OTA" inspect --json full.u.pkg
check "inspect --json (unsigned full): no source, signature null" \
  'rc_is 0 && inspect_json_ok full.u.pkg full no'
run "$OTA" pack --full v2.bin --version FOTAV2 -o latin1.pkg --description $'caf\xe9'
run "$OTA" inspect --json latin1.pkg
check "inspect --json of a package whose description is not UTF-8: exit 0, valid JSON" \
  'rc_is 0 && "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" out 2>/dev/null'
cp full.pkg $'name\xff.pkg'
run "$OTA" inspect --json $'name\xff.pkg'
check "inspect --json of a file whose name is not UTF-8: exit 0, valid JSON" \
  'rc_is 0 && "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" out 2>/dev/null'
run "$OTA" inspect v1.bin
check "inspect of a file that is not a package: exit 3, one line" \
  'clean_error 3 v1.bin "not a valid package"'

# ---------------------------------------------------------------------------------------------
# apply

run "$OTA" apply full.pkg -o new.full.bin --pub key.pub
check "apply full: exit 0, one 'apply:' line, signature=valid" \
  'succeeded "apply: new.full.bin size=$(stat -c %s v2.bin) sha256=$(sha v2.bin) \
signature=valid board_s=[0-9.]*$"'
check "apply full: reproduces the new image byte for byte" 'same new.full.bin v2.bin'
run "$OTA" apply diff.pkg --old v1.bin -o new.diff.bin --pub key.pub
check "apply diff: exit 0" 'succeeded "apply: new.diff.bin "'
check "apply diff: reproduces the new image byte for byte" 'same new.diff.bin v2.bin'
run "$OTA" apply diff.s.pkg --old v1.bin -o new.diff.s.bin --pub key.pub
check "apply diff signed by 'ota sign': reproduces the new image" \
  'rc_is 0 && same new.diff.s.bin v2.bin'
run "$OTA" apply diff.u.pkg --old v1.bin -o new.diff.u.bin
check "apply unsigned diff without --pub: exit 0, signature=not-checked, same image" \
  'succeeded "apply: new.diff.u.bin .* signature=not-checked" && same new.diff.u.bin v2.bin'
run "$OTA" apply full.stored.pkg -o new.stored.bin
check "apply stored full: reproduces the new image" 'rc_is 0 && same new.stored.bin v2.bin'
run "$OTA" apply diff.u.pkg --old v1.bin -o x.bin --pub key.pub
check "apply unsigned package with --pub: exit 1, bad-signature, no output" \
  'clean_error 1 bad-signature && [[ ! -e x.bin ]]'
run "$OTA" apply diff.pkg --old v2.bin -o wrong-old.bin --pub key.pub
check "apply diff against the wrong --old: exit 1, wrong-source, no output" \
  'clean_error 1 diff.pkg wrong-source && [[ ! -e wrong-old.bin ]]'
run "$OTA" apply diff.pkg -o no-old.bin --pub key.pub
check "apply diff without --old: exit 1, wrong-source" \
  'clean_error 1 wrong-source && [[ ! -e no-old.bin ]]'

"$PY" - full.pkg tampered.pkg <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
manifest, payload = struct.unpack_from("<H", b, 6)[0], struct.unpack_from("<I", b, 8)[0]
b[16 + manifest + payload // 2] ^= 0x01
open(sys.argv[2], "wb").write(b)
EOF
run "$OTA" apply tampered.pkg -o tampered.bin --pub key.pub
check "apply of a package with a flipped payload bit: exit 1, bad-signature, no output" \
  'clean_error 1 tampered.pkg bad-signature && [[ ! -e tampered.bin ]]'
run "$OTA" verify tampered.pkg --pub key.pub
check "verify of the tampered package: exit 1, bad-signature" 'clean_error 1 bad-signature'

# ---------------------------------------------------------------------------------------------
# Inputs missing or wrong: exit 3, one line on stderr, nothing on stdout

declare -a missing_cases=(
  "pack --full|pack --full nope.bin --version FOTAV2 -o m.pkg"
  "pack --diff old|pack --diff nope.bin v2.bin --version FOTAV2 --from-version FOTAV1 -o m.pkg"
  "pack --diff new|pack --diff v1.bin nope.bin --version FOTAV2 --from-version FOTAV1 -o m.pkg"
  "pack --key|pack --full v2.bin --version FOTAV2 -o m.pkg --key nope.pem --password-file pw"
  "sign package|sign nope.pkg --key key.pem --password-file pw -o m.pkg"
  "sign --key|sign diff.u.pkg --key nope.pem --password-file pw -o m.pkg"
  "verify package|verify nope.pkg --pub key.pub"
  "verify --pub|verify full.pkg --pub nope.pub"
  "inspect|inspect nope.pkg"
  "apply package|apply nope.pkg -o m.pkg"
  "apply --old|apply diff.pkg --old nope.bin -o m.pkg --pub key.pub"
  "stamp|stamp nope.bin --version FOTAV1 -o m.pkg"
)
for c in "${missing_cases[@]}"; do
  # shellcheck disable=SC2086  # the arguments above contain no spaces
  run "$OTA" ${c#*|}
  check "missing input file (${c%%|*}): exit 3, one line naming it" \
    'clean_error 3 nope && [[ ! -e m.pkg ]]'
done

run "$OTA" pack --full v2.bin --version FOTAV2 -o wp.pkg --key key.pem --password-file badpw
check "pack with a wrong --password-file: exit 3, 'wrong password', no output" \
  'clean_error 3 key.pem "wrong password" && ! err_has "not the password" && [[ ! -e wp.pkg ]]'
run env OTA_KEY_PASSWORD=nope "$OTA" pack --full v2.bin --version FOTAV2 -o wp.pkg --key key.pem
check "pack with a wrong \$OTA_KEY_PASSWORD: exit 3, 'wrong password'" \
  'clean_error 3 "wrong password" && [[ ! -e wp.pkg ]]'
run "$OTA" sign diff.u.pkg --key key.pem --password-file badpw -o wp.pkg
check "sign with a wrong password: exit 3, 'wrong password'" \
  'clean_error 3 "wrong password" && [[ ! -e wp.pkg ]]'
run "$OTA" pack --full v2.bin --version FOTAV2 -o wp.pkg --key key.pem
check "pack with an encrypted key, no password source, no terminal: exit 3" \
  'clean_error 3 "no terminal" && [[ ! -e wp.pkg ]]'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl pkey -in rsa.pem -pubout -out rsa.pub 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null
openssl pkey -in p384.pem -pubout -out p384.pub 2>/dev/null
for k in rsa p384; do
  run "$OTA" pack --full v2.bin --version FOTAV2 -o wk.pkg --key $k.pem
  check "pack --key with a $k key: exit 3, 'wrong key type', no output" \
    'clean_error 3 $k.pem "wrong key type" P-256 && [[ ! -e wk.pkg ]]'
  run "$OTA" sign diff.u.pkg -o wk.pkg --key $k.pem
  check "sign --key with a $k key: exit 3, 'wrong key type'" \
    'clean_error 3 "wrong key type" && [[ ! -e wk.pkg ]]'
  run "$OTA" verify full.pkg --pub $k.pub
  check "verify --pub with a $k key: exit 3, 'wrong key type'" \
    'clean_error 3 $k.pub "wrong key type" P-256'
  run "$OTA" apply full.pkg -o wk.bin --pub $k.pub
  check "apply --pub with a $k key: exit 3, 'wrong key type'" \
    'clean_error 3 "wrong key type" && [[ ! -e wk.bin ]]'
done
run "$OTA" pack --full v2.bin --version FOTAV2 -o wk.pkg --key key.pub
check "pack --key given a public key: exit 3" 'clean_error 3 key.pub && [[ ! -e wk.pkg ]]'
run "$OTA" verify full.pkg --pub key.pem
check "verify --pub given the encrypted private key: exit 3, one line, no password prompt" \
  'clean_error 3 key.pem && ! err_has "pass phrase"'
openssl ecparam -name prime256v1 -genkey -noout -out ossl.pem 2>/dev/null
openssl ec -in ossl.pem -pubout -out ossl.pub 2>/dev/null
run "$OTA" pack --full v2.bin --version FOTAV2 -o ossl.pkg --key ossl.pem
check "pack --key with an unencrypted P-256 key made by openssl: exit 0" \
  'succeeded "pack: ossl.pkg"'
run "$OTA" verify ossl.pkg --pub ossl.pub
check "verify with that key's openssl public key: exit 0" 'succeeded "verify: ossl.pkg valid"'

run "$OTA" stamp big.raw --version BIG -o big.stamped.bin
check "stamp of a 600 KB binary for the default board: exit 3, 'larger than', no output" \
  'clean_error 3 "larger than" 524288 && [[ ! -e big.stamped.bin ]]'
run "$OTA" pack --full big.bin --version BIG -o big.pkg
check "pack of a 600 KB image: exit 3, 'larger than', no output" \
  'clean_error 3 "larger than" && [[ ! -e big.pkg ]]'

run "$OTA" pack --diff v1.bin v1.bin --version FOTAV1 --from-version FOTAV1 -o same.pkg
check "pack --diff of identical images: exit 3, 'identical', no output" \
  'clean_error 3 identical && [[ ! -e same.pkg ]]'
cp v1.bin v1.copy.bin
run "$OTA" pack --diff v1.bin v1.copy.bin --version FOTAV1 --from-version FOTAV1 -o same.pkg
check "pack --diff of two identical files: exit 3, 'identical'" 'clean_error 3 identical'

LONG=$(printf 'V%.0s' {1..40})
run "$OTA" stamp v1.raw --version "FOTA V2" -o badv.bin
check "stamp --version 'FOTA V2' (space): exit 3, one line" \
  'clean_error 3 "FOTA V2" && [[ ! -e badv.bin ]]'
run "$OTA" stamp v1.raw --version "$LONG" -o badv.bin
check "stamp --version of 40 characters: exit 3, one line" \
  'clean_error 3 "31 characters" && [[ ! -e badv.bin ]]'
run "$OTA" stamp v1.raw --version "" -o badv.bin
check "stamp --version '': exit 3" 'clean_error 3 && [[ ! -e badv.bin ]]'
run "$OTA" pack --full v2.bin --version "FOTA V2" -o badv.pkg
check "pack --version 'FOTA V2' (space): exit 3, one line" \
  'clean_error 3 "FOTA V2" "not a version string" && [[ ! -e badv.pkg ]]'
run "$OTA" pack --full v2.bin --version "$LONG" -o badv.pkg
check "pack --version of 40 characters: exit 3, one line" \
  'clean_error 3 "not a version string" && [[ ! -e badv.pkg ]]'
run "$OTA" pack --diff v1.bin v2.bin --version FOTAV2 --from-version "FOTA V1" -o badv.pkg
check "pack --from-version 'FOTA V1' (space): exit 3, one line" \
  'clean_error 3 --from-version "not a version string" && [[ ! -e badv.pkg ]]'
run "$OTA" pack --full v2.bin --version FOTAV3 -o badv.pkg
check "pack --version not the image header's: exit 3, names both versions" \
  'clean_error 3 FOTAV2 FOTAV3 && [[ ! -e badv.pkg ]]'
run "$OTA" pack --diff v1.bin v2.bin --version FOTAV2 --from-version FOTAV0 -o badv.pkg
check "pack --from-version not the old image's: exit 3, names both versions" \
  'clean_error 3 "old image" FOTAV1 FOTAV0 && [[ ! -e badv.pkg ]]'
run "$OTA" pack --full v2.raw --version FOTAV2 -o raw.pkg
check "pack of an unstamped binary: exit 3, 'not an app image'" \
  'clean_error 3 "not an app image" && [[ ! -e raw.pkg ]]'
run "$OTA" stamp v1.bin --version FOTAV1 -o restamp.bin
check "stamp of an already stamped image: exit 3, header bytes not reserved" \
  'clean_error 3 "not reserved" && [[ ! -e restamp.bin ]]'

# Vector tables the loader could not start (docs/spec/image.md): stamp, pack and verify refuse
# them, naming the word and its value. vt-*.raw are v1.raw with other words 0 and 1.
"$PY" - <<'EOF'
import hashlib, struct
v1 = open("v1.raw", "rb").read()
n = len(v1)  # the header's image_size once stamped
def vt(name, sp, reset):
    b = bytearray(v1)
    struct.pack_into("<II", b, 0, sp, reset)
    open(name, "wb").write(b)
vt("vt-sp0.raw", 0x00000000, 0x08020401)
vt("vt-sp4.raw", 0x2002FFFC, 0x08020401)          # in SRAM, not 8-byte aligned
vt("vt-sram-start.raw", 0x20000000, 0x08020401)   # the start of SRAM: nothing below to push to
vt("vt-erased.raw", 0xFFFFFFFF, 0xFFFFFFFF)
vt("vt-even.raw", 0x20030000, 0x08020400)         # no Thumb bit
vt("vt-loader.raw", 0x20030000, 0x08000401)       # into the loader, before the image
vt("vt-header.raw", 0x20030000, 0x08020201)       # into the image header
vt("vt-trailer.raw", 0x20030000, 0x08020000 + n + 1)  # into the SHA-256 trailer
vt("vt-ccm.raw", 0x10010000, 0x08020000 + n - 1)  # SP at the end of CCM; the last halfword

# An image with initial SP 0 whose header and trailer are right (what a tool without the check
# would make), and the same as the target of a stored full package: the package of v2.bin with
# its payload replaced and target_sha256 fixed (the sizes are equal).
img = bytearray(open("v2.bin", "rb").read())
struct.pack_into("<I", img, 0, 0)
size = len(img) - 32
img[size:] = hashlib.sha256(bytes(img[:size])).digest()
open("vt-sp0.bin", "wb").write(img)
p = bytearray(open("full.stored.pkg", "rb").read())
ms, ps = struct.unpack_from("<H", p, 6)[0], struct.unpack_from("<I", p, 8)[0]
assert ps == len(img) and len(p) == 16 + ms + ps
p[16 + ms:] = img
pos = 16
while pos < 16 + ms:
    t, l = struct.unpack_from("<HH", p, pos)
    if t == 0x8003:
        p[pos + 4:pos + 4 + l] = hashlib.sha256(bytes(img)).digest()
    pos += 4 + l
open("vt-sp0.u.pkg", "wb").write(p)
EOF
run "$OTA" stamp vt-sp0.raw --version FOTAV1 -o vt.bin
check "stamp of a binary with initial SP 0: exit 3, names SP and its value, no output" \
  'clean_error 3 vt-sp0.raw "vector table" "initial SP 0x00000000" "not in SRAM or CCM" &&
   [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-sp4.raw --version FOTAV1 -o vt.bin
check "stamp of a binary with initial SP 0x2002FFFC: exit 3, not 8-byte aligned" \
  'clean_error 3 "initial SP 0x2002FFFC" "8-byte aligned" && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-sram-start.raw --version FOTAV1 -o vt.bin
check "stamp of a binary with initial SP at the start of SRAM: exit 3" \
  'clean_error 3 "initial SP 0x20000000" && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-erased.raw --version FOTAV1 -o vt.bin
check "stamp of a binary with an erased vector table: exit 3" \
  'clean_error 3 "initial SP 0xFFFFFFFF" && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-even.raw --version FOTAV1 -o vt.bin
check "stamp of a binary with an even reset vector: exit 3, Thumb" \
  'clean_error 3 "reset vector 0x08020400" Thumb && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-loader.raw --version FOTAV1 -o vt.bin
check "stamp of a binary whose reset vector points before the image: exit 3, the bounds" \
  'clean_error 3 "reset vector 0x08000401" "0x08020240 <= (reset & ~1) < 0x" && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-header.raw --version FOTAV1 -o vt.bin
check "stamp of a binary whose reset vector points into the header: exit 3" \
  'clean_error 3 "reset vector 0x08020201" && [[ ! -e vt.bin ]]'
run "$OTA" stamp vt-trailer.raw --version FOTAV1 -o vt.bin
check "stamp of a binary whose reset vector points into the trailer: exit 3" \
  'clean_error 3 "reset vector" "does not point into the image" && [[ ! -e vt.bin ]]'
printf 'KEEP ME' >vt-keep.bin
run "$OTA" stamp vt-sp0.raw --version FOTAV1 -o vt-keep.bin
check "stamp refused for its vector table does not replace an existing output" \
  'rc_is 3 && [[ $(cat vt-keep.bin) == "KEEP ME" ]]'
run "$OTA" stamp vt-ccm.raw --version FOTAV1 -o vt-ccm.bin
check "stamp of SP = end of CCM, reset vector at the last halfword: accepted" \
  'succeeded "stamp: vt-ccm.bin version=FOTAV1"'
run "$OTA" pack --full vt-sp0.bin --version FOTAV2 -o vt.pkg
check "pack of an image with initial SP 0: exit 3, names SP, no output" \
  'clean_error 3 "initial SP 0x00000000" && [[ ! -e vt.pkg ]]'
run "$OTA" pack --diff vt-sp0.bin v1.bin --version FOTAV1 --from-version FOTAV2 -o vt.pkg
check "pack --diff from an image with initial SP 0: exit 3, old image, no output" \
  'clean_error 3 "old image" "initial SP 0x00000000" && [[ ! -e vt.pkg ]]'
run "$OTA" sign vt-sp0.u.pkg --key key.pem --password-file pw -o vt-sp0.pkg
check "sign of a full package whose target has initial SP 0: exit 0 (sign checks no image)" \
  'succeeded "sign: vt-sp0.pkg"'
run "$OTA" verify vt-sp0.pkg --pub key.pub
check "verify of that package: exit 1, target-mismatch, names SP and its value" \
  'clean_error 1 vt-sp0.pkg "invalid: target-mismatch (IoTDA result 10)" \
     "the target image: vector table: initial SP 0x00000000"'
run "$OTA" apply vt-sp0.pkg --old v1.bin -o vt-apply.bin --pub key.pub
check "apply of that package: exit 1, target-mismatch (the loader restores the old image)" \
  'clean_error 1 target-mismatch && [[ ! -e vt-apply.bin ]]'
run "$OTA" pack --full v2.bin --version FOTAV2 -o desc.pkg --description "$(printf 'd%.0s' {1..65})"
check "pack --description of 65 bytes: exit 3" 'clean_error 3 description && [[ ! -e desc.pkg ]]'

# ---------------------------------------------------------------------------------------------
# Bad command lines: exit 2

run "$OTA" frobnicate
check "unknown subcommand: exit 2, nothing on stdout" 'rc_is 2 && out_empty && [[ -s err ]]'
check "unknown subcommand: the error names it" 'err_has frobnicate'
run "$OTA"
check "no subcommand: exit 2" 'rc_is 2 && out_empty'
run "$OTA" pack --full v2.bin -o u.pkg
check "pack without --version: exit 2, names the option" \
  'rc_is 2 && out_empty && err_has --version && [[ ! -e u.pkg ]]'
run "$OTA" pack --full v2.bin --version FOTAV2
check "pack without -o: exit 2" 'rc_is 2 && out_empty && err_has --out'
run "$OTA" keygen --password-file pw
check "keygen without -o: exit 2" 'rc_is 2 && out_empty'
run "$OTA" apply full.pkg --pub key.pub
check "apply without -o: exit 2" 'rc_is 2 && out_empty'
run "$OTA" sign diff.u.pkg -o u.pkg
check "sign without --key: exit 2" 'rc_is 2 && out_empty && err_has --key && [[ ! -e u.pkg ]]'
run "$OTA" verify full.pkg
check "verify without --pub: exit 2" 'rc_is 2 && out_empty && err_has --pub'
run "$OTA" pack --full v2.bin --diff v1.bin v2.bin --version FOTAV2 --from-version FOTAV1 \
  -o u.pkg
check "pack with both --full and --diff: exit 2, no output" \
  'rc_is 2 && out_empty && err_has --full && err_has --diff && [[ ! -e u.pkg ]]'
run "$OTA" pack --version FOTAV2 -o u.pkg
check "pack with neither --full nor --diff: exit 2" 'clean_error 2 --full --diff'
run "$OTA" pack --diff v1.bin v2.bin --version FOTAV2 -o u.pkg
check "pack --diff without --from-version: exit 2" 'clean_error 2 --from-version'
run "$OTA" pack --full v2.bin --version FOTAV2 --from-version FOTAV1 -o u.pkg
check "pack --full with --from-version: exit 2" 'clean_error 2 --from-version'
run "$OTA" pack --diff v1.bin --version FOTAV2 --from-version FOTAV1 -o u.pkg
check "pack --diff with one image: exit 2" 'rc_is 2 && out_empty && [[ ! -e u.pkg ]]'
run "$OTA" pack --full v2.bin --version FOTAV2 -o u.pkg --codec zip
check "pack --codec zip: exit 2" 'clean_error 2 --codec'
run "$OTA" pack --full v2.bin --version FOTAV2 -o u.pkg --board nosuchboard
check "pack --board nosuchboard: exit 2, lists the known boards" \
  'clean_error 2 nosuchboard stm32f429-fire'
run "$OTA" pack --full v2.bin --version FOTAV2 -o u.pkg --counter minus-one
check "pack --counter that is not a number: exit 2" 'rc_is 2 && out_empty && [[ ! -e u.pkg ]]'
run "$OTA" verify full.pkg --pub key.pub --bogus
check "unknown option: exit 2" 'rc_is 2 && out_empty'
run "$OTA" --help
check "--help: exit 0, lists the subcommands and the exit codes" \
  'rc_is 0 && out_has keygen && out_has stamp && out_has "Exit codes"'
run "$OTA" pack --help
check "pack --help: exit 0" 'rc_is 0 && out_has --allow-downgrade'

# ---------------------------------------------------------------------------------------------
# Outputs are written whole or not at all

run "$OTA" pack --full v2.bin --version FOTAV3 -o half.pkg
check "failed pack: no output file, no temporary file left" \
  'rc_is 3 && [[ ! -e half.pkg ]] && no_temp_files .'
printf 'KEEP ME\n' >keep.pkg
run "$OTA" pack --full v2.bin --version FOTAV3 -o keep.pkg
check "failed pack does not replace an existing output" \
  'rc_is 3 && [[ $(cat keep.pkg) == "KEEP ME" ]]'
run "$OTA" pack --full v2.bin --version FOTAV2 -o keep.pkg --key key.pem --password-file badpw
check "pack with a wrong password does not replace an existing output" \
  'rc_is 3 && [[ $(cat keep.pkg) == "KEEP ME" ]]'
run "$OTA" sign diff.u.pkg --key key.pem --password-file badpw -o keep.pkg
check "failed sign does not replace an existing output" \
  'rc_is 3 && [[ $(cat keep.pkg) == "KEEP ME" ]]'
run "$OTA" apply diff.pkg --old v2.bin -o keep.pkg --pub key.pub
check "refused apply does not replace an existing output" \
  'rc_is 1 && [[ $(cat keep.pkg) == "KEEP ME" ]]'
run "$OTA" stamp v1.raw --version "FOTA V2" -o keep.pkg
check "failed stamp does not replace an existing output" \
  'rc_is 3 && [[ $(cat keep.pkg) == "KEEP ME" ]]'
mkdir outdir
run "$OTA" pack --full v2.bin --version FOTAV2 -o outdir
check "pack onto a directory: exit 4, one line, no temporary file left" \
  'clean_error 4 outdir && no_temp_files . && [[ -z $(ls -A outdir) ]]'
run "$OTA" pack --full v2.bin --version FOTAV2 -o no-such-dir/p.pkg
check "pack into a missing directory: exit 4, one line" 'clean_error 4 no-such-dir/p.pkg'
printf 'OLD\n' >replace.pkg
run "$OTA" pack --full v2.bin --version FOTAV2 -o replace.pkg
check "successful pack replaces an existing output, mode 0644" \
  'rc_is 0 && [[ $(stat -c %a replace.pkg) == 644 ]] && same replace.pkg full.u.pkg'
check "no temporary files left in the work directory" 'no_temp_files .'

# ---------------------------------------------------------------------------------------------
# On a terminal (a pseudo-terminal made by python3)

runpty $'typed pass 1\ntyped pass 1' "$OTA" keygen -o tty.pem --pub tty.pub
check "terminal: keygen asks for the password twice without echo" \
  'rc_is 0 && grep -q "Password for the new key" tty.out && grep -q "Repeat the password" tty.out &&
   ! grep -q "typed pass" tty.out &&
   openssl pkey -in tty.pem -passin "pass:typed pass 1" -noout 2>/dev/null'
runpty $'first one\nsecond one' "$OTA" keygen -o tty2.pem
check "terminal: keygen with two different passwords: exit 3, 'differ', no key" \
  'rc_is 3 && grep -q "differ" tty.out && [[ ! -e tty2.pem ]]'
runpty $'typed pass 1' "$OTA" pack --full v2.bin --version FOTAV2 -o tty.pkg --key tty.pem
check "terminal: pack asks for the key password once; the package verifies" \
  'rc_is 0 && [[ $(grep -c "Password for tty.pem" tty.out) -eq 1 ]] &&
   "$OTA" verify tty.pkg --pub tty.pub >/dev/null 2>&1 </dev/null'
check "terminal: pack shows progress, then the result line" \
  'grep -q "pack \[" tty.out &&
   [[ $(tail -n 1 tty.out | tr -d "\r") == "pack: tty.pkg kind=full"* ]]'
runpty "" env OTA_KEY_PASSWORD='correct horse' "$OTA" pack --full v2.bin --version FOTAV2 \
  -o tty.env.pkg --key key.pem
check "terminal: \$OTA_KEY_PASSWORD comes before asking" \
  'rc_is 0 && ! grep -qi "password" tty.out && [[ -e tty.env.pkg ]]'
runpty "" "$OTA" pack --full v2.bin --version FOTAV3 -o tty.bad.pkg
check "terminal: a failed pack shows its error on a line of its own, no 'done' after it" \
  'rc_is 3 && "$PY" - tty.out <<"EOF"
import sys
t = open(sys.argv[1], "rb").read()
i = t.find(b"ota: new image")
if i < 0:
    sys.exit("no error message")
before, after = t[:i], t[i:].split(b"\n", 1)[1] if b"\n" in t[i:] else b""
if not (before == b"" or before.endswith(b"\n") or before.endswith(b"\r\x1b[K")):
    sys.exit("the error is glued to the progress bar")
if b"done" in after or b"[" in after:
    sys.exit("progress is drawn after the error")
EOF
'
PTY_TIMEOUT=3 runpty "" "$OTA" verify full.pkg --pub key.pem
check "terminal: verify --pub with an encrypted private key fails at once, no prompt" \
  'rc_is 3 && ! grep -qi "pass phrase" tty.out'

# ---------------------------------------------------------------------------------------------
# Real firmware (../shared/firmware-pairs, p3 and p2): 64 reserved bytes inserted at 0x200 and
# a plausible initial SP and reset vector make each file an app binary for `ota stamp`; the
# diff and full packages must rebuild the new image exactly through `ota apply`.
PAIRS=$(realpath "$HERE/../../../shared/firmware-pairs" 2>/dev/null || true)
for pair in p3_detools_shell_cortexm4 p2_pybv11_stm32f405; do
  old=$(ls "$PAIRS"/"$pair"*.old.bin 2>/dev/null | head -1 || true)
  new=$(ls "$PAIRS"/"$pair"*.new.bin 2>/dev/null | head -1 || true)
  if [[ -z $old || -z $new ]]; then
    check "real pair $pair is in ../shared/firmware-pairs" 'false'
    continue
  fi
  for side in old new; do
    src=$old
    [[ $side == new ]] && src=$new
    # Neither file is linked for the FIRE slot: words 0 and 1 become a vector table the
    # loader accepts (initial SP at the top of SRAM, reset vector inside the image).
    "$PY" -c 'import struct, sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(struct.pack("<II",0x20030000,0x08020401)+d[8:0x200]+bytes(64)+d[0x200:])' \
      "$src" "$pair.$side.raw"
  done
  run "$OTA" stamp "$pair.old.raw" --version REALV1 -o "$pair.v1.bin"
  run "$OTA" stamp "$pair.new.raw" --version REALV2 -o "$pair.v2.bin"
  run "$OTA" pack --diff "$pair.v1.bin" "$pair.v2.bin" --from-version REALV1 --version REALV2 \
    -o "$pair.diff.pkg" --key key.pem --password-file pw
  check "real pair $pair: pack --diff --key: exit 0" 'succeeded "pack: $pair.diff.pkg"'
  run "$OTA" pack --full "$pair.v2.bin" --version REALV2 -o "$pair.full.pkg" --key key.pem \
    --password-file pw
  check "real pair $pair: pack --full --key: exit 0" 'succeeded "pack: $pair.full.pkg"'
  run "$OTA" apply "$pair.diff.pkg" --old "$pair.v1.bin" -o "$pair.diff.out" --pub key.pub
  check "real pair $pair: apply of the diff rebuilds the new image exactly" \
    'succeeded "apply:" && same "$pair.diff.out" "$pair.v2.bin"'
  run "$OTA" apply "$pair.full.pkg" -o "$pair.full.out" --pub key.pub
  check "real pair $pair: apply of the full package rebuilds the new image exactly" \
    'succeeded "apply:" && same "$pair.full.out" "$pair.v2.bin"'
  check "real pair $pair: the diff is smaller than the full package" \
    '(( $(stat -c %s "$pair.diff.pkg") < $(stat -c %s "$pair.full.pkg") ))'
done

# ---------------------------------------------------------------------------------------------
echo "1..$total"
if ((failed > 0)); then
  echo "# $failed of $total checks failed"
  exit 1
fi
echo "# all $total checks passed"

#!/usr/bin/env bash
# Runs the stamped app images (appv1.bin, appv2.bin from `make firmware`) on QEMU's
# netduinoplus2 (an STM32F405: a Cortex-M4F like the STM32F429) and drives the shell on the
# USART1 console: banner, the unprovisioned path (no W25Q128 in the model), the commands,
# line editing, the 320-character limit, and `reboot` through AIRCR.
# Usage: m4_app_check.sh path/to/build/firmware
# Needs qemu-system-arm and python3. Prints ok/not ok per check; exits 1 on a failure.
set -euo pipefail
DIR=$(realpath "$1")
command -v qemu-system-arm >/dev/null || {
  echo "m4_app_check: needs qemu-system-arm (Debian package qemu-system-arm)" >&2
  exit 1
}
W=$(mktemp -d "${TMPDIR:-/tmp}/m4_app_check.XXXXXX")
qemu_pid=
cleanup() {
  [[ -n "$qemu_pid" ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# boot_table APP OUT: the loader's stand-in at 0x08000000, a copy of the app's vector table
# (VTOR's reset value 0 aliases 0x08000000 on the model, so reset starts the app's
# Reset_Handler and interrupts reach its handlers, as when the loader set VTOR to the app).
# Only the initial SP changes: app.ld puts it at the top of the F429's 192 KB of SRAM, the
# model has 128 KB; .data, .bss and the stack reservation end far below 0x20020000.
boot_table() {
  python3 - "$@" <<'PY'
import struct, sys
app, out = sys.argv[1:3]
table = bytearray(open(app, 'rb').read()[:107 * 4])  # SP, 15 exceptions, 91 IRQs (startup.cpp)
assert struct.unpack_from('<I', table, 0)[0] == 0x20030000, 'unexpected initial SP'
struct.pack_into('<I', table, 0, 0x20020000)
open(out, 'wb').write(table)
PY
}

# The driver: connects to the console socket (QEMU waits for it before the guest runs, so no
# byte is lost), types, and checks what comes back. Every wait has a timeout.
cat >"$W/drive.py" <<'PY'
import re, socket, sys, time

sock_path, version, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
SW = 'SOTAV1'  # OTA_APP_SW_VERSION's default (firmware/CMakeLists.txt)
BANNER = f'app: version {version} (software {SW})\r\n'
PROMPT = '\r\n> '
n = first
failures = 0
buf = ''
pos = 0  # what the checks have consumed
closed = False

deadline = time.monotonic() + 10
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        break
    except OSError:
        s.close()
        if time.monotonic() > deadline:
            raise SystemExit('m4_app_check: no console socket from QEMU')
        time.sleep(0.05)


def wait_for(text, timeout=5.0):
    """The output from `pos` up to and including `text`, consuming it; None on timeout."""
    global buf, pos, closed
    end = time.monotonic() + timeout
    while True:
        i = buf.find(text, pos)
        if i >= 0:
            got = buf[pos:i + len(text)]
            pos = i + len(text)
            return got
        left = end - time.monotonic()
        if closed or left <= 0:
            return None
        s.settimeout(left)
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        if not data:
            closed = True
        buf += data.decode('latin-1')


def check(ok, what, got=None):
    global n, failures
    if ok:
        print(f'ok {n} - {version}: {what}', flush=True)
    else:
        failures += 1
        # What came instead: the matched output, or on a timeout all not yet consumed.
        print(f'not ok {n} - {version}: {what}; got {buf[pos:] if got is None else got!r}',
              flush=True)
    n += 1


def command(typed, timeout=5.0):
    """Types `typed` (ending in CR) and returns the output up to the next prompt."""
    s.sendall(typed.encode('latin-1'))
    return wait_for(PROMPT, timeout)


got = wait_for(BANNER, 10)
check(got is not None, f'banner {BANNER.strip()!r}', got)

got = wait_for(PROMPT)
m = got is not None and re.fullmatch(
    r'app: w25q128: ([a-z-]+): no upgrades, no settings\r\n'
    r'app: not provisioned \(([a-z-]+)\): use `provision`, then `reboot`' + re.escape(PROMPT), got)
check(bool(m), 'unprovisioned: ' + (f'w25q128 {m[1]}, not provisioned ({m[2]}), prompt'
                                    if m else 'w25q128 line, not provisioned, prompt'), got)

got = command('version\r')
check(got == f'version\r\nfirmware {version}\r\nsoftware {SW}' + PROMPT,
      'version (echoed): firmware and software versions', got)

got = command('help\r')
check(got is not None and got.startswith('help\r\ncommands:\r\n') and
      '\r\n  provision <device_id> ' in got and '\r\n  settings ' in got and
      got.endswith('\r\n  help' + PROMPT), 'help lists provision and settings', got)

got = command('status\r')
check(got == 'status\r\nagent not running (see `settings`)' + PROMPT, 'status: agent not running',
      got)

got = command('radio 5\r')
check(got == 'radio 5\r\nradio: failed-precondition' + PROMPT, 'radio 5: failed-precondition', got)

got = command('versiox\bn\r')
check(got == f'versiox\b \bn\r\nfirmware {version}\r\nsoftware {SW}' + PROMPT,
      'backspace: versiox BS n runs version', got)

long_line = ''.join(chr(ord('a') + i % 26) for i in range(400))
got = command(long_line + '\r')
check(got == long_line[:320] + '\r\nline longer than 320 characters: ignored' + PROMPT,
      '400-character line: 320 echoed, then ignored', got)

got = command('frob\r')
check(got == "frob\r\nunknown command 'frob' (help lists them)" + PROMPT,
      "frob: unknown command 'frob'", got)

s.sendall(b'reboot\r')
again = (wait_for('reboot\r\nrebooting\r\n') is not None and wait_for(BANNER, 10) is not None
         and wait_for(PROMPT, 10) is not None)
check(again, 'reboot: rebooting, then the banner and the prompt again')

s.close()
sys.exit(1 if failures else 0)
PY

n=1
status=0
for v in 1 2; do
  boot_table "$DIR/appv$v.bin" "$W/boot$v.bin"
  rm -f "$W/console"
  # serial0 is the SoC's USART1 (the board's console). No network, no monitor; the bound
  # keeps a hung guest from outliving the check.
  timeout 60 qemu-system-arm -M netduinoplus2 -nographic -monitor none -nic none \
    -chardev socket,id=console,path="$W/console",server=on,wait=on -serial chardev:console \
    -device loader,file="$W/boot$v.bin",addr=0x08000000,force-raw=on \
    -device loader,file="$DIR/appv$v.bin",addr=0x08020000,force-raw=on \
    >"$W/qemu$v.log" 2>&1 &
  qemu_pid=$!
  python3 "$W/drive.py" "$W/console" "FOTAV$v" "$n" | tee "$W/drive$v.log" || status=1
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  n=$((n + $(grep -cE '^(not )?ok ' "$W/drive$v.log" || true)))
  grep -q '^not ok ' "$W/drive$v.log" && { status=1; sed 's/^/qemu: /' "$W/qemu$v.log"; }
done
[[ $status -eq 0 ]] || { echo "m4_app_check: a check failed" >&2; exit 1; }
echo "m4-app: $((n - 1)) checks ok on the emulated Cortex-M4 (appv1, appv2)"

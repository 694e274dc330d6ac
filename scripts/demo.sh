#!/usr/bin/env bash
# The seed's walkthrough, end to end on one machine (`make demo`; README): Mosquitto with the
# auth plugin over TLS, ota-server on SQLite, a product and a device, signed packages
# (v1 full, v2 full, v1->v2 diff), a simulated FIRE board flashed with loader + FOTAV1, then a
# full upgrade, a way back to FOTAV1, and a diff upgrade, each through real MQTT and HTTPS.
# When the Cortex-M4 images of `make firmware` exist, the real loader.bin and appv1.bin then
# run on the emulated FIRE board (`ota-device run --emulate`, docs/m4-board.md) for one more
# upgrade to FOTAV2, with the emulated board's instruction count and time (DEMO_EMULATE=0
# skips it). Makes the web console's first admin and prints its address and password;
# DEMO_KEEP=1 keeps the broker and the platform running after the walkthrough to look at it.
# Leaves its scratch directory for inspection; exits non-zero if any step fails.
#
# Usage: scripts/demo.sh BUILD_DIR [SCRATCH_DIR]
set -euo pipefail

BUILD=$(realpath "${1:-build/host}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${2:-$ROOT/build/demo/$(date -u +%Y%m%dT%H%M%SZ)}
SERVER=$BUILD/server/ota-server
OTA=$BUILD/tools/ota
DEVICE=$BUILD/sim/ota-device/ota-device
PLUGIN=$BUILD/broker/ota_auth_plugin.so
MOSQUITTO=/usr/sbin/mosquitto
for f in "$SERVER" "$OTA" "$DEVICE" "$PLUGIN" "$MOSQUITTO"; do
  [[ -x $f || -f $f ]] || { echo "demo: missing $f (build first: make build)" >&2; exit 1; }
done

# A scratch directory is ours to reuse only if an earlier demo made it.
if [[ -d $SCRATCH && -n $(ls -A "$SCRATCH") ]]; then
  [[ -f $SCRATCH/.ota-demo ]] || { echo "demo: $SCRATCH exists and is not a demo's" >&2; exit 1; }
  rm -rf "$SCRATCH"
fi
mkdir -p "$SCRATCH"
touch "$SCRATCH/.ota-demo"
cd "$SCRATCH"
pids=()
stop_all() {
  if [[ -n ${DEVICE_IN:-} ]]; then echo quit >&"$DEVICE_IN" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT

T0=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
fail() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
api() { "$SERVER" "$@" --url "https://127.0.0.1:$HTTP" --data "$SCRATCH/data"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# Waits until the device log ($LOG, default device.log) has a line matching $1 after line $2
# (default: anywhere).
wait_log() {
  local pattern=$1 from=${2:-0} timeout=${3:-60}
  for _ in $(seq $((timeout * 10))); do
    tail -n +"$((from + 1))" "${LOG:-device.log}" | grep -qE "$pattern" && return 0
    sleep 0.1
  done
  return 1
}
log_lines() { wc -l <device.log; }

step "1. Broker and platform on free local ports (scratch: $SCRATCH)"
MQTTS=$(free_port)
HTTP=$(free_port)
DOWNLOADS=$(free_port)
"$SERVER" broker-config --data data --plugin "$PLUGIN" --mqtts-port "$MQTTS" --mqtt-port 0 >mosquitto.conf
{
  [[ $(id -u) -eq 0 ]] && echo "user root"
  echo "persistence false"
  echo "log_dest file $SCRATCH/mosquitto.log"
} >>mosquitto.conf
"$MOSQUITTO" -c mosquitto.conf >/dev/null 2>&1 &
pids+=($!)
wait_port "$MQTTS" || fail "mosquitto did not start (see mosquitto.log)"
say "mosquitto: MQTTS on 127.0.0.1:$MQTTS with the ota auth plugin"
"$SERVER" serve --data data --http-port "$HTTP" --download-port "$DOWNLOADS" --mqtt-host localhost --mqtt-port "$MQTTS" \
  --mqtt-ca data/tls/ca.pem >server.log 2>&1 &
pids+=($!)
wait_port "$HTTP" || fail "ota-server did not start (see server.log)"
say "$(head -1 server.log)"
CONSOLE_PASSWORD=$("$SERVER" user create admin --data data) || fail "ota-server user create failed"
say "web console: https://127.0.0.1:$HTTP/ (user admin, password $CONSOLE_PASSWORD; the CA is data/tls/ca.pem)"

step "2. Product (DeviceStatus.radioValue) and device"
cat >model.json <<'EOF'
{"services":[{"service_id":"DeviceStatus","properties":[{"name":"radioValue","type":"int"}]}]}
EOF
api product create --id fire --name "FIRE board" --manufacturer embedfire --model model.json >/dev/null
api device create fire n1 --secret "demo-device-secret" >/dev/null
say "product fire, device fire_n1"

step "3. Images, key pair, signed packages, upload"
if [[ -f $ROOT/build/firmware/appv1.bin && -f $ROOT/build/firmware/appv2.bin ]]; then
  cp "$ROOT/build/firmware/appv1.bin" appv1.bin
  cp "$ROOT/build/firmware/appv2.bin" appv2.bin
  say "appv1.bin, appv2.bin: the Cortex-M4 images (build/firmware)"
else
  python3 - <<'EOF'
import random, struct
random.seed(2026)
code = bytes(random.getrandbits(8) & 0x7f for _ in range(200000))
# Vector table (initial SP at the top of SRAM, Thumb reset vector inside the image), header.
head = struct.pack("<II", 0x20030000, 0x08020401) + bytes(0x200 - 8) + bytes(64)
open("appv1.raw", "wb").write(head + code)
open("appv2.raw", "wb").write(head + code[:120000] + b"FOTAV2 feature " * 400 + code[120000:])
EOF
  "$OTA" stamp appv1.raw --version FOTAV1 -o appv1.bin >/dev/null
  "$OTA" stamp appv2.raw --version FOTAV2 -o appv2.bin >/dev/null
  say "appv1.bin, appv2.bin: synthetic app images (no Cortex-M4 build in build/firmware)"
fi
printf 'demo-key-password\n' >key.pass
"$OTA" keygen -o fota.key --pub fota.pub --password-file key.pass >/dev/null
api product add-key fire fota.pub >/dev/null
"$OTA" pack --full appv1.bin --version FOTAV1 -o appv1c.bin --key fota.key --password-file key.pass | sed 's/^/   /'
"$OTA" pack --full appv2.bin --version FOTAV2 -o appv2c.bin --key fota.key --password-file key.pass | sed 's/^/   /'
"$OTA" pack --diff appv1.bin appv2.bin --from-version FOTAV1 --version FOTAV2 -o appv1v2.bin \
  --key fota.key --password-file key.pass | sed 's/^/   /'
"$OTA" verify appv1v2.bin --pub fota.pub >/dev/null || fail "the diff package does not verify"
FULL1=$(api package upload fire appv1c.bin | json 'd["package_id"]')
FULL2=$(api package upload fire appv2c.bin | json 'd["package_id"]')
DIFF=$(api package upload fire appv1v2.bin | json 'd["package_id"]')
say "uploaded: appv1c.bin (package $FULL1), appv2c.bin ($FULL2), appv1v2.bin ($DIFF)"

step "4. A simulated board: loader + FOTAV1, connected to the platform through its ESP-AT Wi-Fi modem"
cat >device.json <<EOF
{"device_id": "fire_n1", "secret": "demo-device-secret", "mqtt_host": "localhost",
 "mqtt_port": $MQTTS, "ca": "$SCRATCH/data/tls/ca.pem", "loader_keys": ["$SCRATCH/fota.pub"],
 "report_interval_ms": 2000, "transport": "esp-at"}
EOF
LOADER_ARGS=()
[[ -f $ROOT/build/firmware/loader.bin ]] && LOADER_ARGS=(--loader "$ROOT/build/firmware/loader.bin")
"$DEVICE" flash --board board "${LOADER_ARGS[@]}" --app appv1.bin | sed 's/^/   /'
mkfifo device.in
"$DEVICE" run --board board --config device.json <device.in >device.log 2>&1 &
pids+=($!)
exec {DEVICE_IN}>device.in
wait_log "connected to the platform" 0 30 || fail "the board did not connect (see device.log)"
from=$(log_lines)
echo version >&"$DEVICE_IN"
wait_log "^firmware FOTAV1$" "$from" 10 || fail "the board does not say FOTAV1"
say "board connected; shell 'version' prints firmware FOTAV1"

summary=()
# upgrade NAME PACKAGE_ARGS... : runs a task, shows its progress, checks the version after.
upgrade() {
  local name=$1 expect=$2
  shift 2
  local from start task size
  from=$(log_lines)
  start=$(date +%s.%N)
  task=$(api task create fire --device fire_n1 "$@" | json 'd["task_id"]')
  api task wait "$task" --timeout 90 | sed 's/^/   /' || fail "$name: the task did not succeed"
  wait_log "app $expect running" "$from" 30 || fail "$name: the board is not running $expect"
  local wall
  wall=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
  local now
  now=$(log_lines)
  echo version >&"$DEVICE_IN"
  wait_log "^firmware $expect$" "$now" 10 || fail "$name: 'version' does not print $expect"
  size=$(api task show "$task" | json 'd["devices"][0]["package_id"]')
  size=$(api package list --product fire | json "[p['size'] for p in d if p['package_id']==$size][0]")
  local seg
  seg=$(tail -n +"$((from + 1))" device.log)
  local dl dprog derase dboard lprog lerase lboard
  dl=$(grep -oE 'downloaded bytes=[0-9]+' <<<"$seg" | tail -1 | cut -d= -f2)
  local uart
  uart=$(grep -oE 'uart_s=[0-9.]+' <<<"$seg" | tail -1 | cut -d= -f2)
  read -r dprog derase dboard < <(grep -E 'flash download' <<<"$seg" | tail -1 |
    sed -E 's/.*programs=([0-9]+) erases=([0-9]+) erased_kb=[0-9]+ board_s=([0-9.]+).*/\1 \2 \3/')
  read -r lprog lerase lboard < <(grep -E 'flash loader' <<<"$seg" | tail -1 |
    sed -E 's/.*programs=([0-9]+) erases=([0-9]+) erased_kb=[0-9]+ board_s=([0-9.]+).*/\1 \2 \3/')
  summary+=("$(printf '%-22s package=%7s B downloaded=%7s B wall=%5ss flash_ops=%5s board_time=%6ss uart=%5ss' \
    "$name" "$size" "${dl:-0}" "$wall" "$((dprog + derase + lprog + lerase))" \
    "$(python3 -c "print(f'{$dboard + $lboard:.1f}')")" "${uart:--}")")
  say "$name: done, the board runs $expect"
}

step "5. Full upgrade FOTAV1 -> FOTAV2 (appv2c.bin)"
upgrade "full FOTAV1->FOTAV2" FOTAV2 --package "$FULL2"

step "6. Back to FOTAV1 (appv1c.bin), then the diff upgrade (appv1v2.bin)"
upgrade "full FOTAV2->FOTAV1" FOTAV1 --package "$FULL1"
upgrade "diff FOTAV1->FOTAV2" FOTAV2 --version FOTAV2
api task list | json "'\\n'.join('   task %s: %s (package %s)' % (t['task_id'], t['status'], t['package_id']) for t in d)"

# The real board images on the emulated FIRE board. They trust the key the cross build made
# (firmware/CMakeLists.txt), so their package is signed with that one.
M4FW=$ROOT/build/firmware
M4KEY=$ROOT/build/cortex-m4/firmware/dev-signing-key.pem
if [[ ${DEMO_EMULATE:-1} != 0 && -f $M4FW/loader.bin && -f $M4FW/appv1.bin && -f $M4FW/appv2.bin &&
  -f $M4KEY ]]; then
  step "7. The real loader.bin + appv1.bin on the emulated FIRE board (Cortex-M4 on Unicorn), upgraded to FOTAV2"
  # A product of its own: its packages are signed with the images' key.
  api product create --id firem4 --name "FIRE board, real images" --manufacturer embedfire \
    --model model.json >/dev/null
  api product add-key firem4 "${M4KEY%.pem}.pub.pem" >/dev/null
  api device create firem4 n1 --secret "demo-m4-device-secret" >/dev/null
  "$OTA" pack --full "$M4FW/appv2.bin" --version FOTAV2 -o appv2-m4.bin --key "$M4KEY" | sed 's/^/   /'
  M4PKG=$(api package upload firem4 appv2-m4.bin | json 'd["package_id"]')
  cat >device-m4.json <<EOF
{"device_id": "firem4_n1", "secret": "demo-m4-device-secret", "mqtt_host": "localhost",
 "mqtt_port": $MQTTS, "ca": "$SCRATCH/data/tls/ca.pem", "loader_keys": ["${M4KEY%.pem}.pub.pem"]}
EOF
  "$DEVICE" flash --board m4board --loader "$M4FW/loader.bin" --app "$M4FW/appv1.bin" | sed 's/^/   /'
  mkfifo m4.in
  "$DEVICE" run --emulate --board m4board --config device-m4.json <m4.in >m4.log 2>&1 &
  M4PID=$!
  pids+=("$M4PID")
  exec {M4_IN}>m4.in
  LOG=m4.log wait_log "^app: version FOTAV1" 0 60 || fail "the emulated board did not start FOTAV1 (see m4.log)"
  say "emulated board: device firem4_n1 runs FOTAV1; task with package $M4PKG (signed with the images' key)"
  start=$(date +%s.%N)
  task=$(api task create firem4 --device firem4_n1 --package "$M4PKG" | json 'd["task_id"]')
  api task wait "$task" --timeout 120 | sed 's/^/   /' || fail "emulated board: the task did not succeed (see m4.log)"
  LOG=m4.log wait_log "^app: version FOTAV2" 0 30 || fail "the emulated board does not run FOTAV2 (see m4.log)"
  wall=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
  echo quit >&"$M4_IN"
  wait "$M4PID" || fail "ota-device --emulate failed (see m4.log)"
  grep -E '^(loader|app): |^ota-device: emulated board:' m4.log | sed -E 's/^(ota-device: )?/   /'
  figures=$(grep -E '^ota-device: emulated board: quit' m4.log |
    grep -oE 'instructions=[0-9]+ cycles=[0-9]+ emulated_ms=[0-9.]+ mips=[0-9.]+')
  summary+=("$(printf '%-22s %s wall=%ss' "emulated full FOTAV2" "$figures" "$wall")")
  say "the real app downloaded the package through the modem; the real loader installed it"
  step "8. Summary"
else
  step "7. Summary"
fi
for line in "${summary[@]}"; do say "$line"; done
if [[ -n ${M4PKG:-} ]]; then
  say "emulated: the Cortex-M4 board from power-on to quit (cold boot, download, install, FOTAV2 up): instructions, core cycles, board time, emulation speed"
fi
say "board_time: what the real board's flash would take (datasheet timing model)"
say "uart: what the download and the MQTT traffic since the last upgrade take on the board's ESP-AT modem UART at 115200 baud"
say "total $(python3 -c "print(f'{$(date +%s.%N) - $T0:.1f}')") s; scratch directory kept: $SCRATCH"
echo "demo: OK"
if [[ ${DEMO_KEEP:-0} == 1 ]]; then
  say "DEMO_KEEP=1: the broker and the platform keep running for the web console at https://127.0.0.1:$HTTP/ (user admin, password $CONSOLE_PASSWORD); Ctrl-C ends them"
  wait
fi

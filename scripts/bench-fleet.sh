#!/usr/bin/env bash
# `make bench-fleet [BOARDS=10000]`: a campaign over BOARDS simulated boards (ota-fleet) through
# one Mosquitto (auth plugin, MQTTS) and one ota-server on this machine: 90 % of the boards on
# FOTAV1 (diff package), 10 % on FOTAV0 (full), 5 % offline, 2 % failing verification. Then the
# peer: the same connect storm against Mosquitto's own password_file. Prints per stage the wall
# time, messages/s and the CPU and peak RSS of the broker, the platform and the fleet
# (scripts/bench-fleet-report.py), and the fleet: line. Not part of `make test`.
set -euo pipefail
BUILD=${1:-build/host}
BOARDS=${2:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
SERVER=$BUILD/server/ota-server
FLEET=$BUILD/sim/ota-fleet/ota-fleet
PLUGIN=$BUILD/broker/ota_auth_plugin.so
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
SCRATCH=$(mktemp -d /tmp/ota-bench-fleet.XXXXXX)
cd "$SCRATCH"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done  # fleets, brokers, platform
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Every board holds a few descriptors at the broker, the platform and the fleet.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "bench-fleet: boards=$BOARDS cores=$(nproc) fd_limit=$(ulimit -n) scratch=$SCRATCH"

MQTTS=$(free_port)
HTTP=$(free_port)
DOWNLOADS=$(free_port)
"$SERVER" broker-config --data data --plugin "$PLUGIN" --mqtts-port "$MQTTS" --mqtt-port 0 >mosquitto.conf
cat >>mosquitto.conf <<CONF
user root
persistence false
max_connections -1
log_dest file $SCRATCH/mosquitto.log
log_type error
log_type warning
CONF
"$MOSQUITTO" -c mosquitto.conf >/dev/null 2>&1 &
BROKER=$!
pids+=("$BROKER")
wait_port "$MQTTS" || { echo "bench-fleet: mosquitto did not start"; exit 1; }
"$SERVER" serve --data data --http-port "$HTTP" --download-port "$DOWNLOADS" \
  --download-workers 128 --mqtt-host localhost --mqtt-port "$MQTTS" \
  --mqtt-ca data/tls/ca.pem >server.log 2>&1 &
PLATFORM=$!
pids+=("$PLATFORM")
wait_port "$HTTP" || { echo "bench-fleet: ota-server did not start"; cat server.log; exit 1; }

# One ota-fleet process holds ~4 descriptors a board (MQTT socket, libmosquitto's socket pair,
# the download): past the descriptor limit the fleet runs as several processes (shards).
FDS=$(ulimit -n)
PER_PROCESS=$(( (FDS - 2000) / 4 ))
SHARDS=$(( (BOARDS + PER_PROCESS - 1) / PER_PROCESS ))
# The connect storm is spread over BOARDS/600 seconds (devices do not all wake in the same
# second); the figures show whether the broker keeps up.
RAMP=$(( BOARDS / 600 + 5 ))
COMMON=(--ca data/tls/ca.pem --boards "$BOARDS" --product bench --seed 1
  --start-mix FOTAV1=90,FOTAV0=10 --offline 5 --fail-verify 2 --ramp-seconds "$RAMP"
  --report-interval-ms 600000 --key-file key.pem --quiet)
API=(--api "https://127.0.0.1:$HTTP" --token-file data/admin.token)
echo "bench-fleet: $SHARDS fleet process(es) of up to $PER_PROCESS boards"
"$FLEET" "${COMMON[@]}" "${API[@]}" --setup-only

mkdir -p campaign peer
shard_pids=()
for k in $(seq 0 $((SHARDS - 1))); do
  watch=()
  [[ $k -eq 0 ]] && watch=(--watch "broker=$BROKER" --watch "platform=$PLATFORM")
  "$FLEET" "${COMMON[@]}" "${API[@]}" --mqtt-host 127.0.0.1 --mqtt-port "$MQTTS" \
    --skip-setup --shard "$k/$SHARDS" --no-task --follow-task --ready-file "campaign/ready.$k" \
    --timeout 900 --timeline "campaign/timeline.$k.jsonl" "${watch[@]}" \
    --summary "campaign/summary.$k.json" >"campaign/line.$k" 2>"campaign/log.$k" &
  shard_pids+=($!)
  pids+=($!)
done
ready_count() { find campaign -name 'ready.*' | wc -l; }
for _ in $(seq 1800); do
  [[ $(ready_count) -eq $SHARDS ]] && break
  sleep 0.5
done
[[ $(ready_count) -eq $SHARDS ]] || { echo "bench-fleet: the connect storm did not end"; exit 1; }
"$SERVER" task create bench --version FOTAV2 --all --retries 2 --retry-interval 5 \
  --url "https://127.0.0.1:$HTTP" --data data >task.json
FLEET_RC=0
for p in "${shard_pids[@]}"; do wait "$p" || FLEET_RC=1; done

# The peer for the connect storm: the same boards against Mosquitto's own password_file
# (PBKDF2-SHA512 hashes, mosquitto_passwd -U), the same TLS listener settings, no plugin.
PEER=$(free_port)
"$FLEET" --ca data/tls/ca.pem --boards "$BOARDS" --product bench --write-password-file passwords
mosquitto_passwd -U passwords
grep -v -E '^(plugin|listener)' mosquitto.conf | sed "s|$SCRATCH/mosquitto.log|$SCRATCH/peer.log|" >peer.conf
{
  echo "password_file $SCRATCH/passwords"
  echo "listener $PEER 127.0.0.1"
  grep -E '^(certfile|keyfile|cafile)' mosquitto.conf
} >>peer.conf
"$MOSQUITTO" -c peer.conf >/dev/null 2>&1 &
PEER_PID=$!
pids+=("$PEER_PID")
wait_port "$PEER" || { echo "bench-fleet: peer mosquitto did not start"; exit 1; }
shard_pids=()
for k in $(seq 0 $((SHARDS - 1))); do
  watch=()
  [[ $k -eq 0 ]] && watch=(--watch "broker=$PEER_PID")
  "$FLEET" "${COMMON[@]}" --mqtt-host 127.0.0.1 --mqtt-port "$PEER" --shard "$k/$SHARDS" \
    --connect-only --timeout 300 --timeline "peer/timeline.$k.jsonl" "${watch[@]}" \
    --summary "peer/summary.$k.json" >"peer/line.$k" 2>"peer/log.$k" &
  shard_pids+=($!)
done
for p in "${shard_pids[@]}"; do wait "$p" || true; done

python3 "$ROOT/scripts/bench-fleet-report.py" campaign peer
# The fleet: line over every process.
python3 - "$BOARDS" campaign/summary.*.json <<'PY'
import json, sys
boards = int(sys.argv[1])
t = {"success": 0, "failed": 0, "stuck": 0, "lost": 0, "offline": 0}
wall = 0.0
for path in sys.argv[2:]:
    s = json.load(open(path))
    for k in t:
        t[k] += s["result"][k]
    wall = max(wall, s["wall_s"])
print(f"fleet: boards={boards} success={t['success']} failed={t['failed']} stuck={t['stuck']} "
      f"lost={t['lost']} offline={t['offline']} wall_s={wall:.1f}")
PY
exit "$FLEET_RC"

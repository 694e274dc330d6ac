#!/usr/bin/env bash
# `make bench-connect-storm BOARDS=20000`: where one broker breaks on this machine. The connect
# storm alone (ota-fleet --connect-only, SHARDS processes, a 40 s ramp) against Mosquitto with
# a password_file on port 18885; prints the sessions made, the failed attempts, the broker's
# descriptors and what it logged most. No platform: the storm is what breaks first.
set -u
BUILD=$(cd "${1:-build/host}" && pwd)
N=${2:-20000}
SHARDS=${3:-$(( (N + 3999) / 4000 ))}
D=$(mktemp -d /tmp/ota-connect-storm.XXXXXX); cd "$D"
S=$BUILD/server/ota-server; F=$BUILD/sim/ota-fleet/ota-fleet
$S broker-config --data data --plugin "$BUILD/broker/ota_auth_plugin.so" --mqtts-port 18883 --mqtt-port 0 >/dev/null
$F --ca data/tls/ca.pem --boards $N --product b --write-password-file pw
mosquitto_passwd -U pw
cat > b.conf <<CONF
user root
persistence false
max_connections -1
set_tcp_nodelay true
log_dest file $D/broker.log
log_type error
log_type warning
log_type notice
password_file $D/pw
listener 18885 127.0.0.1
certfile $D/data/tls/server.pem
keyfile $D/data/tls/server.key
cafile $D/data/tls/ca.pem
CONF
mosquitto -c b.conf >/dev/null 2>&1 & B=$!
sleep 1
fp=()
for k in $(seq 0 $((SHARDS-1))); do
  $F --ca data/tls/ca.pem --mqtt-host 127.0.0.1 --mqtt-port 18885 --boards $N --product b --connect-only \
    --ramp-seconds 40 --timeout 150 --report-interval-ms 600000 --quiet --shard $k/$SHARDS --summary s$k.json >l$k 2>e$k &
  fp+=($!)
done
for p in "${fp[@]}"; do wait $p; done
sleep 1
echo "broker fds: $(ls /proc/$B/fd | wc -l) limit: $(grep 'open files' /proc/$B/limits)"
kill $B
python3 - $SHARDS <<PY
import json,sys
t=dict(connects=0,connect_failures=0); st=[]
for k in range(int(sys.argv[1])):
    s=json.load(open(f"s{k}.json")); t['connects']+=s['messages']['connects']; t['connect_failures']+=s['messages']['connect_failures']; st.append(s.get('connect_only_storm_s'))
print("break:", t, "storm_s per process:", st)
PY
grep -i -E "too many|error|accept" broker.log | sort | uniq -c | sort -rn | head -5

#!/usr/bin/env bash
# The seed's walkthrough driven from the shell (docs/server.md): a Mosquitto configured by
# `ota-server broker-config` (MQTTS for devices), `ota-server serve`, and the client
# subcommands; a device reports over MQTTS with mosquitto_pub.
#
# Usage: tests/cli/ota_server_cli_test.sh path/to/ota-server path/to/ota path/to/ota_auth_plugin.so
# Prints `ok - NAME` / `not ok - NAME` per check; exits non-zero if any failed.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ota-server ota ota_auth_plugin.so" >&2
  exit 2
fi
SERVER=$(realpath "$1")
OTA=$(realpath "$2")
PLUGIN=$(realpath "$3")
for tool in python3 mosquitto_pub openssl; do
  command -v "$tool" >/dev/null || { echo "$0: FAIL: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
MOSQUITTO=/usr/sbin/mosquitto
W=$(mktemp -d "${TMPDIR:-/tmp}/ota_server_cli.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
cd "$W"

total=0
failed=0
check() {  # check NAME COMMAND...: runs COMMAND, passes if it exits 0
  local name=$1
  shift
  total=$((total + 1))
  if "$@" >"$W/check.out" 2>&1; then
    echo "ok - $name"
  else
    failed=$((failed + 1))
    echo "not ok - $name"
    sed 's/^/#   /' "$W/check.out" | head -20
  fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# wait_grep PATTERN FILE: waits up to 10 s for a line (a server prints its line after it listens).
wait_grep() {
  for _ in $(seq 100); do
    grep -q "$1" "$2" && return 0
    sleep 0.1
  done
  return 1
}
# Runs the client; saves stdout to out.json, stderr to err.txt, and the exit code in RC.
client() {
  set +e
  "$SERVER" "$@" --url "https://127.0.0.1:$HTTP" --data "$W/data" >out.json 2>err.txt
  RC=$?
  set -e
}
field() { python3 -c "import json,sys; d=json.load(open('out.json')); print($1)"; }

MQTTS=$(free_port)
HTTP=$(free_port)
DOWNLOADS=$(free_port)

# ---- broker and server ----
"$SERVER" broker-config --data data --plugin "$PLUGIN" --mqtts-port "$MQTTS" --mqtt-port 0 >mosquitto.conf
printf 'user root\npersistence false\nlog_dest file %s/mosquitto.log\n' "$W" >>mosquitto.conf
check "broker-config names the plugin, the registry and an MQTTS listener" \
  grep -q "plugin_opt_registry $W/data/ota.db" mosquitto.conf
"$MOSQUITTO" -c mosquitto.conf >/dev/null 2>&1 &
pids+=($!)
check "mosquitto starts with that configuration" wait_port "$MQTTS"

"$SERVER" serve --data data --http-port "$HTTP" --download-port "$DOWNLOADS" --mqtt-port "$MQTTS" --mqtt-ca data/tls/ca.pem \
  --mqtt-host localhost >serve.log 2>&1 &
SERVE_PID=$!
pids+=($SERVE_PID)
check "ota-server serve starts (HTTPS, and MQTTS to the broker)" wait_port "$HTTP"
check "serve prints its one line" wait_grep "^ota-server: api=https://127.0.0.1:$HTTP/api/v1 downloads=https://127.0.0.1:$DOWNLOADS mqtt=localhost:$MQTTS" serve.log

# ---- products, keys, devices ----
cat >model.json <<'EOF'
{"services":[{"service_id":"DeviceStatus","properties":[{"name":"radioValue","type":"int"}]}]}
EOF
client product create --id fire --name "FIRE board" --manufacturer embedfire --model model.json
check "product create: exit 0, the product in JSON" test "$RC" -eq 0 -a "$(field 'd["product_id"]')" = fire
client product create --id fire --name again
check "product create again: exit 1, 409 on stderr" bash -c "[[ $RC -eq 1 ]] && grep -q '^ota-server: 409' err.txt"
printf 'pw-for-the-key\n' >pw
"$OTA" keygen -o key.pem --pub key.pub --password-file pw >/dev/null
client product add-key fire key.pub
check "product add-key: exit 0" test "$RC" -eq 0
client device create fire n1 --secret device-secret-1
check "device create: the secret is shown once" test "$(field 'd["secret"]')" = device-secret-1
client device show fire_n1
check "device show: no secret" test "$(field '"secret" in d')" = False
client device create fire s1 --gateway fire_n1
check "device create --gateway: a sub-device, no secret" \
  test "$(field 'd["gateway_id"] + str("secret" in d)')" = fire_n1False
client device sub-devices fire_n1
check "device sub-devices: the gateway's one" test "$(field '[x["device_id"] for x in d]')" = "['fire_s1']"

# ---- packages ----
python3 - <<'EOF'
import random, struct
random.seed(7)
body = bytes(random.getrandbits(8) & 0x3f for _ in range(40000))
# Vector table: initial SP at the top of SRAM, Thumb reset vector inside the image.
table = struct.pack("<II", 0x20030000, 0x08020401) + bytes(0x200 - 8)
v1 = table + bytes(64) + body
v2 = table + bytes(64) + body[:30000] + b"new code" * 100 + body[30000:]
open("v1.raw", "wb").write(v1)
open("v2.raw", "wb").write(v2)
EOF
"$OTA" stamp v1.raw --version FOTAV1 -o v1.bin >/dev/null
"$OTA" stamp v2.raw --version FOTAV2 -o v2.bin >/dev/null
"$OTA" pack --full v2.bin --version FOTAV2 -o appv2c.bin --key key.pem --password-file pw >/dev/null
"$OTA" pack --diff v1.bin v2.bin --from-version FOTAV1 --version FOTAV2 -o appv1v2.bin \
  --key key.pem --password-file pw >/dev/null
client package upload fire appv2c.bin
check "package upload (full): exit 0, kind full" test "$(field 'd["kind"]')" = full
client package upload fire appv1v2.bin
check "package upload (diff): source FOTAV1" test "$(field 'd["source_version"]')" = FOTAV1
client package upload fire appv1v2.bin
check "package upload again: exit 1 (409)" bash -c "[[ $RC -eq 1 ]] && grep -q 409 err.txt"
"$OTA" pack --full v1.bin --version FOTAV1 -o unsigned.bin >/dev/null
client package upload fire unsigned.bin
check "package upload unsigned: exit 1 (422)" bash -c "[[ $RC -eq 1 ]] && grep -q 422 err.txt"
client package list --product fire
check "package list: two packages" test "$(field 'len(d)')" = 2
head -c 3000 /dev/urandom >app.tar
openssl dgst -sha256 -sign key.pem -passin file:pw -out app.sig app.tar
client package upload fire app.tar --software APP2 --signature app.sig
check "package upload --software: a software package" test "$(field 'd["category"]')" = software
openssl dgst -sha256 -sign key.pem -passin file:pw -out other.sig v1.bin
client package upload fire app.tar --software APP3 --signature other.sig
check "package upload --software, signature of another file: exit 1 (422)" \
  bash -c "[[ $RC -eq 1 ]] && grep -q 422 err.txt"

# ---- a device over MQTTS ----
HOUR=$(date -u +%Y%m%d%H)
PASS=$(python3 -c "import hmac,hashlib; print(hmac.new(b'$HOUR', b'device-secret-1', hashlib.sha256).hexdigest())")
pub() {
  mosquitto_pub -h localhost -p "$MQTTS" --cafile data/tls/ca.pem -i "fire_n1_0_0_$HOUR" \
    -u fire_n1 -P "$1" -t '$oc/devices/fire_n1/sys/properties/report' -q 1 \
    -m '{"services":[{"service_id":"DeviceStatus","properties":{"radioValue":2}}]}'
}
refused() { ! pub "$1"; }
check "device publishes over MQTTS with its IoTDA password" pub "$PASS"
check "a wrong password is refused" refused wrongpassword
stored_radio() {
  for _ in $(seq 50); do
    client device properties fire_n1
    [[ $(field 'd.get("DeviceStatus",{}).get("radioValue")') == 2 ]] && return 0
    sleep 0.1
  done
  return 1
}
check "the report reached the platform and was stored" stored_radio

# ---- tasks ----
client task create fire --version FOTAV2 --device fire_n1 --retries 1
check "task create: exit 0, Waiting or Processing" bash -c "[[ $RC -eq 0 ]] && grep -Eq '\"status\": \"(Waiting|Processing)\"' out.json"
TASK=$(field 'd["task_id"]')
client task create fire --version FOTAV9 --device fire_n1
check "task for a version without a package: exit 1 (400)" bash -c "[[ $RC -eq 1 ]] && grep -q 400 err.txt"
client task create fire --kind software --version APP2 --device fire_s1
check "task create --kind software: on a sub-device" test "$(field 'd["kind"]')" = software
# Stopped at once: fire_s1's gateway is fire_n1, which would get its version_query below.
client task stop "$(field 'd["task_id"]')"
check "task stop of the software task: Stopped" test "$(field 'd["status"]')" = Stopped
client task stop "$TASK"
check "task stop: Stopped" test "$(field 'd["status"]')" = Stopped
client task wait "$TASK" --timeout 5
check "task wait on a stopped task: exit 1" test "$RC" -eq 1
# ---- requests to the device: commands, property set/get, messages down ----
# The device: a connection that prints the next message the platform sends it, then exits.
listen() {
  mosquitto_sub -h localhost -p "$MQTTS" --cafile data/tls/ca.pem -i "fire_n1_0_0_$HOUR" \
    -u fire_n1 -P "$PASS" -t '$oc/devices/fire_n1/sys/#' -q 1 -C 1 -v -W 20 >"$1" 2>&1 &
  pids+=($!)
}
online() {
  for _ in $(seq 50); do
    client device show fire_n1
    [[ $(field 'd["online"]') == "$1" ]] && return 0
    sleep 0.1
  done
  return 1
}
# answer FILE WHAT PAYLOAD: answers the request printed in FILE on sys/WHAT/response/.
answer() {
  for _ in $(seq 100); do [[ -s $1 ]] && break; sleep 0.1; done
  local rid
  rid=$(sed -n 's/.*request_id=\([0-9a-f]*\) .*/\1/p' "$1")
  [[ -n $rid ]] || return 1
  mosquitto_pub -h localhost -p "$MQTTS" --cafile data/tls/ca.pem -i "fire_n1_0_0_$HOUR" \
    -u fire_n1 -P "$PASS" -t "\$oc/devices/fire_n1/sys/$2/response/request_id=$rid" -q 1 -m "$3"
}
# Runs the client in the background into FILE.json / FILE.err; `finish FILE` waits for it.
background() {
  local name=$1
  shift
  "$SERVER" "$@" --url "https://127.0.0.1:$HTTP" --data "$W/data" >"$name.json" 2>"$name.err" &
  BG_PID=$!
}
finish() {
  set +e
  wait "$BG_PID"
  RC=$?
  set -e
  cp "$1.json" out.json
}

listen cmd.sub
check "a listening device is online" online True
background cmd device command fire_n1 --service DeviceStatus --name Beep --paras '{"on":true}' --timeout 10
check "device command reaches the device with its paras" \
  bash -c "for _ in \$(seq 100); do grep -q '\"on\":true' cmd.sub && exit 0; sleep 0.1; done; exit 1"
answer cmd.sub commands '{"result_code":0,"response_name":"BeepDone","paras":{"beeped":1}}'
finish cmd
check "device command: exit 0, succeeded, the device's answer printed" \
  bash -c "[[ $RC -eq 0 ]] && [[ $(field 'd["status"]') == succeeded ]] && [[ $(field 'd["response"]["paras"]["beeped"]') == 1 ]]"
check "the device is offline once it left" online False
client device command fire_n1 --service DeviceStatus --name Beep
check "device command to an offline device: exit 1 at once, device_offline" \
  bash -c "[[ $RC -eq 1 ]] && grep -q device_offline err.txt && [[ $(field 'd["status"]') == device_offline ]]"
client device set-properties fire_n1 --service DeviceStatus --properties '{"radioValue":"loud"}'
check "device set-properties with a wrong type: exit 1, 400" \
  bash -c "[[ $RC -eq 1 ]] && grep -q '400.*radioValue must be int' err.txt"
client device set-properties fire_n1 --service DeviceStatus --properties 'not json'
check "device set-properties with bad JSON: exit 2" test "$RC" -eq 2

listen set.sub
online True
background set device set-properties fire_n1 --service DeviceStatus --properties '{"radioValue":4}' --timeout 10
answer set.sub properties/set '{"result_code":0,"result_desc":"done"}'
finish set
check "device set-properties: exit 0, the device's answer" \
  bash -c "[[ $RC -eq 0 ]] && [[ $(field 'd["response"]["result_desc"]') == done ]] && grep -q '\"radioValue\":4' set.sub"

online False
listen get.sub
online True
background get device get-properties fire_n1 --service DeviceStatus --timeout 10
answer get.sub properties/get '{"services":[{"service_id":"DeviceStatus","properties":{"radioValue":5}}]}'
finish get
check "device get-properties: exit 0, succeeded" \
  bash -c "[[ $RC -eq 0 ]] && [[ $(field 'd["status"]') == succeeded ]]"
client device properties fire_n1
check "the answer to get-properties is stored as the device's properties" \
  test "$(field 'd["DeviceStatus"]["radioValue"]')" = 5

online False
listen msg.sub
online True
client device message fire_n1 "hello device" --name greeting
check "device message: exit 0, pending or delivered" \
  bash -c "[[ $RC -eq 0 ]] && [[ $(field 'd["kind"]') == message ]]"
check "the message reaches the device on messages/down" \
  bash -c "for _ in \$(seq 100); do grep -q 'messages/down.*hello device' msg.sub && exit 0; sleep 0.1; done; exit 1"
delivered() {
  for _ in $(seq 50); do
    client device messages fire_n1
    [[ $(field 'd["items"][0]["status"]') == delivered ]] && return 0
    sleep 0.1
  done
  return 1
}
check "device messages: the message is delivered (acknowledged by the broker)" delivered
client device commands fire_n1
check "device commands: both commands, latest first" \
  bash -c "[[ $(field 'd["total"]') == 2 ]] && [[ $(field 'd["items"][0]["status"]') == device_offline ]]"
client device requests fire_n1 --kind properties_get
check "device requests --kind: the property get" test "$(field 'd["total"]')" = 1
client device request fire_n1 "$(field 'd["items"][0]["request_id"]')"
check "device request: one request and its answer" test "$(field 'd["status"]')" = succeeded

client device disable fire_n1
check "device disable: enabled false" test "$(field 'd["enabled"]')" = False
check "a disabled device is refused by the broker" refused "$PASS"

# ---- deletions, secret rotation, scoped tokens ----
client device create fire cli1 --secret cli-secret-11
client device add-group fire_cli1 g9
client device remove-group fire_cli1 g9
check "device remove-group: out of the group" test "$RC:$(field "d['groups']")" = "0:[]"
client device rotate-secret fire_cli1 --secret cli-secret-22
check "device rotate-secret: prints the new secret" bash -c "[[ $RC -eq 0 ]] && grep -q cli-secret-22 out.json"
client device delete fire_cli1
check "device delete: exit 0" test "$RC" -eq 0
client device show fire_cli1
check "a deleted device is gone (404)" bash -c "[[ $RC -eq 1 ]] && grep -q 404 err.txt"
client token create ci-reader --scope read --expires-in 600
check "token create: prints the token once" test "$RC:$(field "d['token'][:4]")" = "0:ota_"
field "d['token']" >reader.token
READER_ID=$(field "d['id']")
client token list
check "token list: names it, never the token" \
  bash -c "grep -q ci-reader out.json && ! grep -q $(cat reader.token) out.json"
client product list --token-file reader.token
check "a read token reads" test "$RC" -eq 0
client product create --id ro --name "no" --token-file reader.token
check "a read token cannot change (403)" bash -c "[[ $RC -eq 1 ]] && grep -q 403 err.txt"
client token revoke "$READER_ID"
client product list --token-file reader.token
check "a revoked token is refused (401)" bash -c "[[ $RC -eq 1 ]] && grep -q 401 err.txt"
"$SERVER" token --data data ci-admin >admin2.token
client token list --token-file admin2.token
check "ota-server token NAME still makes an admin token" test "$RC" -eq 0

# ---- client errors ----
set +e
"$SERVER" product list --url "https://127.0.0.1:$HTTP" --data "$W/nowhere" >/dev/null 2>err.txt
RC=$?
set -e
check "no token file: exit 3, says where it looked" bash -c "[[ $RC -eq 3 ]] && grep -q 'nowhere/admin.token' err.txt"
client product show nope
check "unknown product: exit 1, 404" bash -c "[[ $RC -eq 1 ]] && grep -q 404 err.txt"

# ---- TLS files from the configuration ----
"$SERVER" broker-config --data data2 --plugin "$PLUGIN" --tls-cert data/tls/server.pem \
  --tls-key data/tls/server.key --tls-ca data/tls/ca.pem >conf2 2>&1 || true
check "given TLS files are used, none are made" \
  bash -c "grep -q 'certfile $W/data/tls/server.pem' conf2 && [[ ! -e data2/tls ]]"
set +e
"$SERVER" broker-config --data data2 --plugin "$PLUGIN" --tls-cert data/tls/server.pem >/dev/null 2>err.txt
RC=$?
set -e
check "--tls-cert without --tls-key and --tls-ca: exit 1, says so" \
  bash -c "[[ $RC -eq 1 ]] && grep -q 'go together' err.txt"

# ---- broker-config defaults ----
"$SERVER" broker-config --data data --plugin "$PLUGIN" >conf3
check "broker-config defaults: MQTTS on 8883 (TLS 1.2 allowed) and plain MQTT on 1883" \
  bash -c "grep -q '^listener 8883 ' conf3 && grep -q '^listener 1883 ' conf3 && grep -q '^tls_version tlsv1.2$' conf3"

# ---- audit log ----
client audit --limit 3
check "audit --limit 3: three rows" test "$(field 'len(d["items"])')" = 3
client audit --limit 1000
check "audit: latest first; the device disable is there by route template" \
  test "$(field 'all(a["seq"] > b["seq"] for a, b in zip(d["items"], d["items"][1:])) and any(x["method"] + " " + x["route"] + " " + x["object_ids"].get("device_id", "") + " " + str(x["status"]) == "PATCH /api/v1/devices/{device_id} fire_n1 200" for x in d["items"])')" = True
check "audit: the refused software upload is there (422)" \
  test "$(field 'any(x["status"] == 422 and x["route"] == "/api/v1/products/{product_id}/packages" for x in d["items"])')" = True
check "audit: every API row names a token fingerprint and the caller's address" \
  test "$(field 'all((x["actor"].startswith("token:") and x["remote_addr"] == "127.0.0.1") or x["actor"] == "cli" for x in d["items"])')" = True
check "audit: no device secret in it (created or rotated)" bash -c "! grep -q device-secret-1 out.json && ! grep -q cli-secret out.json"
"$SERVER" token --data data audit-test >/dev/null
client audit --limit 1 --since "$(date +%s -d '1 minute ago')"
check "audit: token creation on the command line is recorded (actor cli)" \
  test "$(field 'd["items"][0]["route"] + " " + d["items"][0]["actor"]')" = "ota-server token cli"

# ---- users (the web console's accounts) ----
signin() {  # signin USER PASSWORD: prints the HTTP status of POST /api/v1/session
  python3 - "$1" "$2" "$W/data/tls/ca.pem" "$HTTP" <<'PY'
import json, ssl, sys, urllib.error, urllib.request
user, password, ca, port = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(f"https://127.0.0.1:{port}/api/v1/session", method="POST",
                             data=json.dumps({"username": user, "password": password}).encode(),
                             headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, context=ctx).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
"$SERVER" user create ada --data data >ada.pw
check "user create: prints one password, >= 20 URL-safe characters" \
  bash -c "[[ \$(wc -l <ada.pw) -eq 1 ]] && grep -Eq '^[A-Za-z0-9_-]{20,}$' ada.pw"
"$SERVER" user list --data data >users.json
check "user list: ada is an admin (the default role); no password or hash" \
  bash -c "python3 -c \"import json; u=json.load(open('users.json')); assert [(x['username'], x['role']) for x in u] == [('ada', 'admin')]\" && ! grep -q -- \"\$(cat ada.pw)\" users.json && ! grep -q argon2 users.json"
check "the created user signs in over HTTPS" test "$(signin ada "$(cat ada.pw)")" = 200
check "a wrong password: 401" test "$(signin ada wrong-password-123)" = 401
set +e
"$SERVER" user delete ada --data data 2>err.txt
RC=$?
set -e
check "user delete: the last admin is refused (exit 1, says why)" \
  bash -c "[[ $RC -eq 1 ]] && grep -q 'last enabled admin' err.txt"
"$SERVER" user create bo --role viewer --data data >bo.pw
"$SERVER" user reset-password ada --data data >ada2.pw
check "user reset-password: a new password; the old one fails" \
  test "$(cmp -s ada.pw ada2.pw; echo $?):$(signin ada "$(cat ada.pw)")" = "1:401"
check "the reset password signs in" test "$(signin ada "$(cat ada2.pw)")" = 200
"$SERVER" user delete bo --data data
"$SERVER" user list --data data >users.json
check "user delete: bo is gone" bash -c "! grep -q '\"bo\"' users.json"
client audit --limit 20
check "audit: user create on the command line is recorded (actor cli), without the password" \
  bash -c "python3 -c \"import json; d=json.load(open('out.json')); assert any(x['route'] == 'ota-server user create' and x['actor'] == 'cli' for x in d['items'])\" && ! grep -q -- \"\$(cat ada.pw)\" out.json"

# ---- stop ----
kill -TERM "$SERVE_PID"
set +e
wait "$SERVE_PID"
RC=$?
set -e
check "SIGTERM stops serve cleanly (exit 0)" test "$RC" -eq 0
check "the broker log never holds the device secret" bash -c "! grep -q device-secret-1 mosquitto.log"

echo "1..$total"
if ((failed > 0)); then
  echo "# $failed of $total checks failed"
  exit 1
fi
echo "# all $total checks passed"

#include "ota/server/schema.hpp"

namespace ota::server {

const std::vector<std::string>& Migrations() {
  // Append only: a released migration never changes.
  static const std::vector<std::string> kMigrations = {
      R"sql(
CREATE TABLE products (
  product_id   TEXT PRIMARY KEY NOT NULL,
  name         TEXT NOT NULL,
  manufacturer TEXT NOT NULL DEFAULT '',
  protocol     TEXT NOT NULL DEFAULT 'MQTT',
  model        TEXT NOT NULL,              -- JSON: services and their typed properties
  created_at   INTEGER NOT NULL);
CREATE TABLE product_keys (
  key_id        TEXT PRIMARY KEY NOT NULL,  -- hex SHA-256 of the public point
  product_id    TEXT NOT NULL REFERENCES products ON DELETE CASCADE,
  public_pem    TEXT NOT NULL,
  may_downgrade INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL);
CREATE TABLE devices (
  device_id  TEXT PRIMARY KEY NOT NULL,
  product_id TEXT NOT NULL REFERENCES products,
  node_id    TEXT NOT NULL,
  enabled    INTEGER NOT NULL DEFAULT 1,
  online     INTEGER NOT NULL DEFAULT 0,
  last_seen  INTEGER,
  fw_version TEXT,
  sw_version TEXT,
  created_at INTEGER NOT NULL);
CREATE INDEX devices_by_product ON devices (product_id);
CREATE TABLE device_groups (
  group_name TEXT NOT NULL,
  device_id  TEXT NOT NULL REFERENCES devices ON DELETE CASCADE,
  PRIMARY KEY (group_name, device_id));
CREATE TABLE properties (
  device_id   TEXT NOT NULL REFERENCES devices ON DELETE CASCADE,
  service_id  TEXT NOT NULL,
  name        TEXT NOT NULL,
  value       TEXT NOT NULL,               -- JSON value
  event_time  TEXT,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, service_id, name));
CREATE TABLE packages (
  package_id     INTEGER PRIMARY KEY,
  product_id     TEXT NOT NULL REFERENCES products,
  sha256         TEXT NOT NULL UNIQUE,     -- of the whole file: the blob's name, IoTDA "sign"
  size           INTEGER NOT NULL,
  kind           TEXT NOT NULL,            -- full | diff
  version        TEXT NOT NULL,
  source_version TEXT,
  key_id         TEXT NOT NULL,
  file_name      TEXT NOT NULL,
  description    TEXT NOT NULL DEFAULT '',
  created_at     INTEGER NOT NULL);
CREATE TABLE api_tokens (
  token_sha256 TEXT PRIMARY KEY NOT NULL,  -- tokens are stored hashed
  name         TEXT NOT NULL,
  created_at   INTEGER NOT NULL);
CREATE TABLE counters (
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL);
)sql",
      R"sql(
CREATE TABLE tasks (
  task_id        INTEGER PRIMARY KEY,
  product_id     TEXT NOT NULL REFERENCES products,
  name           TEXT NOT NULL,
  target_version TEXT NOT NULL,
  package_id     INTEGER REFERENCES packages,  -- NULL: diff or full chosen per device
  stopped        INTEGER NOT NULL DEFAULT 0,
  start_at       INTEGER NOT NULL,
  deadline       INTEGER NOT NULL,
  retry_count    INTEGER NOT NULL,
  retry_interval INTEGER NOT NULL,             -- seconds
  created_at     INTEGER NOT NULL);
CREATE TABLE task_devices (
  task_id     INTEGER NOT NULL REFERENCES tasks ON DELETE CASCADE,
  device_id   TEXT NOT NULL REFERENCES devices,
  status      TEXT NOT NULL,                   -- Waiting Processing Success Fail FailWaitRetry Stopped
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_at     INTEGER NOT NULL DEFAULT 0,      -- when the engine acts on this device next
  package_id  INTEGER,
  progress    INTEGER NOT NULL DEFAULT 0,
  result_code INTEGER,
  description TEXT NOT NULL DEFAULT '',
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (task_id, device_id));
CREATE INDEX task_devices_by_device ON task_devices (device_id);
)sql",
      R"sql(
-- Staged rollouts, commands that are never lost, presence from the broker (docs/server.md).
ALTER TABLE tasks ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN rate_per_minute INTEGER NOT NULL DEFAULT 0;  -- 0: no limit
ALTER TABLE tasks ADD COLUMN resend_interval INTEGER NOT NULL DEFAULT 60; -- seconds
ALTER TABLE tasks ADD COLUMN finished_at INTEGER;
CREATE TABLE task_waves (
  task_id           INTEGER NOT NULL REFERENCES tasks ON DELETE CASCADE,
  wave              INTEGER NOT NULL,            -- 0, 1, ...: in this order
  name              TEXT NOT NULL,
  failure_threshold INTEGER NOT NULL DEFAULT 100, -- percent of the wave; over it the task pauses
  threshold_waived  INTEGER NOT NULL DEFAULT 0,   -- resumed after the threshold tripped
  PRIMARY KEY (task_id, wave));
INSERT INTO task_waves (task_id, wave, name) SELECT task_id, 0, 'all' FROM tasks;
ALTER TABLE task_devices ADD COLUMN wave INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_devices ADD COLUMN reported_version TEXT;        -- seen while Waiting
ALTER TABLE task_devices ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;     -- last firmware_upgrade
ALTER TABLE task_devices ADD COLUMN activity_at INTEGER NOT NULL DEFAULT 0; -- last device report
ALTER TABLE task_devices ADD COLUMN commands INTEGER NOT NULL DEFAULT 0;    -- firmware_upgrades sent
ALTER TABLE task_devices ADD COLUMN resend_due INTEGER NOT NULL DEFAULT 0;  -- re-send at next_at
-- Rows upgrading before this migration: their command counts as sent at their last change
-- (no re-send burst at the first tick).
UPDATE task_devices SET sent_at = updated_at, activity_at = updated_at WHERE status = 'Processing';
-- A device is in at most one open upgrade: older overlaps are superseded by the newest task.
UPDATE task_devices SET status = 'Stopped', description = 'superseded by a newer task',
 updated_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE status IN ('Waiting', 'Processing', 'FailWaitRetry') AND EXISTS (
   SELECT 1 FROM task_devices n WHERE n.device_id = task_devices.device_id
     AND n.task_id > task_devices.task_id AND n.status IN ('Waiting', 'Processing', 'FailWaitRetry'));
CREATE UNIQUE INDEX task_devices_one_open ON task_devices (device_id)
 WHERE status IN ('Waiting', 'Processing', 'FailWaitRetry');
CREATE INDEX task_devices_due ON task_devices (task_id, wave, next_at)
 WHERE status IN ('Waiting', 'Processing', 'FailWaitRetry');
CREATE INDEX task_devices_by_status ON task_devices (task_id, wave, status);
CREATE INDEX task_devices_sent ON task_devices (task_id, sent_at);
-- Messages a committed state change implies, published after the commit and deleted when the
-- broker acknowledged them (QoS 1): a crash between the two re-sends, never loses.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: acknowledgements find their row
  topic      TEXT NOT NULL,
  payload    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  task_id    INTEGER,                            -- what it is for: dropped when that ends
  device_id  TEXT);
CREATE INDEX outbox_by_task ON outbox (task_id, device_id);
-- Presence reported by the broker plugin (docs/spec/broker-auth.md, "Presence events").
ALTER TABLE devices ADD COLUMN presence_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX devices_by_group ON device_groups (device_id);
)sql",
      R"sql(
-- What Huawei's device SDKs send besides OTA (docs/server.md, "Huawei SDK services").
ALTER TABLE devices ADD COLUMN sdk_info TEXT;  -- JSON: the last $sdk_info report
CREATE TABLE device_logs (                      -- $log lines, the newest 100 per device
  log_id      INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id   TEXT NOT NULL REFERENCES devices ON DELETE CASCADE,
  type        TEXT NOT NULL,
  content     TEXT NOT NULL,
  device_time TEXT NOT NULL,                    -- the device's timestamp, as sent
  received_at INTEGER NOT NULL);
CREATE INDEX device_logs_by_device ON device_logs (device_id, log_id);
CREATE TABLE shadow_versions (                  -- one more per report naming the service
  device_id  TEXT NOT NULL REFERENCES devices ON DELETE CASCADE,
  service_id TEXT NOT NULL,
  version    INTEGER NOT NULL,
  PRIMARY KEY (device_id, service_id));
INSERT INTO shadow_versions SELECT DISTINCT device_id, service_id, 1 FROM properties;
-- Property times are kept in one form (yyyyMMddTHHmmssZ); earlier rows stored what came.
UPDATE properties SET event_time = strftime('%Y%m%dT%H%M%SZ', received_at, 'unixepoch')
 WHERE event_time IS NULL OR length(event_time) != 16 OR substr(event_time, 9, 1) != 'T';
)sql",
      R"sql(
-- Gateways and sub-devices, software (SOTA) tasks and packages (docs/server.md).
ALTER TABLE devices ADD COLUMN gateway_id TEXT REFERENCES devices;  -- NULL: not a sub-device
CREATE INDEX devices_by_gateway ON devices (gateway_id) WHERE gateway_id IS NOT NULL;
ALTER TABLE tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'firmware';      -- firmware | software
ALTER TABLE packages ADD COLUMN category TEXT NOT NULL DEFAULT 'firmware';  -- firmware | software
)sql",
      R"sql(
-- Requests to devices: commands, property set/get, messages down (docs/server.md, "Requests
-- to devices"); each with its answer, or why there is none.
CREATE TABLE device_requests (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of creation: lists are latest first
  request_id  TEXT NOT NULL UNIQUE,               -- ours, random: answers name it
  device_id   TEXT NOT NULL REFERENCES devices ON DELETE CASCADE,
  kind        TEXT NOT NULL,     -- command | properties_set | properties_get | message
  request     TEXT NOT NULL,     -- JSON: the payload sent
  status      TEXT NOT NULL,     -- pending succeeded timeout late device_offline not_sent
                                 -- delivered expired
  response    TEXT,              -- JSON: the device's answer
  created_at  INTEGER NOT NULL,
  deadline    INTEGER NOT NULL,  -- an answer after it is late
  answered_at INTEGER,
  outbox_id   INTEGER);          -- messages: the outbox row until the broker acknowledged it
CREATE INDEX device_requests_by_device ON device_requests (device_id, kind, seq);
CREATE INDEX device_requests_pending ON device_requests (deadline) WHERE status = 'pending';
CREATE INDEX device_requests_by_outbox ON device_requests (outbox_id) WHERE outbox_id IS NOT NULL;
)sql",
      R"sql(
-- The audit log (docs/server.md, "Audit log"): operator actions, accepted or refused; the
-- newest 100000 rows are kept.
CREATE TABLE audit_log (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- order: lists are latest first
  at          INTEGER NOT NULL,                   -- epoch seconds
  actor       TEXT NOT NULL,     -- token:<12 hex of the token's SHA-256> | anonymous | cli
  method      TEXT NOT NULL,
  route       TEXT NOT NULL,     -- template: /api/v1/tasks/{task_id}/pause
  object_ids  TEXT NOT NULL,     -- JSON: {"task_id": "7"}, and what a 2xx created
  summary     TEXT NOT NULL,     -- JSON: the request, secrets removed
  remote_addr TEXT NOT NULL,
  status      INTEGER NOT NULL);
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_by_time ON audit_log (at);
)sql",
      R"sql(
-- Operator API tokens with an id, a scope and an expiry (docs/server.md, "Operator tokens");
-- tokens made before are admin tokens that never expire.
CREATE TABLE api_tokens_new (
  token_id     INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a revoked id stays revoked
  token_sha256 TEXT NOT NULL UNIQUE,              -- tokens are stored hashed
  name         TEXT NOT NULL,
  scope        TEXT NOT NULL DEFAULT 'admin',     -- read | write | admin
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,                           -- NULL: never
  last_used_at INTEGER);
INSERT INTO api_tokens_new (token_sha256, name, scope, created_at)
 SELECT token_sha256, name, 'admin', created_at FROM api_tokens ORDER BY created_at;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
)sql",
      R"sql(
-- The web console (docs/server.md, "Console"): device search by version, fleet overview by
-- version, and what changed since a live view last looked (devices seen, task rows moved).
CREATE INDEX devices_by_fw_version ON devices (fw_version, device_id);
CREATE INDEX devices_by_last_seen ON devices (last_seen);
CREATE INDEX task_devices_by_update ON task_devices (updated_at);
)sql",
      R"sql(
-- Operator user accounts and their sign-in sessions (docs/server.md, "Users, roles and
-- sessions").
CREATE TABLE users (
  user_id       INTEGER PRIMARY KEY AUTOINCREMENT,
  username      TEXT NOT NULL UNIQUE,   -- 1-64 of [A-Za-z0-9._@-]
  role          TEXT NOT NULL,          -- admin | operator | viewer
  password_hash TEXT NOT NULL,          -- libsodium crypto_pwhash_str: $argon2id$...
  created_at    INTEGER NOT NULL,
  disabled      INTEGER NOT NULL DEFAULT 0,
  last_login_at INTEGER);
CREATE TABLE user_sessions (
  session_sha256 TEXT PRIMARY KEY,      -- SHA-256 (hex) of the cookie's session ID
  user_id        INTEGER NOT NULL REFERENCES users ON DELETE CASCADE,
  created_at     INTEGER NOT NULL,      -- absolute lifetime from here
  last_seen_at   INTEGER NOT NULL);     -- idle timeout from here (written once a minute)
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
)sql",
      R"sql(
-- Download tokens name the device's generation (docs/server.md, "Downloads"): a new one
-- (the counter device_generation) when a device is created and when its secret is rotated, so
-- a token of a deleted device never works for a re-created one of the same ID. Devices made
-- before keep generation 0, as do the tokens issued to them before (they carry none).
ALTER TABLE devices ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
)sql",
  };
  return kMigrations;
}

}  // namespace ota::server

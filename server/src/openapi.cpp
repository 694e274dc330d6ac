#include "ota/server/http_api.hpp"

namespace ota::server {

// Kept next to the routes in http_api.cpp; the API test checks that every route is listed.
const char* OpenApiDocument() {
  return R"json({
  "openapi": "3.0.3",
  "info": {"title": "ota-server API", "version": "1"},
  "servers": [{"url": "/api/v1"}],
  "components": {
    "securitySchemes": {"apiToken": {"type": "http", "scheme": "bearer"},
                        "downloadToken": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
      "Product": {"type": "object", "properties": {
        "product_id": {"type": "string"}, "name": {"type": "string"},
        "manufacturer": {"type": "string"}, "protocol": {"type": "string", "enum": ["MQTT"]},
        "model": {"type": "object", "description": "{\"services\":[{\"service_id\",\"properties\":[{\"name\",\"type\":\"int|decimal|string|bool\"}]}]}"},
        "keys": {"type": "array", "items": {"type": "object", "properties": {
          "key_id": {"type": "string"}, "may_downgrade": {"type": "boolean"}}}}}},
      "Device": {"type": "object", "properties": {
        "device_id": {"type": "string"}, "product_id": {"type": "string"},
        "node_id": {"type": "string"}, "enabled": {"type": "boolean"},
        "online": {"type": "boolean"}, "last_seen": {"type": "integer"},
        "fw_version": {"type": "string"}, "sw_version": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "sdk_info": {"type": "object", "nullable": true, "description": "only in GET /devices/{device_id}: the last $sdk_info report of a Huawei SDK (device_sdk_version, sw_version, fw_version, device_ip)"},
        "gateway_id": {"type": "string", "nullable": true, "description": "a sub-device's gateway (it has no secret and never logs in)"},
        "secret": {"type": "string", "description": "only in the answer to POST /devices, never for a sub-device"}}},
      "Package": {"type": "object", "properties": {
        "package_id": {"type": "integer"}, "product_id": {"type": "string"},
        "sha256": {"type": "string"}, "size": {"type": "integer"},
        "kind": {"type": "string", "enum": ["full", "diff"]}, "version": {"type": "string"},
        "source_version": {"type": "string", "nullable": true}, "key_id": {"type": "string"},
        "file_name": {"type": "string"}, "description": {"type": "string"},
        "category": {"type": "string", "enum": ["firmware", "software"]}}},
      "DeviceRequest": {"type": "object", "properties": {
        "request_id": {"type": "string"}, "command_id": {"type": "string", "description": "commands"},
        "message_id": {"type": "string", "description": "messages"}, "device_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["command", "properties_set", "properties_get", "message"]},
        "status": {"type": "string", "enum": ["pending", "succeeded", "timeout", "late", "device_offline", "not_sent", "delivered", "expired"]},
        "request": {"type": "object", "description": "the payload sent, without object_device_id"},
        "response": {"type": "object", "nullable": true, "description": "the device's answer"},
        "created_at": {"type": "integer"}, "deadline": {"type": "integer"},
        "answered_at": {"type": "integer", "nullable": true}}},
      "DownloadGrant": {"type": "object", "properties": {
        "version": {"type": "string"}, "url": {"type": "string"},
        "access_token": {"type": "string"}, "expires": {"type": "integer"},
        "file_size": {"type": "integer"}, "file_name": {"type": "string"},
        "sign": {"type": "string"}}}
    }
  },
  "security": [{"apiToken": []}],
  "x-scopes": {"description": "Operator tokens carry a scope: read (GET only), write (read and every change), admin (write and /tokens). A missing, unknown, expired or revoked token: 401; a scope too small: 403"},
  "paths": {
    "/products": {
      "get": {"summary": "List products", "responses": {"200": {"description": "Products"}}},
      "post": {"summary": "Create a product", "responses": {"201": {"description": "Created"}, "400": {"description": "Invalid"}, "409": {"description": "Exists"}}}},
    "/products/{product_id}": {
      "get": {"summary": "One product", "responses": {"200": {"description": "Product"}, "404": {"description": "Unknown"}}}},
    "/products/{product_id}/keys": {
      "post": {"summary": "Register a P-256 public key (PEM) that may sign the product's packages", "responses": {"201": {"description": "Registered"}, "400": {"description": "Not a P-256 key"}, "409": {"description": "Already registered"}}}},
    "/products/{product_id}/keys/{key_id}": {
      "delete": {"summary": "The key no longer signs the product's packages (stored packages stay)", "responses": {"200": {"description": "Product", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Product"}}}}, "404": {"description": "Unknown product or key"}}}},
    "/products/{product_id}/packages": {
      "post": {"summary": "Upload a signed package (application/octet-stream body; ?file_name=). With ?category=software&version=V&signature=HEX: a software (SOTA) package, any file, with a detached DER ECDSA-SHA256 signature by a product key", "responses": {"201": {"description": "Stored"}, "400": {"description": "Bad category, version or signature parameter"}, "409": {"description": "Duplicate"}, "422": {"description": "Not a package, unsigned, or not signed by a key of the product"}}}},
    "/devices": {
      "get": {"summary": "List devices (?product_id=, ?group=)", "responses": {"200": {"description": "Devices"}}},
      "post": {"summary": "Register a device ({product_id, node_id, device_id?, secret?, gateway_id?}); the answer carries its secret, once; with gateway_id a sub-device (no secret)", "responses": {"201": {"description": "Created"}, "400": {"description": "Invalid (a secret for a sub-device, a gateway that is a sub-device)"}, "409": {"description": "Exists"}}}},
    "/devices/{device_id}": {
      "get": {"summary": "One device", "responses": {"200": {"description": "Device"}, "404": {"description": "Unknown"}}},
      "patch": {"summary": "Enable or disable ({\"enabled\": bool})", "responses": {"200": {"description": "Device"}}},
      "delete": {"summary": "Delete a device: its broker credential goes at once (its next login is refused), its download tokens stop working; its groups, properties, logs, requests and rows of ended tasks go with it", "responses": {"200": {"description": "Deleted", "content": {"application/json": {"schema": {"type": "object", "properties": {"deleted": {"type": "object", "properties": {"device_id": {"type": "string"}}}}}}}}, "404": {"description": "Unknown"}, "409": {"description": "In an open task, or a gateway with sub-devices", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/devices/{device_id}/sub-devices": {
      "get": {"summary": "A gateway's sub-devices", "responses": {"200": {"description": "Devices"}, "404": {"description": "Unknown"}}},
      "post": {"summary": "Register a sub-device of this gateway ({product_id, node_id, device_id?}); it has no secret and never logs in", "responses": {"201": {"description": "Device"}, "400": {"description": "Invalid"}, "409": {"description": "Exists"}}}},
    "/devices/{device_id}/groups": {
      "post": {"summary": "Add to a group ({\"group\": name})", "responses": {"200": {"description": "Device"}}}},
    "/devices/{device_id}/secret": {
      "post": {"summary": "Rotate the device secret: the broker accepts only the new one from then on (connected sessions stay until they log in again)", "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"secret": {"type": "string", "description": "8-128 characters; default: generated"}}}}}}, "responses": {"200": {"description": "The new secret, shown once", "content": {"application/json": {"schema": {"type": "object", "properties": {"device_id": {"type": "string"}, "secret": {"type": "string"}}}}}}, "400": {"description": "A sub-device (no secret), or a secret outside 8-128 characters"}, "404": {"description": "Unknown"}}}},
    "/devices/{device_id}/groups/{group}": {
      "delete": {"summary": "Remove the device from a group", "responses": {"200": {"description": "Device", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Device"}}}}, "404": {"description": "Unknown device, or not in the group"}}}},
    "/devices/{device_id}/logs": {
      "get": {"summary": "The device's newest $log lines (at most 100), oldest first: [{type, content, timestamp (the device's), received_at}]", "responses": {"200": {"description": "Log lines"}, "404": {"description": "Unknown"}}}},
    "/devices/{device_id}/properties": {
      "get": {"summary": "Latest reported properties by service", "responses": {"200": {"description": "Properties"}}},
      "put": {"summary": "Set properties on the device and wait for its answer ({services: [{service_id, properties: {name: value}}], timeout_s 1..30 (default 20)}); checked against the product model before anything is sent (sys/properties/set)", "responses": {"200": {"description": "DeviceRequest: succeeded, timeout or device_offline"}, "400": {"description": "Not in the model, wrong type"}, "404": {"description": "Unknown device"}, "429": {"description": "Too many requests waiting"}, "503": {"description": "No broker connection"}}}},
    "/devices/{device_id}/properties/get": {
      "post": {"summary": "Ask the device for its properties now and wait ({service_id?, timeout_s}); the answer is also stored as a property report (sys/properties/get)", "responses": {"200": {"description": "DeviceRequest"}, "400": {"description": "Service not in the model"}, "404": {"description": "Unknown device"}}}},
    "/devices/{device_id}/commands": {
      "post": {"summary": "Send a command and wait for the device's answer ({service_id, command_name, paras?: {}, timeout_s 1..30 (default 20)}); when the product model declares commands, only those (and their typed paras) are allowed (sys/commands)", "responses": {"200": {"description": "DeviceRequest with command_id: succeeded (response = the device's answer), timeout, or device_offline at once"}, "400": {"description": "Invalid or not in the model"}, "404": {"description": "Unknown device"}, "429": {"description": "Too many requests waiting"}, "503": {"description": "No broker connection"}}},
      "get": {"summary": "Commands sent to the device and their results, latest first (?limit=1..500 (50), ?offset=)", "responses": {"200": {"description": "{total, limit, offset, items: [DeviceRequest]}"}}}},
    "/devices/{device_id}/messages": {
      "post": {"summary": "Send a message down ({content, name?}); asynchronous: stored and queued, status pending, then delivered once the broker acknowledged it (expired if it never did within 10 min); device_offline when the device is not connected (sys/messages/down)", "responses": {"202": {"description": "DeviceRequest with message_id"}, "400": {"description": "No content"}, "413": {"description": "Over 64 KB"}}},
      "get": {"summary": "Messages sent down and their status, latest first (?limit=, ?offset=)", "responses": {"200": {"description": "{total, limit, offset, items: [DeviceRequest]}"}}}},
    "/devices/{device_id}/requests": {
      "get": {"summary": "Every request sent to the device, latest first (?kind=command|properties_set|properties_get|message, ?limit=, ?offset=)", "responses": {"200": {"description": "{total, limit, offset, items: [DeviceRequest]}"}}}},
    "/devices/{device_id}/requests/{request_id}": {
      "get": {"summary": "One request and its result", "responses": {"200": {"description": "DeviceRequest"}, "404": {"description": "Unknown"}}}},
    "/packages": {
      "get": {"summary": "List packages (?product_id=)", "responses": {"200": {"description": "Packages"}}}},
    "/packages/{package_id}": {
      "get": {"summary": "One package", "responses": {"200": {"description": "Package"}, "404": {"description": "Unknown"}}},
      "delete": {"summary": "Delete a package: the row, then its file; ended tasks that named it keep package_id null", "responses": {"200": {"description": "Deleted", "content": {"application/json": {"schema": {"type": "object", "properties": {"deleted": {"type": "object", "properties": {"package_id": {"type": "integer"}}}}}}}}, "404": {"description": "Unknown"}, "409": {"description": "Used by an open task", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/packages/{package_id}/download-tokens": {
      "post": {"summary": "Grant a device a download ({\"device_id\", \"expires\": seconds})", "responses": {"201": {"description": "DownloadGrant"}}}},
    "/tasks": {
      "get": {"summary": "List upgrade tasks with their status, state, waves and per-state device counts (no device lists)", "responses": {"200": {"description": "Tasks"}}},
      "post": {"summary": "Create an upgrade task ({kind: firmware (default) | software, product_id, target_version | package_id, devices[], groups[], whole_product, start_at, deadline, retry_count 0..5, retry_interval s, resend_interval s (>= 5, default 60), supersede, rollout: {waves: [{name, group | percent | devices[], failure_threshold_percent}], failure_threshold_percent, rate_per_minute}}); answers the task without its device list", "responses": {"201": {"description": "Task"}, "400": {"description": "Invalid, no targets, or no package for the version"}, "409": {"description": "A target is in another open task (set supersede)"}}}},
    "/tasks/{task_id}": {
      "get": {"summary": "One task: status, state (scheduled|running|paused|finished|cancelled), pause_reason, waves (size, counts, state pending|active|done), counts, and every device's state (Waiting, Processing, Success, Fail, FailWaitRetry, Stopped) unless ?devices=false", "responses": {"200": {"description": "Task"}, "404": {"description": "Unknown"}}}},
    "/tasks/{task_id}/stop": {
      "post": {"summary": "Cancel a task: devices not yet finished become Stopped, their download tokens stop working", "responses": {"200": {"description": "Task"}, "409": {"description": "Already ended or cancelled"}}}},
    "/tasks/{task_id}/cancel": {
      "post": {"summary": "The same as stop", "responses": {"200": {"description": "Task"}, "409": {"description": "Already ended or cancelled"}}}},
    "/tasks/{task_id}/pause": {
      "post": {"summary": "Pause ({reason?}): no new firmware_upgrade commands; devices already upgrading finish", "responses": {"200": {"description": "Task"}, "409": {"description": "Ended"}}}},
    "/tasks/{task_id}/resume": {
      "post": {"summary": "Resume a paused task; the failure threshold of the waves up to the current one no longer applies", "responses": {"200": {"description": "Task"}, "409": {"description": "Ended"}}}},
    "/audit": {
      "get": {"summary": "The audit log, latest first: operator actions that change something, accepted or refused (?limit=1..1000 (100), ?offset=, ?actor=token:HEX12|anonymous|cli, ?since=epoch seconds); the newest 100000 rows are kept", "responses": {"200": {"description": "{total, limit, offset, items: [{seq, at, actor, method, route, object_ids, summary, remote_addr, status}]}"}, "400": {"description": "Bad limit, offset or since"}}}},
    "/tokens": {
      "get": {"summary": "Operator tokens (admin scope); never the token itself", "responses": {"200": {"description": "Tokens", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "scope": {"type": "string", "enum": ["read", "write", "admin"]}, "created": {"type": "integer"}, "expires": {"type": "integer", "nullable": true}, "last_used": {"type": "integer", "nullable": true, "description": "to the minute"}}}}}}}, "403": {"description": "Scope too small"}}},
      "post": {"summary": "Create an operator token (admin scope): read = GET only; write = read and changes; admin = write and tokens. The token is in the answer once; only its SHA-256 is stored", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "scope"], "properties": {"name": {"type": "string", "description": "1-100 characters"}, "scope": {"type": "string", "enum": ["read", "write", "admin"]}, "expires_in_s": {"type": "integer", "nullable": true, "description": "1..315360000; 0 or absent: never"}}}}}}, "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": {"allOf": [{"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "scope": {"type": "string", "enum": ["read", "write", "admin"]}, "created": {"type": "integer"}, "expires": {"type": "integer", "nullable": true}, "last_used": {"type": "integer", "nullable": true, "description": "to the minute"}}}, {"type": "object", "properties": {"token": {"type": "string"}}}]}}}}, "400": {"description": "Invalid"}, "403": {"description": "Scope too small"}}}},
    "/tokens/{token_id}": {
      "delete": {"summary": "Revoke a token at once (admin scope)", "responses": {"200": {"description": "Revoked", "content": {"application/json": {"schema": {"type": "object", "properties": {"revoked": {"type": "object", "properties": {"id": {"type": "integer"}}}}}}}}, "403": {"description": "Scope too small"}, "404": {"description": "Unknown"}}}},
    "/openapi.json": {
      "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3"}}}},
    "/metrics": {
      "servers": [{"url": "/"}],
      "get": {"summary": "Prometheus metrics (text exposition format 0.0.4; docs/server.md, Metrics); the operator token unless serve --metrics-public", "responses": {"200": {"description": "text/plain; version=0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}, "401": {"description": "Missing or unknown token"}}}}
  },
  "x-broker-auth": {"description": "For brokers that authenticate over HTTP (EMQX, VerneMQ); operator token; answers {\"result\": \"allow\"|\"deny\"}",
    "POST /broker/v1/auth": {"clientid": "string", "username": "string", "password": "string"},
    "POST /broker/v1/acl": {"username": "string", "topic": "string", "action": "publish|subscribe"}},
  "x-download": {"path": "/download/devices/{device_id}/packages/{package_id}", "listener": "the download port (serve --download-port), not the API's", "security": "downloadToken",
    "responses": {"200": "whole file (Content-Disposition: attachment; filename=...)", "206": "Range answered (Content-Range)", "401": "missing, invalid or expired token", "403": "token for another package or another device, or revoked (task cancelled, upgrade over, device disabled)", "416": "unsatisfiable range"}}
})json";
}

}  // namespace ota::server

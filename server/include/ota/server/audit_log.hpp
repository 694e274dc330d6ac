// The audit log (docs/server.md, "Audit log"): one row per operator action that changes
// something, accepted or refused, in the database. Who (a fingerprint of the caller's token,
// never the token), what (method, route template, ids from the path, a summary of the request
// with secrets removed), when, from where, and the HTTP status. The newest kAuditKeep rows are
// kept.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "ota/server/database.hpp"

namespace ota::server {

inline constexpr int64_t kAuditKeep = 100000;

struct AuditEntry {
  int64_t at = 0;      // epoch seconds
  std::string actor;   // AuditActor
  std::string method;  // POST, PUT, PATCH, DELETE, or "CLI" for the command line
  std::string route;   // template, e.g. /api/v1/tasks/{task_id}/pause
  nlohmann::json object_ids = nlohmann::json::object();  // {"task_id": "7"}
  nlohmann::json summary = nlohmann::json::object();     // AuditSummary
  std::string remote_addr;
  int status = 0;
};

// Who made a request, from its bearer token: "token:" and the first 12 hex digits of the
// token's SHA-256, or "anonymous" without one. The one place that names the actor (scoped
// tokens and accounts name it by their id instead).
std::string AuditActor(const std::string& bearer_token);

// A compact, secret-free picture of a request: its JSON body (values under names that look
// secret replaced by "[redacted]", long strings and arrays cut) or only its size when it is
// not JSON, and its query parameters the same way.
nlohmann::json AuditSummary(const std::string& body,
                            const std::multimap<std::string, std::string>& query);

// The template's {names} paired with the path's segments in their place.
nlohmann::json AuditObjectIds(const std::string& route, const std::string& path);

// Appends a row (in the caller's transaction, if any) and drops rows beyond `keep`.
void RecordAudit(Database& db, const AuditEntry& entry, int64_t keep = kAuditKeep);

// Rows latest first: {total, limit, offset, items: [...]}; `actor` empty and `since` 0 for all.
nlohmann::json ListAudit(Database& db, int64_t limit, int64_t offset, const std::string& actor,
                         int64_t since);

}  // namespace ota::server

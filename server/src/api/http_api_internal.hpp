// What the operator API's route files share (http_api.cpp defines it): the guard every handler
// runs in (token, scope, platform lock, audit), JSON answers, and the parsing of shared bodies.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>

#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace ota::server {

using ApiHandler = std::function<void(const httplib::Request&, httplib::Response&)>;

// As every /api/v1 handler runs (http_api.cpp, Guard): 401/403, the platform lock, ApiError
// to its status, audited writes.
httplib::Server::Handler ApiGuard(Platform& p, ApiHandler fn);
// Whether the credential `req` came with (its bearer token, else its session cookie) still
// allows it, asked again later: for what outlives its request (an event stream) and must end
// once its token is revoked, its session ends or its user is disabled or deleted. The check
// takes the platform lock; a session's idle timeout runs on (LookupSession without touch).
std::function<bool()> CallerStillAllowed(Platform& p, const httplib::Request& req);
// Who an authorized request comes from, as a key: "token:ID" or "user:NAME" (every session of
// a user is the same caller). Under the platform lock (inside ApiGuard).
std::string ApiCallerKey(Platform& p, const httplib::Request& req);
void ApiReply(httplib::Response& res, int status, const nlohmann::json& body);
nlohmann::json DeviceJson(const Device& d);
// An integer query parameter, or `fallback` when absent; 400 when not an integer.
int64_t ApiQueryNumber(const httplib::Request& req, const char* key, int64_t fallback);
// The body of POST /api/v1/tasks; 400 for a bad one.
TaskSpec TaskSpecOf(const httplib::Request& req);

}  // namespace ota::server

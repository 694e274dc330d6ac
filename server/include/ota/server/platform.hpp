// One ota-server instance: its data directory, database, registry, packages, download tokens,
// outbox and TLS files. The HTTP API, the MQTT side and the ticker write through one
// connection, one transaction at a time (`lock`), never holding it across network I/O;
// device downloads read through per-thread read-only connections (`ReadDb`) and never wait
// for it.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ota/broker/secret_box.hpp"
#include "ota/server/accounts.hpp"
#include "ota/server/change_feed.hpp"
#include "ota/server/database.hpp"
#include "ota/server/download_tokens.hpp"
#include "ota/server/metrics.hpp"
#include "ota/server/outbox.hpp"
#include "ota/server/package_store.hpp"
#include "ota/server/registry.hpp"
#include "ota/server/tls_files.hpp"

namespace ota::server {

// Who calls the operator API: the token's id, name and scope (read < write < admin, and broker
// beside them), or for a user's session (token_id 0) the username and its role's scope.
struct ApiCaller {
  int64_t token_id = 0;
  std::string name;
  std::string scope;
  std::string user;  // a signed-in user's name; empty for a token
  // read: GET only; write: read and changes; admin: write, tokens, users, signing keys and the
  // broker's questions; broker: the broker's questions (POST /broker/v1/*) only.
  bool Allows(const std::string& needed) const;
};

// Whether `s` names a scope.
bool IsApiScope(const std::string& s);

class Platform {
 public:
  // Creates what is missing in `data_dir`: database, keys, TLS files, the first API token
  // (written to data_dir/admin.token, mode 0600).
  // `tls`: certificate, key and CA from the configuration; null to use (and on first start
  // make) those in data_dir/tls, naming also `tls_names` (EnsureTlsFiles).
  explicit Platform(const std::filesystem::path& data_dir, const TlsFiles* tls = nullptr,
                    const std::vector<std::string>& tls_names = {});

  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path database_path() const { return data_dir_ / "ota.db"; }
  std::filesystem::path secret_key_path() const { return data_dir_ / "secret.key"; }
  // The password of the platform's broker identity (made on first start, mode 0600).
  std::filesystem::path platform_password_path() const { return data_dir_ / "platform.pw"; }
  const TlsFiles& tls() const { return tls_; }

  std::mutex& lock() { return lock_; }
  Database& db() { return *db_; }
  Registry& registry() { return *registry_; }
  PackageStore& packages() { return *packages_; }
  const DownloadTokens& download_tokens() const { return *tokens_; }
  Outbox& outbox() { return *outbox_; }
  // In-memory counters and histograms (docs/server.md, "Metrics").
  Metrics& metrics() { return *metrics_; }
  // Moves on after each committed change a live view shows (change_feed.hpp).
  ChangeFeed& changes() { return changes_; }
  // This thread's read-only connection to the database (WAL: readers never block the writer).
  Database& ReadDb();

  // Operator user accounts and sessions (docs/server.md, "Users, roles and sessions").
  Accounts& accounts() { return *accounts_; }

  // A Mosquitto configuration for this platform's devices: the auth plugin on this data
  // directory, an MQTTS listener with this platform's certificate, and optionally plain MQTT.
  std::string MosquittoConfig(const std::filesystem::path& plugin, int mqtts_port, int mqtt_port,
                              const std::string& bind) const;

  // API tokens are stored hashed (SHA-256 of 192 random bits); the plain token is returned
  // once. `scope`: read, write, admin or broker; `expires_at` 0: never.
  std::string CreateApiToken(const std::string& name, const std::string& scope = "admin",
                             int64_t expires_at = 0, int64_t* token_id = nullptr);
  // The one lookup of an operator token (the API's guard, /metrics, the audit log's actor):
  // nullopt for a missing, unknown, revoked or expired token. Records the time of use.
  std::optional<ApiCaller> LookupApiToken(const std::string& token);
  bool CheckApiToken(const std::string& token) { return LookupApiToken(token).has_value(); }
  // Every token: id, name, scope, created, expires, last_used (never the token or its hash).
  nlohmann::json ListApiTokens();
  // False for an unknown id. The token is refused from the commit on.
  bool RevokeApiToken(int64_t token_id);

 private:
  std::filesystem::path data_dir_;
  TlsFiles tls_;
  std::mutex lock_;
  std::unique_ptr<Metrics> metrics_;  // before db_: it observes db_'s transactions
  std::unique_ptr<Database> db_;
  std::unique_ptr<broker::SecretBox> box_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<PackageStore> packages_;
  std::unique_ptr<DownloadTokens> tokens_;
  std::unique_ptr<Outbox> outbox_;
  ChangeFeed changes_;
  std::unique_ptr<Accounts> accounts_;
};

// The largest MQTT payload the platform takes from a device; the broker configuration refuses
// larger packets before they reach anyone (max_packet_size).
inline constexpr size_t kMaxDevicePayload = 64 * 1024;

}  // namespace ota::server

// The broker's view of the device registry (docs/spec/broker-auth.md): one SQLite table the
// platform writes and the broker plugin reads, by primary key, in the broker's thread. A
// lookup is a local indexed read (microseconds), so a connect storm never waits on a network.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/secret_box.hpp"

namespace ota::broker {

inline constexpr int kCredentialSchemaVersion = 1;

// The writer's side on a connection the caller owns (the platform writes credentials in the
// same transaction as its device rows).
bool CreateCredentialSchema(sqlite3* db, std::string* error);
bool PutCredential(sqlite3* db, const SecretBox& box, std::string_view device_id,
                   std::string_view secret, bool enabled, std::string* error);
bool SetCredentialEnabled(sqlite3* db, std::string_view device_id, bool enabled,
                          std::string* error);
bool DeleteCredential(sqlite3* db, std::string_view device_id, std::string* error);

class CredentialStore {
 public:
  // Read-only (the plugin) or read-write (the platform, which creates the table). nullopt with
  // `error` set when the file cannot be opened or has another schema version.
  static std::unique_ptr<CredentialStore> Open(const std::filesystem::path& path, bool writable,
                                               const SecretBox& box, std::string* error);
  ~CredentialStore();
  CredentialStore(const CredentialStore&) = delete;
  CredentialStore& operator=(const CredentialStore&) = delete;

  // nullopt for an unknown device, or one whose sealed secret does not open under our key.
  std::optional<DeviceCredential> Lookup(std::string_view device_id);
  bool Put(std::string_view device_id, std::string_view secret, bool enabled, std::string* error);
  bool SetEnabled(std::string_view device_id, bool enabled, std::string* error);

 private:
  CredentialStore(sqlite3* db, const SecretBox& box) : db_(db), box_(box) {}
  sqlite3* db_;
  SecretBox box_;
  sqlite3_stmt* lookup_ = nullptr;
};

}  // namespace ota::broker

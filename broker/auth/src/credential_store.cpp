#include "ota/broker/credential_store.hpp"

#include <ctime>

namespace ota::broker {

namespace {

bool Exec(sqlite3* db, const char* sql, std::string* error) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    *error = msg != nullptr ? msg : "sqlite error";
    sqlite3_free(msg);
    return false;
  }
  return true;
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS broker_credentials ("
    "  device_id TEXT PRIMARY KEY NOT NULL,"
    "  secret_sealed BLOB NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS broker_contract (version INTEGER NOT NULL);"
    "INSERT INTO broker_contract (version) SELECT 1 WHERE NOT EXISTS "
    "  (SELECT 1 FROM broker_contract);";

}  // namespace

std::unique_ptr<CredentialStore> CredentialStore::Open(const std::filesystem::path& path,
                                                       bool writable, const SecretBox& box,
                                                       std::string* error) {
  sqlite3* db = nullptr;
  const int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    *error = path.string() + ": " + (db != nullptr ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return nullptr;
  }
  std::unique_ptr<CredentialStore> store(new CredentialStore(db, box));
  // A writer holds the lock briefly; the broker waits at most this long, then refuses.
  sqlite3_busy_timeout(db, 200);
  if (writable && (!Exec(db, "PRAGMA journal_mode=WAL;", error) || !Exec(db, kSchema, error))) {
    return nullptr;
  }
  sqlite3_stmt* version = nullptr;
  int found = -1;
  if (sqlite3_prepare_v2(db, "SELECT version FROM broker_contract", -1, &version, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(version) == SQLITE_ROW) {
    found = sqlite3_column_int(version, 0);
  }
  sqlite3_finalize(version);
  if (found != kCredentialSchemaVersion) {
    *error = path.string() + ": not a device registry of contract version " +
             std::to_string(kCredentialSchemaVersion) +
             (found < 0 ? std::string(" (no broker_contract table)")
                        : " (found " + std::to_string(found) + ")");
    return nullptr;
  }
  if (sqlite3_prepare_v2(
          db, "SELECT secret_sealed, enabled FROM broker_credentials WHERE device_id = ?", -1,
          &store->lookup_, nullptr) != SQLITE_OK) {
    *error = path.string() + ": " + sqlite3_errmsg(db);
    return nullptr;
  }
  return store;
}

CredentialStore::~CredentialStore() {
  sqlite3_finalize(lookup_);
  sqlite3_close(db_);
}

std::optional<DeviceCredential> CredentialStore::Lookup(std::string_view device_id) {
  sqlite3_reset(lookup_);
  sqlite3_bind_text(lookup_, 1, device_id.data(), static_cast<int>(device_id.size()),
                    SQLITE_TRANSIENT);
  std::optional<DeviceCredential> result;
  if (sqlite3_step(lookup_) == SQLITE_ROW) {
    const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(lookup_, 0));
    const int n = sqlite3_column_bytes(lookup_, 0);
    const std::vector<uint8_t> sealed(blob, blob + n);
    std::optional<std::string> secret = box_.Open(sealed);
    if (secret) result = DeviceCredential{std::move(*secret), sqlite3_column_int(lookup_, 1) != 0};
  }
  sqlite3_reset(lookup_);
  return result;
}

bool CredentialStore::Put(std::string_view device_id, std::string_view secret, bool enabled,
                          std::string* error) {
  return PutCredential(db_, box_, device_id, secret, enabled, error);
}

bool CredentialStore::SetEnabled(std::string_view device_id, bool enabled, std::string* error) {
  return SetCredentialEnabled(db_, device_id, enabled, error);
}

bool CreateCredentialSchema(sqlite3* db, std::string* error) {
  return Exec(db, kSchema, error);
}

bool PutCredential(sqlite3* db, const SecretBox& box, std::string_view device_id,
                   std::string_view secret, bool enabled, std::string* error) {
  if (!IsValidDeviceId(device_id)) {
    *error = "invalid device id";
    return false;
  }
  const std::vector<uint8_t> sealed = box.Seal(secret);
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "INSERT INTO broker_credentials (device_id, secret_sealed, enabled, updated_at) "
      "VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
      "secret_sealed = excluded.secret_sealed, enabled = excluded.enabled, "
      "updated_at = excluded.updated_at";
  bool ok = !sealed.empty() && sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK;
  if (ok) {
    sqlite3_bind_text(st, 1, device_id.data(), static_cast<int>(device_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, sealed.data(), static_cast<int>(sealed.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, enabled ? 1 : 0);
    sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(std::time(nullptr)));
    ok = sqlite3_step(st) == SQLITE_DONE;
  }
  if (!ok) *error = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return ok;
}

namespace {
bool UpdateOne(sqlite3* db, const char* sql, std::string_view device_id, int enabled,
               std::string* error) {
  sqlite3_stmt* st = nullptr;
  bool ok = sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK;
  if (ok) {
    int i = 1;
    if (enabled >= 0) {
      sqlite3_bind_int(st, i++, enabled);
      sqlite3_bind_int64(st, i++, static_cast<sqlite3_int64>(std::time(nullptr)));
    }
    sqlite3_bind_text(st, i, device_id.data(), static_cast<int>(device_id.size()),
                      SQLITE_TRANSIENT);
    ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
  }
  if (!ok) *error = "no device " + std::string(device_id);
  sqlite3_finalize(st);
  return ok;
}
}  // namespace

bool SetCredentialEnabled(sqlite3* db, std::string_view device_id, bool enabled,
                          std::string* error) {
  return UpdateOne(db,
                   "UPDATE broker_credentials SET enabled = ?, updated_at = ? WHERE device_id = ?",
                   device_id, enabled ? 1 : 0, error);
}

bool DeleteCredential(sqlite3* db, std::string_view device_id, std::string* error) {
  return UpdateOne(db, "DELETE FROM broker_credentials WHERE device_id = ?", device_id, -1, error);
}

}  // namespace ota::broker

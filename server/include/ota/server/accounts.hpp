// Operator user accounts, their roles and their sign-in sessions (docs/server.md, "Users, roles
// and sessions"). Passwords are stored as libsodium crypto_pwhash_str hashes (Argon2id);
// sessions by the SHA-256 of their random ID, with an idle timeout and an absolute lifetime.
// Failed sign-ins are throttled per username and per remote address, in memory.
//
// The database methods run on the platform's write connection: call them holding the
// platform lock (Platform::lock). The password hashing functions are static and take no lock:
// a sign-in verifies its password without holding it.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ota/server/database.hpp"

namespace ota::server {

struct UserRecord {
  int64_t user_id = 0;
  std::string username;
  std::string role;  // admin | operator | viewer
  bool disabled = false;
  int64_t created_at = 0;
  int64_t last_login_at = 0;      // 0: never
  std::string password_hash;      // never leaves this process (not in ToJson)
  nlohmann::json ToJson() const;  // {username, role, disabled, created_at, last_login_at}
};

struct SessionInfo {
  int64_t user_id = 0;
  std::string username;
  std::string role;
  std::string csrf_token;
  int64_t expires_at = 0;  // the earlier of idle and absolute expiry, as of now
  // {username, role, csrf_token, expires_at}
  nlohmann::json ToJson() const;
};

struct AccountsOptions {
  int64_t idle_seconds = 8 * 3600;       // a session unused this long ends
  int64_t absolute_seconds = 24 * 3600;  // a session ends this long after sign-in regardless
  int username_failures = 5;             // failed sign-ins per username ...
  int address_failures = 20;             // ... or per remote address ...
  int64_t window_seconds = 15 * 60;      // ... within this window: 429 until it passes
  // Usernames (and, apart, addresses) with failures remembered at most. Full of live ones (many
  // addresses guessing at once), a sign-in for a name or from an address not yet among them is
  // throttled until one leaves the window: memory stays bounded, and filling the table never
  // lifts the limit of a name (or address) it could not hold.
  size_t max_throttle_keys = 100000;
};

class Accounts {
 public:
  explicit Accounts(Database& db, AccountsOptions options = {});

  // Seconds since the epoch; std::time unless a test gives its own clock.
  int64_t Now() const { return clock_ ? clock_() : static_cast<int64_t>(std::time(nullptr)); }
  void set_clock(std::function<int64_t()> clock) { clock_ = std::move(clock); }
  const AccountsOptions& options() const { return options_; }

  // 1-64 characters of [A-Za-z0-9._@-].
  static bool ValidUsername(const std::string& name);
  // The operator-token scope of a role (viewer: read, operator: write, admin: admin), or "".
  static std::string RoleScope(const std::string& role);
  // >= 20 characters of the URL-safe base64 alphabet, from libsodium's randombytes.
  static std::string GeneratePassword();
  // crypto_pwhash_str (Argon2id, interactive limits: 64 MB each). At most two hash or verify at
  // once in this process; more wait their turn.
  static std::string HashPassword(const std::string& password);
  static bool VerifyPassword(const std::string& hash, const std::string& password);
  // The most that ever ran at once (tests).
  static int PeakConcurrentHashing();
  static bool NeedsRehash(const std::string& hash);
  // A hash of a random password made once: sign-ins for unknown users verify against it, so
  // they take as long as those for known ones.
  static const std::string& DummyHash();
  // Constant-time comparison of two secrets (false when the lengths differ).
  static bool SameSecret(const std::string& a, const std::string& b);

  // Users. ApiError 400 (bad name, role or password), 404 (unknown), 409 (exists, whatever the
  // case of its letters; the last enabled admin would be deleted, demoted or disabled).
  UserRecord CreateUser(const std::string& username, const std::string& role,
                        const std::string& password);
  std::vector<UserRecord> ListUsers();
  std::optional<UserRecord> FindUser(const std::string& username);
  UserRecord GetUser(const std::string& username);  // 404 when unknown
  // Disabling ends the user's sessions.
  UserRecord UpdateUser(const std::string& username, const std::optional<std::string>& role,
                        const std::optional<bool>& disabled);
  void DeleteUser(const std::string& username);  // and its sessions
  // Stores a new hash; ends the user's sessions but the one with ID `keep_session` (if any).
  void SetPasswordHash(int64_t user_id, const std::string& hash,
                       const std::string& keep_session = "");
  // The same password hashed again with today's parameters: sessions stay.
  void Rehash(int64_t user_id, const std::string& hash);
  // ApiError 400 unless a chosen password is 12 to 1024 characters; `what` names the field.
  static void CheckNewPassword(const std::string& password, const char* what);

  // Sign-in throttling. Before verifying a password: the seconds until `username` and
  // `address` may try again (> 0: answer 429), or 0, and then the attempt is counted as a
  // failure until SignInSucceeded takes it back (so parallel attempts cannot pass the limit).
  // An address counts by ThrottleAddress.
  int64_t BeginSignIn(const std::string& username, const std::string& address);
  void SignInSucceeded(const std::string& username, const std::string& address);
  // What an address counts as: an IPv6 address its /64 (a host is commonly given a whole /64,
  // and would otherwise have 2^64 addresses of 20 tries each), an IPv4-mapped one its IPv4
  // address; others as they are.
  static std::string ThrottleAddress(const std::string& address);
  // How many usernames and addresses the throttle remembers now.
  size_t ThrottleKeys();

  // Sessions. StartSession returns the new session ID (the cookie value, 32 random bytes in
  // base64url); only its SHA-256 is stored. Expired sessions of everyone are deleted here.
  std::string StartSession(int64_t user_id, SessionInfo* info);
  // nullopt for an unknown, ended or expired session (an expired one is deleted) or a
  // disabled user. Records the time of use (at most once a minute) when `touch`: a check that
  // is no use by the user (an open event stream looking again) leaves the idle timeout running.
  std::optional<SessionInfo> LookupSession(const std::string& session_id, bool touch = true);
  void EndSession(const std::string& session_id);
  // HMAC-SHA-256 of a fixed label keyed by the session ID, base64url: the same for the whole
  // session, nothing stored, and worthless without the cookie it comes from.
  static std::string CsrfToken(const std::string& session_id);

 private:
  void EndSessionsOf(int64_t user_id, const std::string& keep_session);
  int EnabledAdminsBut(int64_t user_id);
  // Failed sign-ins by username or by address: the times within the window, oldest first.
  struct Failures {
    std::map<std::string, std::vector<int64_t>> times;
    int64_t swept_at = -1;   // when expired keys were last dropped (at most once a second)
    int64_t full_until = 0;  // full of live keys: until then no new key is taken
  };
  void Prune(std::vector<int64_t>& times, int64_t now) const;
  // The seconds until `key` may try again, or 0 (and then its attempt can be counted).
  int64_t Wait(Failures& f, const std::string& key, int max, int64_t now);

  Database& db_;
  AccountsOptions options_;
  std::function<int64_t()> clock_;
  std::mutex throttle_lock_;
  Failures user_failures_, address_failures_;
};

}  // namespace ota::server

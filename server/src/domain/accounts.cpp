#include "ota/server/accounts.hpp"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "ota/server/registry.hpp"

namespace ota::server {

namespace {

constexpr size_t kSessionIdBytes = 32;
constexpr size_t kSessionIdChars = 43;  // their base64url, unpadded
constexpr size_t kPasswordBytes = 18;   // 24 characters of base64url
constexpr size_t kMinPassword = 12;
constexpr size_t kMaxPassword = 1024;
// last_seen_at is written at most this often per session: not one write per request.
constexpr int64_t kLastSeenResolution = 60;

// Argon2id runs (hashing or verifying a password) at once, at most: each takes 64 MB and a core
// for tens of milliseconds, and sign-ins need no token, so a burst of them must neither exhaust
// memory nor take every worker's CPU. The others wait their turn.
constexpr int kMaxHashing = 2;

class HashSlot {
 public:
  HashSlot() {
    std::unique_lock<std::mutex> lock(mutex_);
    free_.wait(lock, [] { return running_ < kMaxHashing; });
    peak_ = std::max(peak_, ++running_);
  }
  ~HashSlot() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
    }
    free_.notify_one();
  }
  HashSlot(const HashSlot&) = delete;
  HashSlot& operator=(const HashSlot&) = delete;
  static int Peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

 private:
  static inline std::mutex mutex_;
  static inline std::condition_variable free_;
  static inline int running_ = 0, peak_ = 0;
};

void InitSodium() {
  static const int ok = sodium_init();  // thread-safe, once
  if (ok < 0) throw std::runtime_error("libsodium: cannot initialize");
}

std::string Base64Url(const unsigned char* bytes, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

std::string RandomBase64Url(size_t bytes) {
  InitSodium();
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string out = Base64Url(raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return out;
}

// How a session ID is stored and looked up.
std::string SessionHash(const std::string& session_id) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(session_id.data()),
                     session_id.size());
  char hex[2 * sizeof(d) + 1];
  sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
  return hex;
}

// A session ID as StartSession makes them: 43 base64url characters.
bool PlausibleSessionId(const std::string& id) {
  return id.size() == kSessionIdChars && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

void CheckRole(const std::string& role) {
  if (Accounts::RoleScope(role).empty()) throw ApiError(400, "role: admin, operator or viewer");
}

}  // namespace

void Accounts::CheckNewPassword(const std::string& password, const char* what) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    throw ApiError(400, std::string(what) + ": " + std::to_string(kMinPassword) + " to " +
                            std::to_string(kMaxPassword) + " characters");
  }
}

namespace {

UserRecord UserFrom(Statement& st) {
  UserRecord u;
  u.user_id = st.Int(0);
  u.username = st.Text(1);
  u.role = st.Text(2);
  u.disabled = st.Int(3) != 0;
  u.created_at = st.Int(4);
  u.last_login_at = st.IsNull(5) ? 0 : st.Int(5);
  u.password_hash = st.Text(6);
  return u;
}

constexpr const char* kUserColumns =
    "SELECT user_id, username, role, disabled, created_at, last_login_at, password_hash FROM "
    "users ";

}  // namespace

nlohmann::json UserRecord::ToJson() const {
  return {{"username", username},
          {"role", role},
          {"disabled", disabled},
          {"created_at", created_at},
          {"last_login_at", last_login_at > 0 ? nlohmann::json(last_login_at) : nullptr}};
}

nlohmann::json SessionInfo::ToJson() const {
  return {{"username", username},
          {"role", role},
          {"csrf_token", csrf_token},
          {"expires_at", expires_at}};
}

Accounts::Accounts(Database& db, AccountsOptions options) : db_(db), options_(options) {
  InitSodium();
}

bool Accounts::ValidUsername(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
  });
}

std::string Accounts::RoleScope(const std::string& role) {
  if (role == "viewer") return "read";
  if (role == "operator") return "write";
  if (role == "admin") return "admin";
  return "";
}

std::string Accounts::GeneratePassword() {
  return RandomBase64Url(kPasswordBytes);
}

std::string Accounts::HashPassword(const std::string& password) {
  InitSodium();
  char hash[crypto_pwhash_STRBYTES];
  const HashSlot slot;
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("password hashing: out of memory");
  }
  return hash;
}

bool Accounts::VerifyPassword(const std::string& hash, const std::string& password) {
  InitSodium();
  const HashSlot slot;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

int Accounts::PeakConcurrentHashing() {
  return HashSlot::Peak();
}

bool Accounts::NeedsRehash(const std::string& hash) {
  return crypto_pwhash_str_needs_rehash(hash.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}

const std::string& Accounts::DummyHash() {
  static const std::string hash = HashPassword(GeneratePassword());  // thread-safe, once
  return hash;
}

bool Accounts::SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Accounts::CsrfToken(const std::string& session_id) {
  static const char kLabel[] = "ota-server csrf v1";
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(session_id.data()),
                              session_id.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(kLabel),
                                sizeof(kLabel) - 1);
  crypto_auth_hmacsha256_final(&st, mac);
  return Base64Url(mac, sizeof(mac));
}

UserRecord Accounts::CreateUser(const std::string& username, const std::string& role,
                                const std::string& password) {
  if (!ValidUsername(username)) {
    throw ApiError(400, "username: 1-64 characters of A-Z a-z 0-9 . _ @ -");
  }
  CheckRole(role);
  CheckNewPassword(password, "password");
  // Taken whatever its case: "Root" next to "root" would read as the same account. (In the
  // caller's BEGIN IMMEDIATE transaction, so another process cannot slip one in between.)
  Statement taken = db_.Prepare("SELECT username FROM users WHERE username = ? COLLATE NOCASE");
  if (taken.Bind(1, username).Step()) {
    throw ApiError(409, "user " + taken.Text(0) + " exists");
  }
  db_.Prepare("INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)")
      .Bind(1, username)
      .Bind(2, role)
      .Bind(3, HashPassword(password))
      .Bind(4, Now())
      .Run();
  return GetUser(username);
}

std::vector<UserRecord> Accounts::ListUsers() {
  Statement st = db_.Prepare(std::string(kUserColumns) + "ORDER BY username");
  std::vector<UserRecord> out;
  while (st.Step())
    out.push_back(UserFrom(st));
  return out;
}

std::optional<UserRecord> Accounts::FindUser(const std::string& username) {
  Statement st = db_.Prepare(std::string(kUserColumns) + "WHERE username = ?");
  st.Bind(1, username);
  if (!st.Step()) return std::nullopt;
  return UserFrom(st);
}

UserRecord Accounts::GetUser(const std::string& username) {
  std::optional<UserRecord> u = FindUser(username);
  if (!u) throw ApiError(404, "no user " + username);
  return *u;
}

int Accounts::EnabledAdminsBut(int64_t user_id) {
  Statement st = db_.Prepare(
      "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND user_id != ?");
  st.Bind(1, user_id);
  return st.Step() ? static_cast<int>(st.Int(0)) : 0;
}

UserRecord Accounts::UpdateUser(const std::string& username, const std::optional<std::string>& role,
                                const std::optional<bool>& disabled) {
  UserRecord u = GetUser(username);
  if (role) CheckRole(*role);
  const std::string new_role = role.value_or(u.role);
  const bool new_disabled = disabled.value_or(u.disabled);
  const bool was_enabled_admin = u.role == "admin" && !u.disabled;
  if (was_enabled_admin && (new_role != "admin" || new_disabled) &&
      EnabledAdminsBut(u.user_id) == 0) {
    throw ApiError(409, "user " + username +
                            " is the last enabled admin: make another admin first, then demote "
                            "or disable this one");
  }
  db_.Prepare("UPDATE users SET role = ?, disabled = ? WHERE user_id = ?")
      .Bind(1, new_role)
      .Bind(2, new_disabled)
      .Bind(3, u.user_id)
      .Run();
  if (new_disabled) EndSessionsOf(u.user_id, "");
  return GetUser(username);
}

void Accounts::DeleteUser(const std::string& username) {
  const UserRecord u = GetUser(username);
  if (u.role == "admin" && !u.disabled && EnabledAdminsBut(u.user_id) == 0) {
    throw ApiError(409, "user " + username +
                            " is the last enabled admin: make another admin first, then delete "
                            "this one");
  }
  EndSessionsOf(u.user_id, "");
  db_.Prepare("DELETE FROM users WHERE user_id = ?").Bind(1, u.user_id).Run();
}

void Accounts::SetPasswordHash(int64_t user_id, const std::string& hash,
                               const std::string& keep_session) {
  Rehash(user_id, hash);
  EndSessionsOf(user_id, keep_session);
}

void Accounts::Rehash(int64_t user_id, const std::string& hash) {
  db_.Prepare("UPDATE users SET password_hash = ? WHERE user_id = ?")
      .Bind(1, hash)
      .Bind(2, user_id)
      .Run();
}

void Accounts::EndSessionsOf(int64_t user_id, const std::string& keep_session) {
  db_.Prepare("DELETE FROM user_sessions WHERE user_id = ? AND session_sha256 != ?")
      .Bind(1, user_id)
      .Bind(2, keep_session.empty() ? std::string() : SessionHash(keep_session))
      .Run();
}

void Accounts::Prune(std::vector<int64_t>& times, int64_t now) const {
  const auto live = std::find_if(times.begin(), times.end(),
                                 [&](int64_t t) { return t + options_.window_seconds > now; });
  times.erase(times.begin(), live);
}

int64_t Accounts::Wait(Failures& f, const std::string& key, int max, int64_t now) {
  if (max <= 0) return 0;  // no limit: nothing remembered
  const auto it = f.times.find(key);
  if (it != f.times.end()) {
    Prune(it->second, now);
    const size_t n = it->second.size();
    if (n < static_cast<size_t>(max)) return 0;
    return it->second[n - max] + options_.window_seconds - now;
  }
  if (f.times.size() < options_.max_throttle_keys) return 0;
  if (f.swept_at != now) {  // drop the keys whose failures all left the window
    f.swept_at = now;
    f.full_until = 0;
    for (auto k = f.times.begin(); k != f.times.end();) {
      Prune(k->second, now);
      if (k->second.empty()) {
        k = f.times.erase(k);
        continue;
      }
      const int64_t leaves = k->second.back() + options_.window_seconds;
      f.full_until = f.full_until == 0 ? leaves : std::min(f.full_until, leaves);
      ++k;
    }
  }
  if (f.times.size() < options_.max_throttle_keys) return 0;
  return std::max<int64_t>(1, f.full_until - now);
}

std::string Accounts::ThrottleAddress(const std::string& address) {
  unsigned char a[16];
  if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), a) != 1) {
    return address;
  }
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN];
  if (std::memcmp(a, kMapped, sizeof(kMapped)) == 0) {
    return inet_ntop(AF_INET, a + 12, text, sizeof(text)) != nullptr ? text : address;
  }
  std::memset(a + 8, 0, 8);
  if (inet_ntop(AF_INET6, a, text, sizeof(text)) == nullptr) return address;
  return std::string(text) + "/64";
}

int64_t Accounts::BeginSignIn(const std::string& username, const std::string& raw_address) {
  const std::string address = ThrottleAddress(raw_address);
  const int64_t now = Now();
  std::lock_guard<std::mutex> guard(throttle_lock_);
  const int64_t wait = std::max(Wait(user_failures_, username, options_.username_failures, now),
                                Wait(address_failures_, address, options_.address_failures, now));
  if (wait > 0) return wait;  // nothing remembered of a refused attempt
  if (options_.username_failures > 0) user_failures_.times[username].push_back(now);
  if (options_.address_failures > 0) address_failures_.times[address].push_back(now);
  return 0;
}

void Accounts::SignInSucceeded(const std::string& username, const std::string& raw_address) {
  const std::string address = ThrottleAddress(raw_address);
  std::lock_guard<std::mutex> guard(throttle_lock_);
  user_failures_.times.erase(username);
  const auto it = address_failures_.times.find(address);
  if (it == address_failures_.times.end()) return;
  if (!it->second.empty()) it->second.pop_back();
  if (it->second.empty()) address_failures_.times.erase(it);
}

size_t Accounts::ThrottleKeys() {
  std::lock_guard<std::mutex> guard(throttle_lock_);
  return user_failures_.times.size() + address_failures_.times.size();
}

std::string Accounts::StartSession(int64_t user_id, SessionInfo* info) {
  const int64_t now = Now();
  db_.Prepare("DELETE FROM user_sessions WHERE last_seen_at <= ? OR created_at <= ?")
      .Bind(1, now - options_.idle_seconds)
      .Bind(2, now - options_.absolute_seconds)
      .Run();
  const std::string id = RandomBase64Url(kSessionIdBytes);
  db_.Prepare(
         "INSERT INTO user_sessions (session_sha256, user_id, created_at, last_seen_at) VALUES "
         "(?, ?, ?, ?)")
      .Bind(1, SessionHash(id))
      .Bind(2, user_id)
      .Bind(3, now)
      .Bind(4, now)
      .Run();
  db_.Prepare("UPDATE users SET last_login_at = ? WHERE user_id = ?")
      .Bind(1, now)
      .Bind(2, user_id)
      .Run();
  std::optional<SessionInfo> s = LookupSession(id);
  if (!s) throw std::runtime_error("the new session cannot be read back");
  if (info != nullptr) *info = *s;
  return id;
}

std::optional<SessionInfo> Accounts::LookupSession(const std::string& session_id, bool touch) {
  if (!PlausibleSessionId(session_id)) return std::nullopt;
  const int64_t now = Now();
  const std::string hash = SessionHash(session_id);
  Statement st = db_.Prepare(
      "SELECT s.user_id, s.created_at, s.last_seen_at, u.username, u.role, u.disabled FROM "
      "user_sessions s JOIN users u ON u.user_id = s.user_id WHERE s.session_sha256 = ?");
  st.Bind(1, hash);
  if (!st.Step()) return std::nullopt;
  const int64_t created = st.Int(1);
  int64_t last_seen = st.Int(2);
  SessionInfo s;
  s.user_id = st.Int(0);
  s.username = st.Text(3);
  s.role = st.Text(4);
  const bool disabled = st.Int(5) != 0;
  const auto expires = [&] {
    return std::min(last_seen + options_.idle_seconds, created + options_.absolute_seconds);
  };
  if (now >= expires()) {
    db_.Prepare("DELETE FROM user_sessions WHERE session_sha256 = ?").Bind(1, hash).Run();
    return std::nullopt;
  }
  if (disabled) return std::nullopt;
  if (touch && last_seen <= now - kLastSeenResolution) {
    last_seen = now;
    db_.Prepare("UPDATE user_sessions SET last_seen_at = ? WHERE session_sha256 = ?")
        .Bind(1, now)
        .Bind(2, hash)
        .Run();
  }
  s.expires_at = expires();
  s.csrf_token = CsrfToken(session_id);
  return s;
}

void Accounts::EndSession(const std::string& session_id) {
  db_.Prepare("DELETE FROM user_sessions WHERE session_sha256 = ?")
      .Bind(1, SessionHash(session_id))
      .Run();
}

}  // namespace ota::server

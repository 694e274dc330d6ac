#include "ota/server/platform.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <ctime>
#include <map>

#include "ota/server/hex.hpp"
#include "ota/server/schema.hpp"

namespace ota::server {

namespace {

std::string Sha256Hex(const std::string& s) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
  return ToHex(std::span<const uint8_t>(d, n));
}

// A one-line secret file only its owner can read; never replaces one.
void WriteSecretFile(const std::filesystem::path& path, const std::string& secret) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot create");
  const std::string line = secret + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) throw std::runtime_error(path.string() + ": cannot write");
}

}  // namespace

Platform::Platform(const std::filesystem::path& data_dir, const TlsFiles* tls,
                   const std::vector<std::string>& tls_names) {
  std::filesystem::create_directories(data_dir);
  // Absolute, so the paths it hands out (broker config, logs) hold from any directory.
  data_dir_ = std::filesystem::canonical(data_dir);
  if (tls != nullptr) {
    for (const auto& f : {tls->ca_cert, tls->server_cert, tls->server_key}) {
      if (!std::filesystem::exists(f)) throw std::runtime_error(f.string() + ": no such file");
    }
    tls_ = {std::filesystem::canonical(tls->ca_cert), std::filesystem::canonical(tls->server_cert),
            std::filesystem::canonical(tls->server_key)};
  } else {
    tls_ = EnsureTlsFiles(data_dir_ / "tls", tls_names);
  }
  std::string error;
  if (!std::filesystem::exists(secret_key_path()) &&
      !broker::SecretBox::CreateKeyFile(secret_key_path(), &error)) {
    throw std::runtime_error(error);
  }
  std::optional<broker::SecretBox> box = broker::SecretBox::FromKeyFile(secret_key_path(), &error);
  if (!box) throw std::runtime_error(error);
  box_ = std::make_unique<broker::SecretBox>(*box);
  metrics_ = std::make_unique<Metrics>();
  db_ = std::make_unique<Database>(database_path());
  db_->set_transaction_observer(
      [m = metrics_.get()](double seconds, bool committed) { m->Transaction(seconds, committed); });
  db_->Migrate(Migrations());
  registry_ = std::make_unique<Registry>(*db_, *box_);
  packages_ = std::make_unique<PackageStore>(*db_, *registry_, data_dir_ / "blobs");
  tokens_ = std::make_unique<DownloadTokens>(data_dir_ / "download.key");
  outbox_ = std::make_unique<Outbox>(*db_);
  accounts_ = std::make_unique<Accounts>(*db_);

  const std::filesystem::path admin = data_dir_ / "admin.token";
  if (!std::filesystem::exists(admin)) WriteSecretFile(admin, CreateApiToken("admin"));
  if (!std::filesystem::exists(platform_password_path())) {
    unsigned char raw[24];
    if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("no random bytes");
    WriteSecretFile(platform_password_path(), ToHex(raw));
  }
}

std::string Platform::MosquittoConfig(const std::filesystem::path& plugin, int mqtts_port,
                                      int mqtt_port, const std::string& bind) const {
  std::string c;
  c += "# Made by ota-server for the data directory " + data_dir_.string() + "\n";
  c += "per_listener_settings false\nallow_anonymous false\n";
  // The platform's one subscription carries every device's traffic: a burst must queue at the
  // broker, not be dropped (the default keeps 1000 messages per client).
  c += "max_queued_messages 100000\n";
  // A TLS handshake is several small records each way: without TCP_NODELAY each login stalls
  // ~40 ms on Nagle's algorithm and the client's delayed ACK.
  c += "set_tcp_nodelay true\n";
  // Device payloads over 64 KB are refused by the platform; the broker drops such packets
  // (and disconnects their sender) before they are copied anywhere. 1 KB of room for the topic.
  c += "max_packet_size " + std::to_string(kMaxDevicePayload + 1024) + "\n";
  // The platform's persistent session (QoS 1) survives a broker restart.
  std::filesystem::create_directories(data_dir_ / "broker");
  // Saved every minute as well as on a clean stop: a crashed broker loses at most that much.
  c += "persistence true\nautosave_interval 60\npersistence_location " +
       (data_dir_ / "broker").string() + "/\n";
  c += "plugin " + plugin.string() + "\n";
  c += "plugin_opt_registry " + database_path().string() + "\n";
  c += "plugin_opt_secret_key " + secret_key_path().string() + "\n";
  c += "plugin_opt_platform_password_file " + platform_password_path().string() + "\n";
  c += "listener " + std::to_string(mqtts_port) + " " + bind + "\n";
  c += "certfile " + tls_.server_cert.string() + "\n";
  c += "keyfile " + tls_.server_key.string() + "\n";
  c += "cafile " + tls_.ca_cert.string() + "\n";
  // The minimum (Mosquitto 2.0): Huawei's C and Python SDKs speak TLS 1.2 only.
  c += "tls_version tlsv1.2\n";
  if (mqtt_port > 0) c += "listener " + std::to_string(mqtt_port) + " " + bind + "\n";
  return c;
}

Database& Platform::ReadDb() {
  // One per thread and database (tests run several platforms in one process).
  thread_local std::map<std::string, std::unique_ptr<Database>> connections;
  std::unique_ptr<Database>& db = connections[database_path().string()];
  if (!db) db = std::make_unique<Database>(database_path(), true);
  return *db;
}

namespace {

int ScopeRank(const std::string& s) {
  return s == "read" ? 1 : s == "write" ? 2 : s == "admin" ? 3 : 0;
}

// last_used is written at most this often per token: not one write per request.
constexpr int64_t kLastUsedResolution = 60;

}  // namespace

bool IsApiScope(const std::string& s) {
  return ScopeRank(s) > 0 || s == "broker";
}

// "broker" is beside the ladder: it asks the broker's questions and nothing else (read would
// be an oracle for device secrets), and only it and admin may ask them.
bool ApiCaller::Allows(const std::string& needed) const {
  if (needed == "broker") return scope == "broker" || scope == "admin";
  return ScopeRank(scope) >= ScopeRank(needed) && ScopeRank(needed) > 0;
}

std::string Platform::CreateApiToken(const std::string& name, const std::string& scope,
                                     int64_t expires_at, int64_t* token_id) {
  if (!IsApiScope(scope)) throw std::invalid_argument("scope: read, write, admin or broker");
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("no random bytes");
  const std::string token = "ota_" + ToHex(raw);
  Statement st = db_->Prepare(
      "INSERT INTO api_tokens (token_sha256, name, scope, created_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?)");
  st.Bind(1, Sha256Hex(token)).Bind(2, name).Bind(3, scope);
  st.Bind(4, static_cast<int64_t>(std::time(nullptr)));
  if (expires_at > 0) {
    st.Bind(5, expires_at);
  } else {
    st.BindNull(5);
  }
  st.Run();
  if (token_id != nullptr) *token_id = db_->LastInsertId();
  return token;
}

std::optional<ApiCaller> Platform::LookupApiToken(const std::string& token) {
  if (token.empty() || token.size() > 256) return std::nullopt;
  const int64_t now = std::time(nullptr);
  // Looked up by hash: the comparison never touches the stored secret itself.
  Statement st = db_->Prepare(
      "SELECT token_id, name, scope, COALESCE(last_used_at, 0) FROM api_tokens "
      "WHERE token_sha256 = ? AND (expires_at IS NULL OR expires_at > ?)");
  st.Bind(1, Sha256Hex(token)).Bind(2, now);
  if (!st.Step()) return std::nullopt;
  ApiCaller caller{st.Int(0), st.Text(1), st.Text(2), ""};
  if (st.Int(3) <= now - kLastUsedResolution) {
    db_->Prepare("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?")
        .Bind(1, now)
        .Bind(2, caller.token_id)
        .Run();
  }
  return caller;
}

nlohmann::json Platform::ListApiTokens() {
  Statement st = db_->Prepare(
      "SELECT token_id, name, scope, created_at, expires_at, last_used_at FROM api_tokens "
      "ORDER BY token_id");
  nlohmann::json out = nlohmann::json::array();
  const auto time_or_null = [&st](int col) {
    return st.IsNull(col) ? nlohmann::json(nullptr) : nlohmann::json(st.Int(col));
  };
  while (st.Step()) {
    out.push_back({{"id", st.Int(0)},
                   {"name", st.Text(1)},
                   {"scope", st.Text(2)},
                   {"created", st.Int(3)},
                   {"expires", time_or_null(4)},
                   {"last_used", time_or_null(5)}});
  }
  return out;
}

bool Platform::RevokeApiToken(int64_t token_id) {
  return db_->Prepare("DELETE FROM api_tokens WHERE token_id = ?").Bind(1, token_id).Run() == 1;
}

}  // namespace ota::server

#include "ota/server/platform.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <ctime>

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

}  // namespace

Platform::Platform(const std::filesystem::path& data_dir) : data_dir_(data_dir) {
  std::filesystem::create_directories(data_dir_);
  tls_ = EnsureTlsFiles(data_dir_ / "tls");
  std::string error;
  if (!std::filesystem::exists(secret_key_path()) &&
      !broker::SecretBox::CreateKeyFile(secret_key_path(), &error)) {
    throw std::runtime_error(error);
  }
  std::optional<broker::SecretBox> box = broker::SecretBox::FromKeyFile(secret_key_path(), &error);
  if (!box) throw std::runtime_error(error);
  box_ = std::make_unique<broker::SecretBox>(*box);
  db_ = std::make_unique<Database>(database_path());
  db_->Migrate(Migrations());
  registry_ = std::make_unique<Registry>(*db_, *box_);
  packages_ = std::make_unique<PackageStore>(*db_, *registry_, data_dir_ / "blobs");
  tokens_ = std::make_unique<DownloadTokens>(data_dir_ / "download.key");

  const std::filesystem::path admin = data_dir_ / "admin.token";
  if (!std::filesystem::exists(admin)) {
    const std::string token = CreateApiToken("admin");
    const int fd = ::open(admin.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(admin.string() + ": cannot create");
    const std::string line = token + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw std::runtime_error(admin.string() + ": cannot write");
  }
}

std::string Platform::CreateApiToken(const std::string& name) {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("no random bytes");
  const std::string token = "ota_" + ToHex(raw);
  db_->Prepare("INSERT INTO api_tokens (token_sha256, name, created_at) VALUES (?, ?, ?)")
      .Bind(1, Sha256Hex(token))
      .Bind(2, name)
      .Bind(3, static_cast<int64_t>(std::time(nullptr)))
      .Run();
  return token;
}

bool Platform::CheckApiToken(const std::string& token) {
  if (token.empty()) return false;
  // Looked up by hash: the comparison never touches the stored secret itself.
  return db_->Prepare("SELECT 1 FROM api_tokens WHERE token_sha256 = ?")
      .Bind(1, Sha256Hex(token))
      .Step();
}

}  // namespace ota::server

#include "ota/broker/secret_box.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace ota::broker {

namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<SecretBox> SecretBox::FromKeyFile(const std::filesystem::path& path,
                                                std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  std::array<uint8_t, kKeySize> key{};
  if (line.size() != kKeySize * 2) {
    *error = path.string() + ": not a secret key (64 hex digits)";
    return std::nullopt;
  }
  for (size_t i = 0; i < kKeySize; ++i) {
    const int hi = HexValue(line[2 * i]);
    const int lo = HexValue(line[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      *error = path.string() + ": not a secret key (64 hex digits)";
      return std::nullopt;
    }
    key[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return SecretBox(key);
}

bool SecretBox::CreateKeyFile(const std::filesystem::path& path, std::string* error) {
  std::array<uint8_t, kKeySize> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    *error = "no random bytes for a key";
    return false;
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : key) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 15]);
  }
  hex.push_back('\n');
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = path.string() + ": " + std::strerror(errno);
    return false;
  }
  const bool ok =
      ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    *error = path.string() + ": write failed";
    ::unlink(path.c_str());
  }
  return ok;
}

std::vector<uint8_t> SecretBox::Seal(std::string_view plain) const {
  std::vector<uint8_t> out(1 + kNonce + plain.size() + kTag);
  out[0] = kVersion;
  if (RAND_bytes(&out[1], kNonce) != 1) return {};
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), &out[1]) != 1 ||
      EVP_EncryptUpdate(ctx.get(), &out[1 + kNonce], &len,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), &out[1 + kNonce + len], &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, &out[1 + kNonce + plain.size()]) !=
          1) {
    return {};
  }
  return out;
}

std::optional<std::string> SecretBox::Open(const std::vector<uint8_t>& sealed) const {
  if (sealed.size() < 1 + kNonce + kTag || sealed[0] != kVersion) return std::nullopt;
  const size_t n = sealed.size() - 1 - kNonce - kTag;
  std::string plain(n, '\0');
  std::vector<uint8_t> tag(sealed.end() - kTag, sealed.end());
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), &sealed[1]) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        &sealed[1 + kNonce], static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) !=
          1) {
    return std::nullopt;
  }
  return plain;
}

}  // namespace ota::broker

#include "ota/host/keys.hpp"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ota::host {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string ReadText(const std::filesystem::path& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path.string() + ": " + std::strerror(errno);
    return {};
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "EC P-256", "RSA 2048", ... for messages about the wrong kind of key.
std::string Describe(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1) {
      return std::string("EC ") + group;
    }
    return "EC";
  }
  const char* name = EVP_PKEY_get0_type_name(key);
  return std::string(name != nullptr ? name : "unknown") + " " +
         std::to_string(EVP_PKEY_get_bits(key));
}

bool IsP256(EVP_PKEY* key) {
  return Describe(key) == "EC prime256v1";
}

// Creates `path` exclusively (never replaces a file) with `mode`, and writes `pem` into it.
std::string WriteNewFile(const std::filesystem::path& path, const std::string& pem, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return path.string() + ": exists; ota keygen never overwrites a key";
    return path.string() + ": " + std::strerror(errno);
  }
  size_t done = 0;
  while (done < pem.size()) {
    const ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      return path.string() + ": " + why;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(path.c_str());
    return path.string() + ": " + std::strerror(errno);
  }
  return {};
}

// Never lets OpenSSL prompt on the terminal for a passphrase (it would when a public-key
// reader is handed an encrypted private key).
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return 0;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

std::string OpensslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

std::string GenerateKeyFiles(const std::filesystem::path& private_path,
                             const std::filesystem::path& public_path,
                             const std::string& password) {
  if (password.size() < kMinPasswordLength) {
    return "the password must be at least " + std::to_string(kMinPasswordLength) + " characters";
  }
  for (const auto& p : {private_path, public_path}) {
    if (!p.empty() && std::filesystem::exists(p)) {
      return p.string() + ": exists; ota keygen never overwrites a key";
    }
  }
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) return "key generation failed: " + OpensslError();

  Bio priv(BIO_new(BIO_s_mem()));
  if (!priv ||
      PEM_write_bio_PKCS8PrivateKey(priv.get(), key.get(), EVP_aes_256_cbc(), password.data(),
                                    static_cast<int>(password.size()), nullptr, nullptr) != 1) {
    return "cannot encode the private key: " + OpensslError();
  }
  std::string pub_pem;
  if (!public_path.empty()) {
    Bio pub(BIO_new(BIO_s_mem()));
    if (!pub || PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
      return "cannot encode the public key: " + OpensslError();
    }
    pub_pem = BioText(pub.get());
  }
  std::string error = WriteNewFile(private_path, BioText(priv.get()), 0600);
  if (!error.empty()) return error;
  if (!public_path.empty()) {
    error = WriteNewFile(public_path, pub_pem, 0644);
    if (!error.empty()) {
      std::filesystem::remove(private_path);  // no half-made key pair
      return error;
    }
  }
  return {};
}

bool IsEncryptedPrivateKey(const std::filesystem::path& path) {
  std::string error;
  const std::string text = ReadText(path, &error);
  return text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos ||
         text.find("Proc-Type: 4,ENCRYPTED") != std::string::npos;
}

PrivateKeyResult LoadPrivateKey(const std::filesystem::path& path, const std::string& password) {
  PrivateKeyResult result;
  const std::string text = ReadText(path, &result.error);
  if (!result.error.empty()) return result;
  if (text.find("PRIVATE KEY-----") == std::string::npos) {
    result.error = path.string() + ": not a PEM private key";
    return result;
  }
  const bool encrypted = IsEncryptedPrivateKey(path);
  if (encrypted && password.empty()) {
    result.error = path.string() + ": the key is encrypted and no password was given";
    return result;
  }
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  // The password is handed to OpenSSL as the callback's user data, never printed.
  result.key.reset(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(password.c_str())));
  if (!result.key) {
    ERR_clear_error();
    result.error =
        encrypted ? path.string() + ": wrong password" : path.string() + ": unreadable private key";
    return result;
  }
  if (!IsP256(result.key.get())) {
    result.error = path.string() + ": wrong key type " + Describe(result.key.get()) +
                   "; packages are signed with ECDSA P-256 (ota keygen)";
    result.key.reset();
  }
  return result;
}

PublicKeyResult LoadPublicKey(const std::filesystem::path& path) {
  PublicKeyResult result;
  const std::string text = ReadText(path, &result.error);
  if (!result.error.empty()) return result;
  return ParsePublicKeyPem(text, path.string());
}

PublicKeyResult ParsePublicKeyPem(const std::string& text, const std::string& name) {
  PublicKeyResult result;
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key && text.find("-----BEGIN PRIVATE KEY-----") != std::string::npos) {
    Bio again(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    key.reset(PEM_read_bio_PrivateKey(again.get(), nullptr, NoPassphrase, nullptr));
  }
  ERR_clear_error();
  if (!key) {
    result.error = name + ": not a PEM public key";
    return result;
  }
  if (!IsP256(key.get())) {
    result.error = name + ": wrong key type " + Describe(key.get()) +
                   "; packages are verified with ECDSA P-256";
    return result;
  }
  result.point = PublicPointOf(key.get());
  return result;
}

std::string PublicKeyPem(EVP_PKEY* key) {
  Bio pub(BIO_new(BIO_s_mem()));
  if (!pub || PEM_write_bio_PUBKEY(pub.get(), key) != 1) return {};
  return BioText(pub.get());
}

PublicPoint PublicPointOf(EVP_PKEY* key) {
  PublicPoint point{};
  size_t len = 0;
  // OpenSSL encodes EC public keys uncompressed by default: 0x04 || X || Y.
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(),
                                      point.size(), &len) != 1 ||
      len != point.size()) {
    point.fill(0);
  }
  return point;
}

KeyId KeyIdOf(const PublicPoint& point) {
  uint8_t raw[kPublicKeySize];
  std::memcpy(raw, point.data(), point.size());
  uint8_t id[kKeyIdSize];
  KeyId out{};
  if (ComputeKeyId(raw, id).ok()) std::memcpy(out.data(), id, out.size());
  return out;
}

std::vector<uint8_t> SignDigest(EVP_PKEY* key, const Sha256Digest digest) {
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1) {
    return {};
  }
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest, kSha256Size) != 1) return {};
  std::vector<uint8_t> der(len);
  if (EVP_PKEY_sign(ctx.get(), der.data(), &len, digest, kSha256Size) != 1) return {};
  der.resize(len);
  return der;
}

}  // namespace ota::host

// ECDSA P-256 keys for package signing (OpenSSL): generation, password-protected PEM files,
// the public point the loader builds in, and signatures in the package's DER form.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ota/package.hpp"
#include "ota/sha256.hpp"
#include "ota/signature.hpp"

namespace ota::host {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PublicPoint = std::array<uint8_t, kPublicKeySize>;
using KeyId = std::array<uint8_t, kKeyIdSize>;

// Each call either fills its value or says in `error` (one line) what is wrong.
struct PrivateKeyResult {
  Pkey key;
  std::string error;
};
struct PublicKeyResult {
  PublicPoint point{};
  std::string error;
};

inline constexpr size_t kMinPasswordLength = 4;

// Writes a new P-256 key, encrypted with `password` (PKCS#8, AES-256-CBC), mode 0600, and its
// public key if `public_path` is not empty. Refuses to overwrite either file. Returns the error.
std::string GenerateKeyFiles(const std::filesystem::path& private_path,
                             const std::filesystem::path& public_path, const std::string& password);

// Reads a private key PEM; an encrypted one needs `password`. Only ECDSA P-256 is accepted.
PrivateKeyResult LoadPrivateKey(const std::filesystem::path& path, const std::string& password);
// Whether the PEM file at `path` is an encrypted private key (so a password must be asked for).
bool IsEncryptedPrivateKey(const std::filesystem::path& path);

// Reads a public key PEM (or the public half of an unencrypted private key PEM).
PublicKeyResult LoadPublicKey(const std::filesystem::path& path);
// The same from PEM text; `name` says where it came from in error messages.
PublicKeyResult ParsePublicKeyPem(const std::string& pem, const std::string& name);

PublicPoint PublicPointOf(EVP_PKEY* key);
// The public half as a PEM SubjectPublicKeyInfo (what `ota keygen --pub` writes).
std::string PublicKeyPem(EVP_PKEY* key);
KeyId KeyIdOf(const PublicPoint& point);

// DER ECDSA signature of a SHA-256 digest; empty on failure.
std::vector<uint8_t> SignDigest(EVP_PKEY* key, const Sha256Digest digest);

// The description of the last OpenSSL error, for messages.
std::string OpensslError();

}  // namespace ota::host

#include "ota/server/tls_files.hpp"

#include <arpa/inet.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace ota::server {

namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;

void Fail(const std::string& what) {
  throw std::runtime_error("tls: " + what);
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) Fail("extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

bool IsIp(const std::string& name) {
  unsigned char addr[16];
  return inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

// A host name (labels of letters, digits and '-', an optional leading "*.") or an IP address;
// nothing else reaches the extension text below.
bool ValidName(const std::string& name) {
  if (IsIp(name)) return true;
  std::string rest = name.rfind("*.", 0) == 0 ? name.substr(2) : name;
  if (rest.empty() || rest.size() > 253 || rest.front() == '.' || rest.back() == '.') return false;
  if (rest.find("..") != std::string::npos) return false;
  for (const char c : rest) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool Names(X509* cert, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    const int r =
        IsIp(n) ? X509_check_ip_asc(cert, n.c_str(), 0)
                : X509_check_host(cert, n.c_str(), n.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr);
    if (r != 1) return false;
  }
  return true;
}

Cert MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
              const std::vector<std::string>& names = {}) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7F;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 825);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  if (ca) {
    AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature");
    AddExt(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    std::string san;
    for (const std::string& n : names)
      san += (san.empty() ? "" : ",") + std::string(IsIp(n) ? "IP:" : "DNS:") + n;
    AddExt(cert.get(), iss, NID_subject_alt_name, san.c_str());
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    Fail("sign");
  }
  return cert;
}

// Written whole under another name, then renamed: a crash leaves the old file or the new one.
void WritePem(const std::filesystem::path& path, X509* cert, EVP_PKEY* key) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  const mode_t old = ::umask(key != nullptr ? 077 : 022);
  FILE* f = std::fopen(tmp.c_str(), "w");
  ::umask(old);
  if (f == nullptr) Fail("cannot write " + path.string());
  const bool ok = key != nullptr
                      ? PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1
                      : PEM_write_X509(f, cert) == 1;
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0 || std::fclose(f) != 0 || !ok) {
    Fail("cannot write " + path.string());
  }
  std::filesystem::rename(tmp, path);
}

Key ReadKey(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) Fail("cannot read " + path.string());
  Key k(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!k) Fail("bad key " + path.string());
  return k;
}

Cert ReadCert(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) Fail("cannot read " + path.string());
  Cert c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!c) Fail("bad certificate " + path.string());
  return c;
}

}  // namespace

TlsFiles EnsureTlsFiles(const std::filesystem::path& dir,
                        const std::vector<std::string>& extra_names) {
  std::vector<std::string> names = {"localhost", "127.0.0.1"};
  for (const std::string& n : extra_names) {
    if (!ValidName(n)) Fail("certificate name " + n + ": not a DNS name or an IP address");
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  std::filesystem::create_directories(dir);
  TlsFiles files{dir / "ca.pem", dir / "server.pem", dir / "server.key"};
  const std::filesystem::path ca_key_path = dir / "ca.key";
  Key ca_key;
  Cert ca;
  if (std::filesystem::exists(files.ca_cert) && std::filesystem::exists(ca_key_path)) {
    ca_key = ReadKey(ca_key_path);
    ca = ReadCert(files.ca_cert);
  } else {
    ca_key.reset(EVP_EC_gen("P-256"));
    if (!ca_key) Fail("key generation");
    ca = MakeCert(ca_key.get(), "ota-server CA", nullptr, nullptr, true);
    WritePem(ca_key_path, nullptr, ca_key.get());
    WritePem(files.ca_cert, ca.get(), nullptr);
  }
  // Made again (same CA, so devices that pin it are unaffected) when missing, torn (key and
  // certificate do not match), not signed by this CA, or lacking a name asked for.
  bool fresh =
      std::filesystem::exists(files.server_cert) && std::filesystem::exists(files.server_key);
  if (fresh) {
    Cert cert = ReadCert(files.server_cert);
    Key key = ReadKey(files.server_key);
    fresh = X509_check_private_key(cert.get(), key.get()) == 1 &&
            X509_verify(cert.get(), X509_get0_pubkey(ca.get())) == 1 && Names(cert.get(), names);
    ERR_clear_error();
  }
  if (!fresh) {
    Key key(EVP_EC_gen("P-256"));
    if (!key) Fail("key generation");
    Cert cert = MakeCert(key.get(), "localhost", ca.get(), ca_key.get(), false, names);
    WritePem(files.server_key, nullptr, key.get());
    WritePem(files.server_cert, cert.get(), nullptr);
  }
  return files;
}

}  // namespace ota::server

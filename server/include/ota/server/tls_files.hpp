// TLS material for the platform's HTTPS and MQTTS listeners: taken from the config, or made on
// first start in the data directory (a private CA and a server certificate it signs, for
// `localhost` and 127.0.0.1), so devices can pin the CA.
#pragma once

#include <filesystem>
#include <string>

namespace ota::server {

struct TlsFiles {
  std::filesystem::path ca_cert, server_cert, server_key;
};

// Creates what is missing under `dir` (keys mode 0600) and returns the paths. Throws
// std::runtime_error if OpenSSL fails or the directory cannot be written.
TlsFiles EnsureTlsFiles(const std::filesystem::path& dir);

}  // namespace ota::server

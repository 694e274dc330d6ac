// TLS material for the platform's HTTPS and MQTTS listeners: taken from the config, or made on
// first start in the data directory (a private CA and a server certificate it signs, for
// `localhost`, 127.0.0.1 and the names asked for), so devices can pin the CA.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ota::server {

struct TlsFiles {
  std::filesystem::path ca_cert, server_cert, server_key;
};

// Creates what is missing under `dir` (keys mode 0600) and returns the paths. The server
// certificate names localhost, 127.0.0.1 and `names` (DNS names or IP addresses); one that
// lacks any of them is made again with a new key by the same CA. Throws std::runtime_error if
// a name is neither, OpenSSL fails or the directory cannot be written.
TlsFiles EnsureTlsFiles(const std::filesystem::path& dir,
                        const std::vector<std::string>& names = {});

}  // namespace ota::server

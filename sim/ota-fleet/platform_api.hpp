// The operator REST API of ota-server (docs/server.md), as the fleet uses it: one HTTPS
// connection kept alive per object (use one object per thread).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace httplib {
class SSLClient;
}

namespace ota::fleet {

class PlatformApi {
 public:
  // `url`: https://HOST:PORT, with or without the /api/v1 that `serve` prints. Throws
  // std::runtime_error on a malformed URL.
  PlatformApi(const std::string& url, std::string token, std::string ca_file);
  ~PlatformApi();

  struct Reply {
    int status = 0;  // 0: no answer (connection failed)
    nlohmann::json body;
    std::string error;  // the transport's, or the API's {"error"}
  };
  Reply Get(const std::string& path);
  Reply Post(const std::string& path, const nlohmann::json& body);
  Reply PostBytes(const std::string& path, const std::vector<uint8_t>& bytes);

 private:
  Reply Finish(int status, const std::string& body, const std::string& error);
  httplib::SSLClient& Client();

  std::string host_, token_, ca_file_;
  int port_ = 443;
  std::unique_ptr<httplib::SSLClient> client_;
};

// Throws std::runtime_error ("what: status error") unless the reply's status is one of `ok`.
void Expect(const PlatformApi::Reply& r, std::initializer_list<int> ok, const std::string& what);

}  // namespace ota::fleet

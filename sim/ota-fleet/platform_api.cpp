#include "platform_api.hpp"

#include <httplib.h>

#include <stdexcept>

namespace ota::fleet {

PlatformApi::PlatformApi(const std::string& url, std::string token, std::string ca_file)
    : token_(std::move(token)), ca_file_(std::move(ca_file)) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) throw std::runtime_error(url + ": not an https:// URL");
  const size_t slash = url.find('/', scheme.size());
  const std::string authority = url.substr(scheme.size(), slash - scheme.size());
  const size_t colon = authority.rfind(':');
  host_ = authority.substr(0, colon);
  if (colon != std::string::npos) port_ = std::atoi(authority.c_str() + colon + 1);
  if (host_.empty() || port_ <= 0) throw std::runtime_error(url + ": no host or port");
}

PlatformApi::~PlatformApi() = default;

httplib::SSLClient& PlatformApi::Client() {
  if (!client_) {
    client_ = std::make_unique<httplib::SSLClient>(host_, port_);
    client_->set_ca_cert_path(ca_file_.c_str());
    client_->enable_server_certificate_verification(true);
    client_->set_keep_alive(true);
    client_->set_connection_timeout(10);
    client_->set_read_timeout(60);
    client_->set_write_timeout(60);
    client_->set_bearer_token_auth(token_.c_str());
  }
  return *client_;
}

PlatformApi::Reply PlatformApi::Finish(int status, const std::string& body,
                                       const std::string& error) {
  Reply r;
  r.status = status;
  r.error = error;
  r.body = nlohmann::json::parse(body, nullptr, false);
  if (r.body.is_discarded()) r.body = nullptr;
  if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_string()) {
    r.error = r.body["error"];
  }
  return r;
}

namespace {
// The request never reached the server (a kept-alive connection it had closed): safe to send
// again on a new connection.
bool NotSent(const httplib::Result& r) {
  return !r && (r.error() == httplib::Error::Write || r.error() == httplib::Error::Connection ||
                r.error() == httplib::Error::SSLConnection);
}
}  // namespace

PlatformApi::Reply PlatformApi::Get(const std::string& path) {
  httplib::Result res = Client().Get(path.c_str());
  // A GET may be sent again whatever failed (a kept-alive connection the server had closed
  // fails on the read when the write still went into the socket).
  if (!res) {
    client_.reset();
    res = Client().Get(path.c_str());
  }
  if (!res) {
    client_.reset();
    return Finish(0, "", httplib::to_string(res.error()));
  }
  return Finish(res->status, res->body, "");
}

PlatformApi::Reply PlatformApi::Post(const std::string& path, const nlohmann::json& body) {
  const std::string text = body.dump();
  httplib::Result res = Client().Post(path.c_str(), text, "application/json");
  if (NotSent(res)) {
    client_.reset();
    res = Client().Post(path.c_str(), text, "application/json");
  }
  if (!res) {
    client_.reset();
    return Finish(0, "", httplib::to_string(res.error()));
  }
  return Finish(res->status, res->body, "");
}

PlatformApi::Reply PlatformApi::PostBytes(const std::string& path,
                                          const std::vector<uint8_t>& bytes) {
  httplib::Result res = Client().Post(path.c_str(), reinterpret_cast<const char*>(bytes.data()),
                                      bytes.size(), "application/octet-stream");
  if (!res) {
    client_.reset();
    return Finish(0, "", httplib::to_string(res.error()));
  }
  return Finish(res->status, res->body, "");
}

void Expect(const PlatformApi::Reply& r, std::initializer_list<int> ok, const std::string& what) {
  for (int s : ok) {
    if (r.status == s) return;
  }
  throw std::runtime_error(what + ": " +
                           (r.status == 0 ? std::string("no answer") : std::to_string(r.status)) +
                           (r.error.empty() ? "" : " " + r.error));
}

}  // namespace ota::fleet

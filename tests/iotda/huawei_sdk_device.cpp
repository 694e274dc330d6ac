#include "huawei_sdk_device.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>

namespace ota::testing {

namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 15]);
  }
  return s;
}

// Python SDK style: local time labelled Z (the Python SDK formats localtime this way).
std::string PySdkEventTime() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct Socket {
  int fd;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

static SdkDownload& Failed(SdkDownload* d, const std::string& why) {
  d->error = why;
  return *d;
}

SdkLogin CSdkLogin(const std::string& secret, const std::string& timestamp, int sig_type) {
  SdkLogin login;
  login.timestamp = timestamp;
  const EVP_MD* md = sig_type == 2 ? EVP_sm3() : EVP_sha256();
  // hmac_sha256.c EncryptWithHMac: retried with timestamp + 1 while the MAC has a zero byte
  // (it measures the MAC with strlen), at most 100 times.
  for (int attempt = 0; attempt < 100; ++attempt) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md, login.timestamp.data(), static_cast<int>(login.timestamp.size()),
         reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), mac, &len);
    if (std::memchr(mac, 0, len) == nullptr) {
      login.password = Hex(mac, len);
      return login;
    }
    ++login.bumps;
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%ld", std::strtol(login.timestamp.c_str(), nullptr, 10) + 1);
    login.timestamp = buf;
  }
  return login;
}

SdkDownload CSdkDownload(const std::string& url, const std::string& token) {
  SdkDownload out;
  // iota_datatrans.c IOTA_GetUrlData: host up to the first ':' after "//", the port up to the
  // next '/', the URI from there (query included).
  const size_t start = url.find("//");
  if (start == std::string::npos) return Failed(&out, "no //");
  const size_t colon = url.find(':', start + 2);
  if (colon == std::string::npos) return Failed(&out, "no port in the URL");
  const size_t slash = url.find('/', colon);
  if (slash == std::string::npos || slash - colon - 1 > 5) return Failed(&out, "bad port");
  const std::string host = url.substr(start + 2, colon - start - 2);
  const int port = std::atoi(url.substr(colon + 1, slash - colon - 1).c_str());
  const std::string uri = url.substr(slash);
  if (host.size() >= 50) return Failed(&out, "host longer than IP_LENGTH");

  const Socket sock{::socket(AF_INET, SOCK_STREAM, 0)};
  const int fd = sock.fd;
  if (fd < 0) return Failed(&out, "socket");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Failed(&out, "cannot connect to " + host);
  // IOTA_ssl_init: a bare client context, no verification, no SNI.
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) != 1) return Failed(&out, "TLS handshake failed");
  // IOTA_GetHttpHeader: bare LF after the request line and each header, CRLF CRLF at the end;
  // one SSL_write.
  const std::string request = "GET " + uri + " HTTP/1.1\nHost: " + host +
                              "\nContent-Type: application/json\nAuthorization:Bearer " + token +
                              "\r\n\r\n";
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) !=
      static_cast<int>(request.size()))
    return Failed(&out, "write failed");
  // IOTA_IotRead: status and headers from the first read of at most 4095 bytes.
  char buf[4096];
  int n = SSL_read(ssl.get(), buf, 4095);
  if (n <= 0) return Failed(&out, "no response");
  out.first_record.assign(buf, static_cast<size_t>(n));
  const std::string& first = out.first_record;
  if (first.size() < 12) return Failed(&out, "short status line");
  out.status = std::atoi(first.substr(9, 3).c_str());
  const size_t header_end = first.find("\r\n\r\n");
  if (header_end == std::string::npos) return Failed(&out, "headers not in the first record");
  const size_t cl = first.find("Content-Length: ");  // case-sensitive, one space
  const size_t fn = first.find("filename=");
  if (fn != std::string::npos && fn < header_end) {
    const size_t from = fn + 9;
    out.file_name = first.substr(from, first.find_first_of("\r\n;", from) - from);
  }
  if (first.compare(9, 3, "200") != 0 || cl == std::string::npos || cl > header_end)
    return Failed(&out, "not 200 with Content-Length");
  const long length = std::strtol(first.c_str() + cl + 16, nullptr, 10);
  out.body = first.substr(header_end + 4);
  while (static_cast<long>(out.body.size()) < length) {
    n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.body.append(buf, static_cast<size_t>(n));
  }
  if (static_cast<long>(out.body.size()) != length) out.error = "body shorter than Content-Length";
  return out;
}

HuaweiSdkDevice::HuaweiSdkDevice(std::string device_id, std::string secret, int sig_type,
                                 std::string timestamp, std::filesystem::path download_dir)
    : device_id_(std::move(device_id)),
      secret_(std::move(secret)),
      sig_type_(sig_type),
      dir_(std::move(download_dir)) {
  login_ = CSdkLogin(secret_, timestamp, sig_type_);
  client_id_ = device_id_ + "_0_" + std::to_string(sig_type_) + "_" + login_.timestamp;
}

int HuaweiSdkDevice::Connect(int port) {
  mqtt_ = std::make_unique<MqttTestClient>(client_id_);
  return mqtt_->Connect(port, device_id_, login_.password);  // and no SUBSCRIBE, ever
}

bool HuaweiSdkDevice::Publish(const std::string& suffix, const nlohmann::json& payload) {
  return mqtt_->Publish("$oc/devices/" + device_id_ + suffix, payload.dump());
}

std::vector<ReceivedMessage> HuaweiSdkDevice::Run(std::chrono::milliseconds wait) {
  std::vector<ReceivedMessage> seen;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    for (ReceivedMessage& m : mqtt_->Receive(std::chrono::milliseconds(50))) {
      if (m.topic == "$oc/devices/" + device_id_ + "/sys/events/down") {
        const nlohmann::json env = nlohmann::json::parse(m.payload, nullptr, false);
        if (env.is_object() && env.contains("services") && env["services"].is_array()) {
          for (const auto& s : env["services"])
            OnEvent(s);
        }
      }
      seen.push_back(std::move(m));
    }
  }
  return seen;
}

void HuaweiSdkDevice::OnEvent(const nlohmann::json& s) {
  if (!s.is_object() || s.value("service_id", "") != "$ota") return;
  const std::string type = s.value("event_type", "");
  const auto report = [&](const std::string& event_type, const nlohmann::json& paras) {
    Publish("/sys/events/up", {{"object_device_id", device_id_},
                               {"services",
                                {{{"service_id", "$ota"},
                                  {"event_type", event_type},
                                  {"event_time", PySdkEventTime()},
                                  {"paras", paras}}}}});
  };
  if (type == "version_query") {
    report("version_report", {{"fw_version", version_}, {"sw_version", "v1.0"}});
    return;
  }
  if (type != "firmware_upgrade" || !s.contains("paras") || !s["paras"].is_object()) return;
  const nlohmann::json& p = s["paras"];
  const std::string target = p.value("version", "");
  ++downloads_;
  SdkDownload d = CSdkDownload(p.value("url", ""), p.value("access_token", ""));
  bool ok = d.error.empty() && !d.file_name.empty() &&
            d.file_name.find_first_of("/\"'\\") == std::string::npos;
  if (ok) {
    std::ofstream(dir_ / d.file_name, std::ios::binary) << d.body;
    // IOTA_OTAVerifySign as it was meant to work (ed744dd): the file's SHA-256 in lowercase hex
    // must equal `sign`.
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(d.body.data(), d.body.size(), md, &len, EVP_sha256(), nullptr);
    ok = Hex(md, len) == p.value("sign", "");
  }
  last_download_ = std::move(d);
  last_result_code_ = ok ? 0 : 1;
  // ota_test.c HandleEvenOtaUrlResponse: the target version either way, and no reboot.
  report("upgrade_progress_report", {{"result_code", ok ? 0 : 1},
                                     {"progress", ok ? 100 : 0},
                                     {"version", target},
                                     {"description", ok ? "success" : "failed"}});
}

}  // namespace ota::testing

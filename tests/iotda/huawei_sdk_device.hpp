// A device that behaves like Huawei's IoTDA device SDKs where they differ from our own agent,
// written from reading the SDKs (docs/notes/iotda-sdk-behaviour.md), not from our code:
// - it never subscribes: the platform's messages must reach it through the broker's implicit
//   subscriptions;
// - it logs in the way the C SDK computes its password: HMAC-SHA256 or HMAC-SM3 keyed by the
//   timestamp, and when the MAC holds a 0x00 byte the timestamp is bumped by one (as a number,
//   so hour 23 becomes "hour 24") and used in both the client ID and the password;
// - it downloads the way the C SDK does: one bare-LF request (`Host` without port,
//   `Authorization:Bearer` without a space, `Content-Type` on a GET) over TLS without SNI or
//   certificate checks, status and headers read from the first TLS record, the file name taken
//   verbatim from `filename=`, the SHA-256 compared with `sign` as an exact lowercase string;
// - it reports `upgrade_progress_report` result 0 with the target version, without rebooting.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "mqtt_test_client.hpp"

namespace ota::testing {

// The C SDK's login: the timestamp it ends up using (bumped while the MAC has a zero byte) and
// the password. `sig_type` 0 or 1: HMAC-SHA256; 2: HMAC-SM3.
struct SdkLogin {
  std::string timestamp;
  std::string password;
  int bumps = 0;
};
SdkLogin CSdkLogin(const std::string& secret, const std::string& timestamp, int sig_type);

// What the C SDK's download produced.
struct SdkDownload {
  int status = 0;            // from the first record's status line
  std::string file_name;     // verbatim from `filename=`, empty if none
  std::string body;          // Content-Length bytes
  std::string first_record;  // the first TLS record as read (status line and headers)
  std::string error;         // why it failed, empty on success
};
// GET `url` (https://HOST:PORT/PATH, parsed as the C SDK does) with the C SDK's exact request.
SdkDownload CSdkDownload(const std::string& url, const std::string& token);

class HuaweiSdkDevice {
 public:
  HuaweiSdkDevice(std::string device_id, std::string secret, int sig_type, std::string timestamp,
                  std::filesystem::path download_dir);

  // CONNACK code (0 accepted).
  int Connect(int port);
  const SdkLogin& login() const { return login_; }
  const std::string& client_id() const { return client_id_; }
  const std::string& device_id() const { return device_id_; }

  // Handles what arrives for `wait`, as the SDK demo's callbacks do: version_query ->
  // version_report; firmware_upgrade -> download, check, report. Returns the envelopes seen.
  std::vector<ReceivedMessage> Run(std::chrono::milliseconds wait);

  void set_version(std::string v) { version_ = std::move(v); }
  const std::string& version() const { return version_; }
  int downloads() const { return downloads_; }
  const std::optional<SdkDownload>& last_download() const { return last_download_; }
  std::optional<int> last_result_code() const { return last_result_code_; }
  bool Publish(const std::string& suffix, const nlohmann::json& payload);

 private:
  void OnEvent(const nlohmann::json& service);

  std::string device_id_, secret_;
  int sig_type_;
  SdkLogin login_;
  std::string client_id_;
  std::filesystem::path dir_;
  std::string version_ = "v1.0";
  std::unique_ptr<MqttTestClient> mqtt_;
  int downloads_ = 0;
  std::optional<SdkDownload> last_download_;
  std::optional<int> last_result_code_;
};

}  // namespace ota::testing

// A running ota-server: the operator API and the device download listener (each its own
// HTTPS server and worker pool), the MQTT bridge on libmosquitto's thread, and a ticker that
// drives upgrade tasks and re-publishes what the outbox still holds. Device messages and the
// broker's presence events are handled here (docs/server.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ota/server/device_requests.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/mqtt_bridge.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace ota::server {

struct ServiceOptions {
  std::string http_host = "127.0.0.1";
  int http_port = 8443;       // the operator API; 0: any free port
  int download_port = 0;      // device downloads; 0: any free port
  int download_workers = 64;  // threads serving downloads (slow devices hold one each)
  // The base URL devices are told to download from (default https://{host}:{download port}).
  // It must name its port: Huawei's C SDK reads the port from the URL.
  std::string public_download_url;
  // Or only the host devices reach the platform at: https://{public_host}:{download port}.
  // One of the two is required when http_host is a wildcard (0.0.0.0, ::).
  std::string public_host;
  bool mqtt_enabled = true;
  MqttOptions mqtt;
  int tick_ms = 1000;
  bool metrics_public = false;  // GET /metrics without the operator token
};

// Why these options cannot give devices a download URL they can use, or "".
std::string CheckPublicDownload(const ServiceOptions& options);
// The host in the download URL devices get (what the TLS certificate must name).
std::string DownloadUrlHost(const ServiceOptions& options);

class Service {
 public:
  Service(Platform& platform, ServiceOptions options);
  ~Service();

  bool Start(std::string* error);
  void Stop();
  void Wait();  // until Stop()

  HttpApi& api() { return *api_; }
  UpgradeTasks& tasks() { return *tasks_; }
  DeviceRequests& requests() { return *requests_; }
  int http_port() const { return http_port_; }
  int download_port() const { return download_port_; }
  bool mqtt_connected() const { return bridge_ && bridge_->connected(); }

  // One message from a device (the bridge calls this; tests may too).
  void HandleDeviceMessage(const std::string& topic, const std::string& payload);
  void TickNow();

 private:
  // Publishes what a committed change queued; the outbox keeps each until the broker's PUBACK.
  // `retry`: the outbox publishing again what was not acknowledged (or not sent) in time.
  void Send(const std::vector<QueuedMessage>& messages, bool retry = false);
  // Acknowledged messages leave the outbox; what is left and not in flight is published again.
  void FlushOutbox(int64_t now);
  void Reject(const std::string& device, const std::string& what, const std::string& why);
  // An answer built after the commit and published once, never kept in the outbox: a late
  // time_sync_response or shadow answer would be wrong, and the device asks again.
  using Reply = std::function<Outgoing()>;
  // `device` is an enabled sub-device of `gateway` (marked seen), else ApiError(403).
  void SubDevice(const std::string& gateway, const std::string& device);
  // Inside the caller's transaction; ApiError refuses the whole message.
  void ApplyDeviceMessage(const UpTopic& up, const std::string& payload, int64_t now,
                          int64_t now_ms, std::vector<QueuedMessage>* out,
                          std::vector<Reply>* replies);

  Platform& platform_;
  ServiceOptions options_;
  std::unique_ptr<UpgradeTasks> tasks_;
  std::unique_ptr<DeviceRequests> requests_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<MqttBridge> bridge_;
  int http_port_ = -1;
  int download_port_ = -1;
  std::thread http_thread_, download_thread_, tick_thread_;
  // Outbox messages in flight: libmosquitto's message ID -> outbox row; and those acknowledged.
  std::mutex inflight_mutex_;
  std::map<int, int64_t> inflight_;
  std::set<int64_t> inflight_ids_;
  std::vector<int64_t> acked_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool started_ = false;
};

}  // namespace ota::server

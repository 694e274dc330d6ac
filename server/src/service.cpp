#include "ota/server/service.hpp"

#include <cstdio>
#include <ctime>

namespace ota::server {

Service::Service(Platform& platform, ServiceOptions options)
    : platform_(platform), options_(std::move(options)) {
  tasks_ = std::make_unique<UpgradeTasks>(
      platform_.db(), platform_.registry(), platform_.packages(),
      [this](const std::string& device, const PackageRecord& pkg, int64_t deadline) {
        return DownloadGrant(platform_, api_->base_url(), device, pkg, deadline);
      });
  api_ = std::make_unique<HttpApi>(platform_, tasks_.get());
}

Service::~Service() {
  Stop();
}

bool Service::Start(std::string* error) {
  http_port_ = api_->Bind(options_.http_host, options_.http_port);
  if (http_port_ < 0) {
    *error =
        "https: cannot listen on " + options_.http_host + ":" + std::to_string(options_.http_port);
    return false;
  }
  http_thread_ = std::thread([this] { api_->Serve(); });
  started_ = true;
  if (options_.mqtt_enabled) {
    bridge_ = std::make_unique<MqttBridge>(
        options_.mqtt, [this](const std::string& topic, const std::string& payload) {
          HandleDeviceMessage(topic, payload);
        });
    if (!bridge_->Start(5000, error)) {
      Stop();
      return false;
    }
  }
  tick_thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(stop_mutex_);
    while (!stopping_) {
      lock.unlock();
      TickNow();
      lock.lock();
      stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms),
                        [this] { return stopping_; });
    }
  });
  return true;
}

void Service::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (stopping_ && !started_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (tick_thread_.joinable()) tick_thread_.join();
  if (bridge_) bridge_->Stop();
  if (started_) {
    api_->Stop();
    if (http_thread_.joinable()) http_thread_.join();
    started_ = false;
  }
}

void Service::Wait() {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  stop_cv_.wait(lock, [this] { return stopping_; });
}

void Service::Send(const std::vector<Outgoing>& messages) {
  if (!bridge_) return;
  for (const Outgoing& m : messages)
    bridge_->Publish(m);
}

void Service::Reject(const std::string& device, const std::string& what, const std::string& why) {
  platform_.registry().Count("rejected_" + what);
  std::fprintf(stderr, "ota-server: rejected %s from %s: %s\n", what.c_str(), device.c_str(),
               why.c_str());
}

void Service::TickNow() {
  std::vector<Outgoing> out;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    try {
      out = tasks_->Tick(std::time(nullptr));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ota-server: task tick failed: %s\n", e.what());
    }
  }
  Send(out);
}

void Service::HandleDeviceMessage(const std::string& topic, const std::string& payload) {
  const std::optional<UpTopic> up = ParseUpTopic(topic);
  if (!up) return;
  std::vector<Outgoing> out;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    const int64_t now = std::time(nullptr);
    try {
      platform_.registry().GetDevice(up->device_id);  // 404: a device deleted since it logged in
      platform_.registry().MarkSeen(up->device_id, true);
      if (payload.size() > kMaxDevicePayload) {
        throw ApiError(413, "payload of " + std::to_string(payload.size()) + " bytes");
      }
      if (up->kind == UpKind::kMessagesUp || up->kind == UpKind::kCommandResponse) return;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(payload);
      } catch (const nlohmann::json::parse_error&) {
        throw ApiError(400, "not JSON");
      }
      if (up->kind == UpKind::kPropertiesReport) {
        platform_.registry().StoreProperties(up->device_id, j);
        platform_.registry().Count("property_reports");
        return;
      }
      for (const OtaEvent& e : ParseOtaEvents(j)) {
        if (e.event_type == "version_report") {
          const std::string fw = e.paras.value("fw_version", "");
          const std::string sw = e.paras.value("sw_version", "");
          auto msgs = tasks_->OnVersionReport(up->device_id, fw, sw, now);
          out.insert(out.end(), msgs.begin(), msgs.end());
        } else if (e.event_type == "upgrade_progress_report") {
          tasks_->OnProgress(up->device_id, e.paras, now);
        } else {
          throw ApiError(400, "unknown $ota event " + e.event_type);
        }
      }
    } catch (const ApiError& e) {
      Reject(up->device_id, up->kind == UpKind::kPropertiesReport ? "property_reports" : "events",
             e.what());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ota-server: message from %s failed: %s\n", up->device_id.c_str(),
                   e.what());
    }
  }
  Send(out);
}

}  // namespace ota::server

#include "ota/server/service.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <thread>

#include "ota/server/log.hpp"

namespace ota::server {

namespace {
// An outbox message not acknowledged this long after it was queued is published again
// (unless it is still in flight on the current connection).
constexpr int64_t kOutboxRetrySeconds = 5;
// Older messages are dropped: the tasks' own timers re-send what still matters.
constexpr int64_t kOutboxKeepSeconds = 600;
// Published and not yet acknowledged at most (libmosquitto numbers them with 16 bits).
constexpr size_t kMaxInflight = 10000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]" || host == "*";
}

bool Digits(const std::string& s) {
  return !s.empty() && s.size() <= 5 && s.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(s) > 0 && std::stoi(s) <= 65535;
}

// "https://HOST:PORT/..." split into HOST (brackets kept) and PORT; false if it is not that.
bool SplitUrl(const std::string& url, std::string* host, std::string* port) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return false;
  const std::string authority =
      url.substr(scheme.size(), url.find('/', scheme.size()) - scheme.size());
  const size_t colon = authority.rfind(':');
  if (colon == std::string::npos || authority.find('@') != std::string::npos) return false;
  *host = authority.substr(0, colon);
  *port = authority.substr(colon + 1);
  const bool v6 = !host->empty() && host->front() == '[';
  if (v6 ? host->back() != ']' : host->find(':') != std::string::npos) return false;
  return !host->empty() && !Wildcard(*host) && Digits(*port);
}

}  // namespace

std::string CheckPublicDownload(const ServiceOptions& o) {
  if (!o.public_download_url.empty()) {
    std::string host, port;
    if (!SplitUrl(o.public_download_url, &host, &port)) {
      return "--public-download-url " + o.public_download_url +
             ": give https://HOST:PORT[/PATH] with the port written out (devices read it from "
             "the URL) and a host devices can reach";
    }
    return "";
  }
  if (!o.public_host.empty()) {
    in6_addr v6{};
    if (Wildcard(o.public_host) || o.public_host.find_first_of("/@[] \t") != std::string::npos ||
        (o.public_host.find(':') != std::string::npos &&
         inet_pton(AF_INET6, o.public_host.c_str(), &v6) != 1)) {
      return "--public-host " + o.public_host +
             ": give the name or address devices reach, without a port (--download-port)";
    }
    return "";
  }
  if (Wildcard(o.http_host)) {
    return "--bind " + (o.http_host.empty() ? std::string("(any)") : o.http_host) +
           " listens on every address, so it cannot go in the download URL devices get: give "
           "--public-host HOST (the name or address devices reach) or --public-download-url";
  }
  return "";
}

std::string DownloadUrlHost(const ServiceOptions& o) {
  std::string host = o.public_host.empty() ? o.http_host : o.public_host, port;
  if (!o.public_download_url.empty() && !SplitUrl(o.public_download_url, &host, &port)) return "";
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return Wildcard(host) ? "" : host;
}

Service::Service(Platform& platform, ServiceOptions options)
    : platform_(platform), options_(std::move(options)) {
  tasks_ = std::make_unique<UpgradeTasks>(
      platform_.db(), platform_.registry(), platform_.packages(), platform_.outbox(),
      [this](const std::string& device, const PackageRecord& pkg, int64_t expires,
             int64_t task_id) {
        return DownloadGrant(platform_, api_->download_base_url(), device, pkg, expires, task_id);
      });
  api_ = std::make_unique<HttpApi>(platform_, tasks_.get(), options_.download_workers);
  // Commands and property requests go out at once, not through the outbox: a request its
  // caller has given up on must not be carried out later (or twice) by a re-send.
  requests_ = std::make_unique<DeviceRequests>(
      platform_,
      [this](const Outgoing& m) {
        const bool sent = bridge_ && bridge_->connected() && bridge_->Publish(m) >= 0;
        if (sent) platform_.metrics().MessagesPublished(Published::kRequest);
        return sent;
      },
      [this](const std::vector<QueuedMessage>& m) { Send(m); });
  api_->DeviceRequestRoutes(*requests_);
  api_->set_metrics_public(options_.metrics_public);
}

Service::~Service() {
  Stop();
}

bool Service::Start(std::string* error) {
  *error = CheckPublicDownload(options_);
  if (!error->empty()) return false;
  http_port_ = api_->Bind(options_.http_host, options_.http_port);
  if (http_port_ < 0) {
    *error =
        "https: cannot listen on " + options_.http_host + ":" + std::to_string(options_.http_port);
    return false;
  }
  download_port_ = api_->BindDownloads(options_.http_host, options_.download_port,
                                       options_.public_download_url, options_.public_host);
  if (download_port_ < 0) {
    *error = "https: cannot listen for downloads on " + options_.http_host + ":" +
             std::to_string(options_.download_port);
    return false;
  }
  http_thread_ = std::thread([this] { api_->Serve(); });
  download_thread_ = std::thread([this] { api_->ServeDownloads(); });
  started_ = true;
  if (options_.mqtt_enabled) {
    bridge_ = std::make_unique<MqttBridge>(
        options_.mqtt,
        [this](const std::string& topic, const std::string& payload) {
          HandleDeviceMessage(topic, payload);
        },
        kMaxDevicePayload,
        [this](const std::string& topic, size_t size) {
          const std::optional<UpTopic> up = ParseUpTopic(topic);
          std::lock_guard<std::mutex> guard(platform_.lock());
          Reject(up ? up->device_id : "(unknown)", "oversized",
                 "payload of " + std::to_string(size) + " bytes");
        },
        [this](int mid) {
          std::lock_guard<std::mutex> guard(inflight_mutex_);
          auto it = inflight_.find(mid);
          if (it == inflight_.end()) return;
          acked_.push_back(it->second);
          inflight_ids_.erase(it->second);
          inflight_.erase(it);
        },
        [this](bool session_present) {
          if (session_present) return;
          // A new session: the broker restarted without ours (or it expired). Its presence
          // events since are lost, so what it said before no longer holds.
          std::lock_guard<std::mutex> guard(platform_.lock());
          try {
            platform_.registry().PresenceUnknown();
          } catch (const std::exception& e) {
            Log(LogLevel::kError, std::string("presence reset failed: ") + e.what());
          }
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
    requests_->StopWaiting();
    api_->Stop();
    if (http_thread_.joinable()) http_thread_.join();
    if (download_thread_.joinable()) download_thread_.join();
    started_ = false;
  }
}

void Service::Wait() {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  stop_cv_.wait(lock, [this] { return stopping_; });
}

void Service::Send(const std::vector<QueuedMessage>& messages, bool retry) {
  // Disconnected: libmosquitto would keep a copy of each (unbounded, and sent on reconnect
  // even if its task ended meanwhile); the outbox has them, FlushOutbox sends them later.
  if (!bridge_ || !bridge_->connected()) return;
  for (const QueuedMessage& m : messages) {
    std::lock_guard<std::mutex> guard(inflight_mutex_);
    if (inflight_ids_.count(m.id) != 0) continue;
    if (inflight_.size() >= kMaxInflight) break;  // the rest waits in the outbox
    // Under the mutex: the PUBACK callback cannot look the message ID up before it is known.
    const int mid = bridge_->Publish(m.message);
    if (mid < 0) continue;  // stays in the outbox; the tick publishes it again
    platform_.metrics().MessagesPublished(retry ? Published::kOutboxRetry : Published::kOutbox);
    inflight_[mid] = m.id;
    inflight_ids_.insert(m.id);
  }
}

void Service::FlushOutbox(int64_t now) {
  std::vector<int64_t> acked;
  {
    std::lock_guard<std::mutex> guard(inflight_mutex_);
    acked.swap(acked_);
  }
  std::vector<QueuedMessage> pending;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    requests_->OnOutboxAcked(acked, now);  // first: a crash between re-sends, never loses
    platform_.outbox().Remove(acked);
    const std::vector<int64_t> expired = platform_.outbox().Expire(now - kOutboxKeepSeconds);
    requests_->OnOutboxExpired(expired, now);
    if (!expired.empty()) {
      platform_.registry().Count("outbox_expired", static_cast<int64_t>(expired.size()));
      std::lock_guard<std::mutex> g(inflight_mutex_);
      for (int64_t id : expired)
        inflight_ids_.erase(id);  // their PUBACK, if it comes, finds nothing
      for (auto it = inflight_.begin(); it != inflight_.end();) {
        it = std::find(expired.begin(), expired.end(), it->second) != expired.end()
                 ? inflight_.erase(it)
                 : std::next(it);
      }
    }
    if (bridge_ && bridge_->connected()) {
      pending = platform_.outbox().Pending(now - kOutboxRetrySeconds, 5000);
    }
  }
  Send(pending, true);
}

void Service::Reject(const std::string& device, const std::string& what, const std::string& why) {
  platform_.registry().Count("rejected_" + what);
  Log(LogLevel::kWarning, "rejected " + what + " from " + device + ": " + why, {device});
}

void Service::TickNow() {
  const int64_t now = std::time(nullptr);
  std::vector<QueuedMessage> out;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    // Live views look again only when the tick changed rows (devices moved, tasks ended).
    const int64_t changes = sqlite3_total_changes64(platform_.db().handle());
    try {
      out = tasks_->Tick(now);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, std::string("task tick failed: ") + e.what());
    }
    if (sqlite3_total_changes64(platform_.db().handle()) != changes) platform_.changes().Bump();
    try {
      requests_->Tick(now);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, std::string("device request tick failed: ") + e.what());
    }
  }
  Send(out);
  try {
    FlushOutbox(now);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("outbox: ") + e.what());
  }
}

void Service::HandleDeviceMessage(const std::string& topic, const std::string& payload) {
  std::vector<QueuedMessage> out;
  const int64_t now_ms = NowMs();
  const int64_t now = now_ms / 1000;
  if (topic == broker::kLoginStatsTopic) {
    if (const std::optional<LoginStatsReport> s = ParseLoginStats(payload)) {
      platform_.metrics().DeviceLogins(s->broker, s->started_at, s->counts);
    } else {
      Log(LogLevel::kWarning, "malformed login statistics from the broker");
    }
    return;
  }
  if (const std::optional<Presence> p = ParsePresence(topic, payload)) {
    platform_.metrics().Presence(p->connected);
    {
      std::lock_guard<std::mutex> guard(platform_.lock());
      try {
        if (platform_.registry().ApplyPresence(p->device_id, p->connected, p->seq) &&
            p->connected) {
          out = tasks_->OnConnected(p->device_id, now);
          // A gateway back online: its sub-devices are reachable again.
          for (const std::string& sub : platform_.registry().SubDeviceIds(p->device_id)) {
            tasks_->OnConnected(sub, now);
          }
        }
      } catch (const std::exception& e) {
        Log(LogLevel::kError, "presence of " + p->device_id + " failed: " + e.what(),
            {p->device_id});
      }
    }
    platform_.changes().Bump();
    Send(out);
    return;
  }
  const std::optional<UpTopic> up = ParseUpTopic(topic);
  if (!up) return;
  const char* what =
      up->kind == UpKind::kPropertiesReport || up->kind == UpKind::kGatewayPropertiesReport
          ? "property_reports"
      : up->kind == UpKind::kShadowGet  ? "shadow_requests"
      : up->kind == UpKind::kEventsUp   ? "events"
      : up->kind == UpKind::kMessagesUp ? "messages"
                                        : "responses";
  platform_.metrics().DeviceMessage(what);
  std::vector<Reply> replies;
  std::lock_guard<std::mutex> guard(platform_.lock());
  // The broker took the message when it was handed over (PUBACK): a database that is busy
  // (another instance writing) is waited for and tried again, not dropped at once.
  for (int attempt = 1;; ++attempt) {
    out.clear();
    replies.clear();
    try {
      // One transaction per message: seen, stored, counted and the task's change commit
      // together, or none of them.
      Transaction tx(platform_.db());
      ApplyDeviceMessage(*up, payload, now, now_ms, &out, &replies);
      tx.Commit();
      break;
    } catch (const ApiError& e) {
      // Refused as a whole (nothing of it applied); the device was seen, the refusal counted.
      out.clear();
      replies.clear();
      try {
        Transaction tx(platform_.db());
        if (platform_.registry().MarkSeen(up->device_id)) {
          Reject(up->device_id, e.status == 413 ? "oversized" : what, e.what());
        }
        tx.Commit();
      } catch (const std::exception& again) {
        Log(LogLevel::kError, "message from " + up->device_id + " failed: " + again.what(),
            {up->device_id});
      }
      break;
    } catch (const DbError& e) {
      out.clear();  // rolled back: nothing it queued exists
      replies.clear();
      if (attempt < 3) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
        continue;
      }
      platform_.registry().Count("lost_device_messages");
      Log(LogLevel::kError, "message from " + up->device_id + " lost: " + e.what(),
          {up->device_id});
      break;
    } catch (const std::exception& e) {
      out.clear();
      replies.clear();
      Log(LogLevel::kError, "message from " + up->device_id + " failed: " + e.what(),
          {up->device_id});
      break;
    }
  }
  platform_.changes().Bump();  // seen, versions, progress: live views look again
  Send(out);
  for (const Reply& reply : replies) {
    // Lost if not: the device asks again.
    if (bridge_ && bridge_->connected() && bridge_->Publish(reply()) >= 0) {
      platform_.metrics().MessagesPublished(Published::kReply);
    }
  }
}

void Service::SubDevice(const std::string& gateway, const std::string& device) {
  if (!platform_.registry().IsSubDeviceOf(device, gateway)) {
    throw ApiError(403, device + " is not a sub-device of " + gateway);
  }
  if (!platform_.registry().GetDevice(device).enabled) {
    throw ApiError(403, "sub-device " + device + " is disabled");
  }
  platform_.registry().MarkSeen(device);
}

void Service::ApplyDeviceMessage(const UpTopic& up, const std::string& raw, int64_t now,
                                 int64_t now_ms, std::vector<QueuedMessage>* out,
                                 std::vector<Reply>* replies) {
  // Unknown: a device deleted since it logged in.
  if (!platform_.registry().MarkSeen(up.device_id)) {
    throw ApiError(404, "no device " + up.device_id);
  }
  if (raw.size() > kMaxDevicePayload) {
    throw ApiError(413, "payload of " + std::to_string(raw.size()) + " bytes");
  }
  // Inflated under the same cap as a plain payload: a zip bomb stops at 64 KB of output.
  const std::string payload = up.gzip ? Gunzip(raw, kMaxDevicePayload) : raw;
  if (up.kind == UpKind::kMessagesUp) return;
  if (up.kind == UpKind::kCommandResponse || up.kind == UpKind::kPropertiesSetResponse ||
      up.kind == UpKind::kPropertiesGetResponse) {
    requests_->OnResponse(up, payload, now);
    return;
  }
  if (up.kind == UpKind::kShadowGet && !IsValidRequestId(up.request_id)) {
    throw ApiError(400, "shadow get: malformed request_id");
  }
  nlohmann::json j;
  try {
    // The C SDK asks for a whole shadow with "{}", others may send nothing at all.
    j = up.kind == UpKind::kShadowGet && payload.empty() ? nlohmann::json::object()
                                                         : nlohmann::json::parse(payload);
  } catch (const nlohmann::json::parse_error&) {
    throw ApiError(400, "not JSON");
  }
  if (up.kind == UpKind::kPropertiesReport) {
    platform_.registry().StoreProperties(up.device_id, j);
    platform_.registry().Count("property_reports");
    return;
  }
  if (up.kind == UpKind::kShadowGet) {
    if (!j.is_object()) throw ApiError(400, "shadow get: expected an object");
    // Only its own shadow: the C SDK's "-1", "" and null all mean the device itself.
    const nlohmann::json target = j.value("object_device_id", nlohmann::json());
    if (!target.is_null() && target != "" && target != "-1" && target != up.device_id) {
      throw ApiError(403, "shadow get: another device's shadow");
    }
    const nlohmann::json service = j.value("service_id", nlohmann::json());
    if (!service.is_null() && !service.is_string()) {
      throw ApiError(400, "shadow get: service_id must be a string");
    }
    const nlohmann::json shadow = platform_.registry().Shadow(
        up.device_id, service.is_string() ? service.get<std::string>() : "");
    replies->push_back([device = up.device_id, rid = up.request_id, shadow] {
      return ShadowResponse(device, rid, shadow);
    });
    platform_.registry().Count("shadow_requests");
    return;
  }
  if (up.kind == UpKind::kGatewayPropertiesReport) {
    // Each device must be this gateway's sub-device; one that is not refuses the whole report.
    for (const auto& [device, report] : ParseGatewayProperties(j)) {
      SubDevice(up.device_id, device);
      platform_.registry().StoreProperties(device, report);
      platform_.registry().Count("property_reports");
    }
    return;
  }
  const std::vector<OtaEvent> events = ParseOtaEvents(j);
  const SdkEvents sdk = ParseSdkEvents(j);
  // Who the events are about: the sender, or one of its sub-devices (a gateway's).
  const std::string object = ObjectDeviceId(j, up.device_id);
  const std::string& device = object.empty() ? up.device_id : object;
  if (!object.empty()) SubDevice(up.device_id, object);
  const std::vector<SubDeviceStatus> statuses = ParseSubDeviceStatuses(j);
  for (const SubDeviceStatus& st : statuses) {
    if (!object.empty()) throw ApiError(400, "sub_device_update_status is the gateway's own");
    SubDevice(up.device_id, st.device_id);
  }
  for (const SubDeviceStatus& st : statuses) {
    platform_.registry().SetSubDeviceOnline(up.device_id, st.device_id, st.online);
  }
  // Every event is checked before any is applied: a message is taken whole or not at all.
  for (const OtaEvent& e : events) {
    if (e.event_type == "upgrade_progress_report") {
      if (!e.paras.contains("result_code") || !e.paras["result_code"].is_number_integer() ||
          !e.paras.contains("version") || !e.paras["version"].is_string()) {
        throw ApiError(400, "upgrade_progress_report: result_code and version are required");
      }
    } else if (e.event_type != "version_report") {
      throw ApiError(400, "unknown $ota event " + e.event_type);
    }
  }
  for (const OtaEvent& e : events) {
    std::vector<QueuedMessage> msgs;
    if (e.event_type == "version_report") {
      const auto text = [&](const char* key) {
        return e.paras.contains(key) && e.paras[key].is_string() ? e.paras[key].get<std::string>()
                                                                 : std::string();
      };
      msgs = tasks_->OnVersionReport(device, text("fw_version"), text("sw_version"), now);
    } else {
      msgs = tasks_->OnProgress(device, e.paras, now);
    }
    out->insert(out->end(), msgs.begin(), msgs.end());
  }
  if (!sdk.sdk_info.is_null()) platform_.registry().SetSdkInfo(up.device_id, sdk.sdk_info);
  platform_.registry().AddDeviceLogs(up.device_id, sdk.logs);
  if (!sdk.time_sync_requests.empty()) {
    // One answer a message (a device asks once); server_send_time is taken when it is
    // published, after the commit.
    replies->push_back([device = up.device_id, sent = sdk.time_sync_requests.back(), now_ms] {
      return TimeSyncResponse(device, sent, now_ms, NowMs());
    });
  }
}

}  // namespace ota::server

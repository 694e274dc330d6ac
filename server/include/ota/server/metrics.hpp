// Prometheus metrics of one ota-server (docs/server.md, "Metrics"): what the process counts in
// memory (atomics, never a database write of its own) and, at scrape time, what the database
// holds (devices, tasks, the counters table). Rendered in the text exposition format 0.0.4.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/login_stats.hpp"

namespace ota::server {

class Database;

// Fixed buckets (upper bounds, seconds), one atomic count each: observing takes no lock.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double seconds);
  // The _bucket, _sum and _count lines of one series; `labels` is `a="b",` or empty.
  void Write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, the last one +Inf
  std::atomic<uint64_t> sum_ns_{0};
};

// The device message kinds counted (bounded label values).
inline constexpr const char* kMessageKinds[] = {"property_reports", "events", "messages",
                                                "responses", "shadow_requests"};
// What put a message on the platform's MQTT connection.
enum class Published { kOutbox, kOutboxRetry, kRequest, kReply };
// The answer to a user's sign-in (POST /api/v1/session).
enum class LoginResult { kAccepted, kRefused, kThrottled };

// The Mosquitto plugin's device login counts (docs/spec/broker-auth.md, "Login statistics")
// summed over broker instances. Each instance (a broker start) reports its cumulative counts;
// the last counts of every instance seen stay in the sum, so a restarted broker (a new instance
// counting from 0) never makes the total go down. Messages may come late, twice or out of order
// (a persistent session, a retained message): per instance each reason keeps its highest count.
// Memory is bounded: past kMaxInstances the oldest instance (by started_at) is folded into a
// base sum, and reports of instances started no later than one folded are ignored after that.
class DeviceLoginTotals {
 public:
  static constexpr size_t kMaxInstances = 64;
  // False when ignored (an instance already folded into the base).
  bool Update(const std::string& broker, int64_t started_at, const broker::LoginCounts& counts);
  broker::LoginCounts Totals() const;

 private:
  struct Instance {
    int64_t started_at = 0;
    broker::LoginCounts counts{};
  };
  mutable std::mutex mutex_;
  std::map<std::string, Instance> instances_;
  broker::LoginCounts folded_{};      // instances no longer tracked one by one
  int64_t folded_until_ = INT64_MIN;  // the newest started_at folded
};

class Metrics {
 public:
  Metrics();

  // An operator API request: the raw path is mapped to its route template (bounded labels).
  void ApiRequest(const std::string& method, const std::string& path, int status, double seconds);
  void DownloadRequest(int status, double seconds);
  void DownloadBytes(uint64_t n) { download_bytes_ += n; }
  // `kind` one of kMessageKinds.
  void DeviceMessage(const char* kind);
  void Presence(bool connected) { (connected ? presence_connects_ : presence_disconnects_)++; }
  void MessagesPublished(Published source, uint64_t n = 1);
  // An answer of POST /broker/v1/auth.
  void BrokerAuth(broker::ConnectVerdict verdict);
  // A broker instance's cumulative login counts (the plugin's `$ota/stats/logins`).
  void DeviceLogins(const std::string& broker, int64_t started_at,
                    const broker::LoginCounts& counts) {
    device_logins_.Update(broker, started_at, counts);
  }
  void OperatorLogin(LoginResult result) { logins_[static_cast<size_t>(result)]++; }
  // One outermost transaction on the platform's write connection, BEGIN to COMMIT/ROLLBACK.
  void Transaction(double seconds, bool committed);

  // The route template of an operator API path, or "other".
  std::string RouteOf(const std::string& method, const std::string& path) const;

  // The whole exposition: these counters, and what `db` (a read connection) holds.
  std::string Render(Database& db) const;

 private:
  struct Route {
    std::vector<std::string> segments;  // "{...}" matches any one segment
    std::string text;
  };
  std::vector<Route> routes_;
  // (method, route) -> latency; built once, so lookups need no lock.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Histogram>> api_latency_;
  std::unique_ptr<std::atomic<uint64_t>[]> api_status_;       // by HTTP status 0..599
  std::unique_ptr<std::atomic<uint64_t>[]> download_status_;  // by HTTP status 0..599
  Histogram download_latency_;
  std::atomic<uint64_t> download_bytes_{0};
  std::atomic<uint64_t> messages_[std::size(kMessageKinds)] = {};
  std::atomic<uint64_t> presence_connects_{0}, presence_disconnects_{0};
  std::atomic<uint64_t> published_[4] = {};
  std::atomic<uint64_t> broker_auth_[broker::kConnectVerdictCount] = {};  // by ConnectVerdict
  DeviceLoginTotals device_logins_;
  std::atomic<uint64_t> logins_[3] = {};  // by LoginResult
  Histogram tx_commit_, tx_rollback_;
};

}  // namespace ota::server

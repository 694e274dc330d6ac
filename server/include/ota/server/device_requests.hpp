// Requests from the platform to one device over IoTDA's device-side protocol (docs/server.md,
// "Requests to devices"; docs/spec/device-requests.md): commands, property set and property
// get are synchronous (published at once, the caller waits for the device's answer or the
// timeout), messages down are asynchronous (queued in the outbox, delivered when the broker
// acknowledges them). Every request and its outcome is stored. An answer is matched by its
// request ID, its kind and the device whose topic it came on (the broker's ACL vouches for
// that), so one device can never answer for another.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ota/server/device_protocol.hpp"
#include "ota/server/outbox.hpp"
#include "ota/server/platform.hpp"

namespace ota::server {

inline constexpr int kDefaultRequestTimeout = 20;  // seconds, as IoTDA's synchronous commands
inline constexpr int kMaxRequestTimeout = 30;
// Synchronous requests waiting at once: each holds an operator API worker (cpp-httplib's pool
// has 8 here), so the rest of the API stays answerable.
inline constexpr size_t kMaxWaitingRequests = 4;
// Stored per device; older finished ones are dropped as new ones come.
inline constexpr int64_t kRequestsKeptPerDevice = 1000;
inline constexpr size_t kMaxRequestIdLength = 64;

// Our request IDs as they come back in a topic: 1..64 characters of A-Z a-z 0-9 _ - (ours are 32
// lowercase hex); anything else (wildcards, '/', odd bytes) names no request.
bool IsPlatformRequestId(std::string_view id);

class DeviceRequests {
 public:
  // Publishes at once (QoS 1); false when it could not (no broker connection).
  using PublishFn = std::function<bool(const Outgoing&)>;
  // Publishes committed outbox messages (Service::Send).
  using SendFn = std::function<void(const std::vector<QueuedMessage>&)>;
  DeviceRequests(Platform& platform, PublishFn publish, SendFn send);

  // The REST operations (bodies as in docs/server.md). They take the platform lock for each
  // step and never hold it while waiting: call them without it. ApiError for bad input (400,
  // before anything is sent), an unknown device (404), too many waiting (429), no broker (503).
  // Each returns the stored request (RowJson) with its status.
  nlohmann::json Command(const std::string& device_id, const nlohmann::json& body);
  nlohmann::json SetProperties(const std::string& device_id, const nlohmann::json& body);
  nlohmann::json GetProperties(const std::string& device_id, const nlohmann::json& body);
  nlohmann::json Message(const std::string& device_id, const nlohmann::json& body);

  // Under the platform lock. `kind` "" lists every kind; latest first.
  nlohmann::json List(const std::string& device_id, const std::string& kind, int64_t limit,
                      int64_t offset);
  nlohmann::json Get(const std::string& device_id, const std::string& request_id);

  // An answer from up.device_id, inside the caller's transaction (platform lock held). ApiError
  // refuses it (malformed, or no request of this kind and ID was sent to this device); a
  // duplicate answer is ignored (counted duplicate_responses).
  void OnResponse(const UpTopic& up, const std::string& payload, int64_t now);
  // Under the lock: requests nobody waits for any more (the server restarted) time out.
  void Tick(int64_t now);
  // Under the lock, before the outbox forgets them: messages the broker acknowledged, or that
  // the outbox gave up on.
  void OnOutboxAcked(const std::vector<int64_t>& outbox_ids, int64_t now);
  void OnOutboxExpired(const std::vector<int64_t>& outbox_ids, int64_t now);
  // The server stops: waiting requests stop waiting (and time out) so the API can stop.
  void StopWaiting();

 private:
  using Validator = std::function<void(const nlohmann::json& model)>;
  nlohmann::json Execute(DownKind kind, const std::string& device_id, const nlohmann::json& body,
                         int timeout_s, const Validator& validate);
  void Insert(const std::string& request_id, const std::string& device_id, DownKind kind,
              const std::string& payload, const std::string& status, int64_t now, int64_t deadline,
              int64_t outbox_id);
  nlohmann::json Load(const std::string& request_id);
  void Forget(const std::string& request_id);

  Platform& platform_;
  PublishFn publish_;
  SendFn send_;
  // Requests an HTTP handler waits for -> answered yet.
  std::mutex wait_mutex_;
  std::condition_variable answered_cv_;
  std::map<std::string, bool> waiting_;
  bool stopping_ = false;
};

}  // namespace ota::server

#include "ota/broker/presence.hpp"

#include <algorithm>
#include <utility>

namespace ota::broker {

const char* PresenceKindName(PresenceKind kind) {
  return kind == PresenceKind::kConnected ? "connected" : "disconnected";
}

std::string PresenceTopic(std::string_view device_id) {
  std::string topic(kPresenceTopicPrefix);
  topic += device_id;
  return topic;
}

std::string PresencePayload(const PresenceEvent& event) {
  std::string out = "{\"device_id\":\"";
  out += event.device_id;
  out += "\",\"event\":\"";
  out += PresenceKindName(event.kind);
  out += "\",\"seq\":";
  out += std::to_string(event.seq);
  out += ",\"at_ms\":";
  out += std::to_string(event.at_ms);
  out += "}";
  return out;
}

PresenceEvent PresenceTracker::Connected(const void* key, std::string device_id, int64_t now_us) {
  last_seq_ = std::max(last_seq_ + 1, static_cast<uint64_t>(std::max<int64_t>(now_us, 0)));
  connections_[key] = Connection{device_id, last_seq_};
  return PresenceEvent{std::move(device_id), PresenceKind::kConnected, last_seq_, now_us / 1000};
}

std::optional<PresenceEvent> PresenceTracker::Disconnected(const void* key, int64_t now_us) {
  const auto it = connections_.find(key);
  if (it == connections_.end()) return std::nullopt;
  PresenceEvent event{std::move(it->second.device_id), PresenceKind::kDisconnected, it->second.seq,
                      now_us / 1000};
  connections_.erase(it);
  return event;
}

}  // namespace ota::broker

// Presence events (docs/spec/broker-auth.md, "Presence events"): the broker tells the platform
// when a device's connection is accepted and when it goes away, on `$ota/presence/{device_id}`.
// Pure bookkeeping: no I/O, no clock (the caller passes the time), so the ordering rules can be
// tested without a broker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ota::broker {

inline constexpr std::string_view kPresenceTopicPrefix = "$ota/presence/";

enum class PresenceKind : uint8_t { kConnected, kDisconnected };
const char* PresenceKindName(PresenceKind kind);  // "connected" / "disconnected"

struct PresenceEvent {
  std::string device_id;
  PresenceKind kind = PresenceKind::kConnected;
  uint64_t seq = 0;   // the connection's sequence number (see PresenceTracker)
  int64_t at_ms = 0;  // Unix milliseconds of the event
};

// `$ota/presence/{device_id}`.
std::string PresenceTopic(std::string_view device_id);
// `{"device_id":"...","event":"connected","seq":N,"at_ms":M}`. The device ID is a valid one
// (IsValidDeviceId), so it needs no JSON escaping.
std::string PresencePayload(const PresenceEvent& event);

// Which accepted device connection is which. A connection is named by an opaque key (the
// broker's client pointer), valid from its accepted login until its disconnect.
//
// Every accepted login gets seq = max(previous seq + 1, now in Unix microseconds): strictly
// increasing while the broker runs, and, because it never runs ahead of the wall clock unless
// logins come faster than one per microsecond, greater after a restart than every seq the
// previous broker process issued. The disconnect of a connection carries the seq of its login.
class PresenceTracker {
 public:
  // A login was accepted. Replaces any entry for `key` (the caller reports that one as
  // disconnected first: see Disconnected).
  PresenceEvent Connected(const void* key, std::string device_id, int64_t now_us);
  // A connection went away: its "disconnected" event, or nullopt when `key` is not an accepted
  // device connection (the platform, a refused login, or a disconnect already reported).
  // Forgets `key`.
  std::optional<PresenceEvent> Disconnected(const void* key, int64_t now_us);

  size_t size() const { return connections_.size(); }
  uint64_t last_seq() const { return last_seq_; }

 private:
  struct Connection {
    std::string device_id;
    uint64_t seq;
  };
  std::unordered_map<const void*, Connection> connections_;
  uint64_t last_seq_ = 0;
};

}  // namespace ota::broker

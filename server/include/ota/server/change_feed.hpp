// A change feed for live views (docs/server.md, "Live updates"): a sequence number that moves on
// after every committed change the operator can see (an API write, a device's presence, version
// or upgrade progress, the task scheduler moving devices), and a condition to wait on for it.
// It says only *that* something changed; a waiter reads what it shows again and sends what
// differs. Bumps are cheap and may be spurious.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ota::server {

class ChangeFeed {
 public:
  // The current sequence number.
  uint64_t seq() const;
  // Something changed (after its commit): every waiter wakes.
  void Bump();
  // Wakes every waiter without a change, so it can look at its own stop flag.
  void Wake();
  // Until the sequence number differs from `seen`, `stop` is set, or `deadline` passed;
  // returns the sequence number then.
  uint64_t WaitUntil(uint64_t seen, std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>& stop) const;
  // Until `stop` is set or `deadline` passed (coalescing a burst of changes); false on stop.
  bool PauseUntil(std::chrono::steady_clock::time_point deadline,
                  const std::atomic<bool>& stop) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  uint64_t seq_ = 0;
};

}  // namespace ota::server

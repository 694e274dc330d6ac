#include "ota/server/change_feed.hpp"

namespace ota::server {

uint64_t ChangeFeed::seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seq_;
}

void ChangeFeed::Bump() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++seq_;
  }
  cv_.notify_all();
}

void ChangeFeed::Wake() {
  // Under the mutex: a waiter between its predicate check and its wait cannot miss it.
  { std::lock_guard<std::mutex> lock(mutex_); }
  cv_.notify_all();
}

uint64_t ChangeFeed::WaitUntil(uint64_t seen, std::chrono::steady_clock::time_point deadline,
                               const std::atomic<bool>& stop) const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return seq_ != seen || stop.load(); });
  return seq_;
}

bool ChangeFeed::PauseUntil(std::chrono::steady_clock::time_point deadline,
                            const std::atomic<bool>& stop) const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return stop.load(); });
  return !stop.load();
}

}  // namespace ota::server

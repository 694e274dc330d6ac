// Downloads under way per device: one device (or a leaked token) cannot take every download
// worker. A slot is held until its response has been written (or abandoned): the route keeps
// it in the response's content provider.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ota::server {

inline constexpr int kMaxDownloadsPerDevice = 4;

class DownloadSlots {
 public:
  class Slot {
   public:
    Slot(DownloadSlots* slots, std::string device) : slots_(slots), device_(std::move(device)) {}
    ~Slot() { slots_->Release(device_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    DownloadSlots* slots_;
    std::string device_;
  };

  // Null when the device already has kMaxDownloadsPerDevice under way.
  std::shared_ptr<Slot> Take(const std::string& device) {
    std::lock_guard<std::mutex> g(mu_);
    int& n = active_[device];
    if (n >= kMaxDownloadsPerDevice) return nullptr;
    ++n;
    return std::make_shared<Slot>(this, device);
  }
  int active(const std::string& device) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = active_.find(device);
    return it == active_.end() ? 0 : it->second;
  }

 private:
  void Release(const std::string& device) {
    std::lock_guard<std::mutex> g(mu_);
    if (--active_[device] <= 0) active_.erase(device);
  }
  std::mutex mu_;
  std::map<std::string, int> active_;
};

}  // namespace ota::server

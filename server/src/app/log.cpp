#include "ota/server/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>

namespace ota::server {

namespace {

std::atomic<LogFormat> format{LogFormat::kText};
std::atomic<std::FILE*> stream{nullptr};
std::mutex write_lock;  // one whole line at a time

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    default:
      return "error";
  }
}

// RFC 3339 UTC with milliseconds: what log collectors parse without configuration.
std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the compiler imagines
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void SetLogFormat(LogFormat f) {
  format = f;
}

LogFormat GetLogFormat() {
  return format;
}

void SetLogStream(std::FILE* s) {
  stream = s;
}

void Log(LogLevel level, const std::string& message, const LogContext& context) {
  std::string line;
  if (format == LogFormat::kJson) {
    nlohmann::json j = {{"ts", Timestamp()}, {"level", LevelName(level)}, {"msg", message}};
    if (!context.device_id.empty()) j["device_id"] = context.device_id;
    if (context.task_id != 0) j["task_id"] = context.task_id;
    // Device IDs and reasons may carry bytes from devices: never an invalid line.
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = "ota-server: " + message;
  }
  line += '\n';
  std::FILE* out = stream.load();
  if (out == nullptr) out = stderr;
  std::lock_guard<std::mutex> guard(write_lock);
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace ota::server

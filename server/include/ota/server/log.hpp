// The server's log lines (docs/server.md, "Logs"): plain text on stderr by default, or with
// `serve --log-format json` one JSON object per line {ts, level, msg, device_id?, task_id?}.
// Callers never pass secrets (device secrets, tokens, passwords) in a message or field.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ota::server {

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarning, kError };

// Process-wide; set once at startup (serve --log-format).
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();
// Where lines go (default stderr); tests point it at a file.
void SetLogStream(std::FILE* stream);

// What a line is about, when it is about one device or task (empty / 0: not).
struct LogContext {
  std::string device_id;
  int64_t task_id = 0;
};

void Log(LogLevel level, const std::string& message, const LogContext& context = {});

}  // namespace ota::server

// What the `ota` tool does with the terminal: passwords without echo, progress only when a
// person is watching, files written whole or not at all.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ota::cli {

// Exit codes (documented in `ota --help` and docs/tools/ota.md).
enum Exit : int {
  kExitOk = 0,
  kExitRefused = 1,  // verify/apply: the package is not valid or would be refused
  kExitUsage = 2,    // bad command line
  kExitInput = 3,    // an input is missing, unreadable or wrong (file, password, key, image)
  kExitOutput = 4,   // an output could not be written
};

inline constexpr const char* kPasswordEnv = "OTA_KEY_PASSWORD";

// The key password: from `password_file` (its first line) if given, else $OTA_KEY_PASSWORD,
// else asked on the terminal (twice when `confirm`). nullopt with `error` set if none can be had.
std::optional<std::string> GetPassword(const std::string& password_file, bool confirm,
                                       const std::string& prompt, std::string* error);

std::optional<std::vector<uint8_t>> ReadFile(const std::filesystem::path& path, std::string* error);
// Writes to a temporary file beside `path`, then renames it over `path`: a reader never sees
// a half-written file, and a failed write leaves what was there.
bool WriteFileAtomic(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                     std::string* error);

bool StdoutIsTerminal();

// Stage progress on a terminal: "[###-----] 2/4 encoding (1.2 s)"; silent otherwise.
class Progress {
 public:
  Progress(std::string task, int stages);
  ~Progress();
  void Stage(const std::string& what);
  void Done();
  // Clears the bar of the progress being drawn, if any (before an error is printed).
  static void ClearActive();

 private:
  void Draw();
  void Clear();
  static Progress* active_progress_;
  std::string task_;
  int stages_;
  int current_ = 0;
  std::string what_;
  bool active_;
  bool done_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string Hex(std::span<const uint8_t> bytes);

}  // namespace ota::cli

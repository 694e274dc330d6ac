#include "terminal.hpp"

#include "ota/host/hex.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace ota::cli {

namespace {

// Reads one line from the controlling terminal with echo off.
std::optional<std::string> AskTerminal(const std::string& prompt) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  termios old_mode{};
  const bool is_tty = ::tcgetattr(fd, &old_mode) == 0;
  if (!is_tty) {
    ::close(fd);
    return std::nullopt;
  }
  termios quiet = old_mode;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  ::tcsetattr(fd, TCSAFLUSH, &quiet);
  if (::write(fd, prompt.data(), prompt.size()) < 0) {
    // The prompt is a courtesy; reading still works.
  }
  std::string line;
  char c = 0;
  while (::read(fd, &c, 1) == 1 && c != '\n')
    line.push_back(c);
  ::tcsetattr(fd, TCSAFLUSH, &old_mode);
  ::close(fd);
  return line;
}

}  // namespace

std::optional<std::string> GetPassword(const std::string& password_file, bool confirm,
                                       const std::string& prompt, std::string* error) {
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!in) {
      *error = password_file + ": " + std::strerror(errno);
      return std::nullopt;
    }
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      *error = password_file + ": the first line (the password) is empty";
      return std::nullopt;
    }
    return line;
  }
  if (const char* env = std::getenv(kPasswordEnv); env != nullptr && env[0] != '\0') {
    return std::string(env);
  }
  std::optional<std::string> first = AskTerminal(prompt);
  if (!first) {
    *error =
        std::string("no password: no terminal to ask on; use --password-file or ") + kPasswordEnv;
    return std::nullopt;
  }
  if (confirm) {
    const std::optional<std::string> again = AskTerminal("Repeat the password: ");
    if (!again || *again != *first) {
      *error = "the two passwords differ";
      return std::nullopt;
    }
  }
  return first;
}

std::optional<std::vector<uint8_t>> ReadFile(const std::filesystem::path& path,
                                             std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = path.string() + ": is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) {
    *error = path.string() + ": read error";
    return std::nullopt;
  }
  return bytes;
}

bool WriteFileAtomic(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                     std::string* error) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::string tmpl = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    *error = path.string() + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  bool ok = true;
  while (ok && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0;
  const int saved = errno;
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmpl.c_str(), path.c_str()) == 0) return true;
  *error = path.string() + ": " + std::strerror(ok ? errno : saved);
  ::unlink(tmpl.c_str());
  return false;
}

bool StdoutIsTerminal() {
  return ::isatty(STDOUT_FILENO) == 1;
}

Progress* Progress::active_progress_ = nullptr;

Progress::Progress(std::string task, int stages)
    : task_(std::move(task)),
      stages_(stages),
      active_(StdoutIsTerminal()),
      start_(std::chrono::steady_clock::now()) {
  if (active_) active_progress_ = this;
}

// Left without Done(): the work failed; the bar goes, nothing claims "done".
Progress::~Progress() {
  Clear();
}

void Progress::ClearActive() {
  if (active_progress_ != nullptr) active_progress_->Clear();
}

void Progress::Clear() {
  if (active_progress_ == this) active_progress_ = nullptr;
  if (!active_) return;
  if (current_ > 0) {
    std::fputs("\r\033[K", stdout);
    std::fflush(stdout);
  }
  active_ = false;
}

void Progress::Stage(const std::string& what) {
  ++current_;
  what_ = what;
  Draw();
}

void Progress::Done() {
  if (!active_) return;
  current_ = stages_;
  what_ = "done";
  done_ = true;
  Draw();
  std::fputs("\n", stdout);
  std::fflush(stdout);
  active_ = false;
  if (active_progress_ == this) active_progress_ = nullptr;
}

void Progress::Draw() {
  if (!active_) return;
  constexpr int kWidth = 20;
  // A stage's share fills when it is over, not when it starts.
  const int finished = done_ ? stages_ : current_ - 1;
  const int filled = stages_ > 0 ? kWidth * finished / stages_ : kWidth;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::printf("\r\033[K%s [%s%s] %d/%d %s (%.1f s)", task_.c_str(),
              std::string(filled, '#').c_str(), std::string(kWidth - filled, '-').c_str(), current_,
              stages_, what_.c_str(), secs);
  std::fflush(stdout);
}

std::string Hex(std::span<const uint8_t> bytes) {
  return host::ToHex(bytes);
}

}  // namespace ota::cli

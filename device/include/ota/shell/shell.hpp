// A line shell for a serial console (docs/agent.md, "Shell"): bytes in, one command per line,
// a fixed table of commands. The board feeds it USART1's bytes; ota-device feeds it stdin's
// lines. No heap: the line and the argument vector are members.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::shell {

inline constexpr size_t kLineMax = 320;  // `provision` with 64-character fields; longer: refused
inline constexpr size_t kArgsMax = 8;

// Where the shell and its commands print.
class Output {
 public:
  virtual void Write(const char* text) = 0;
  // printf-style, formatted into a 256-byte buffer (longer output is cut).
  void Printf(const char* format, ...) __attribute__((format(printf, 2, 3)));

 protected:
  ~Output() = default;
};

struct Command {
  const char* name;
  const char* usage;  // "radio <value>": shown by help
  // argv[0] is the command's name. A failed status prints "<name>: <status>".
  Status (*run)(void* context, Span<char* const> argv, Output& out);
};

class Shell {
 public:
  // `commands` and `context` must outlive the shell; `echo` repeats typed characters (a
  // terminal on a UART); ota-device's stdin echoes by itself.
  Shell(Span<const Command> commands, void* context, Output& out, bool echo);

  // One received byte: CR or LF ends the line and runs it; backspace/DEL edits.
  void Feed(char c);
  // Runs one line (modified in place: split into words).
  void Execute(char* line);
  void Prompt();

 private:
  void Help();

  Span<const Command> commands_;
  void* context_;
  Output& out_;
  bool echo_;
  char line_[kLineMax + 1] = {};
  size_t len_ = 0;
  bool overflow_ = false;
  char last_ = 0;
};

}  // namespace ota::shell

#include "ota/shell/shell.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace ota::shell {

void Output::Printf(const char* format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  Write(text);
}

Shell::Shell(Span<const Command> commands, void* context, Output& out, bool echo)
    : commands_(commands), context_(context), out_(out), echo_(echo) {}

void Shell::Prompt() {
  out_.Write("> ");
}

void Shell::Feed(char c) {
  const char last = last_;
  last_ = c;
  if (c == '\n' && last == '\r') return;  // CR LF is one end of line
  if (c == '\r' || c == '\n') {
    if (echo_) out_.Write("\n");
    if (overflow_) {
      out_.Printf("line longer than %u characters: ignored\n", static_cast<unsigned>(kLineMax));
    } else {
      line_[len_] = '\0';
      Execute(line_);
    }
    len_ = 0;
    overflow_ = false;
    if (echo_) Prompt();
    return;
  }
  if (c == '\b' || c == 0x7f) {
    if (len_ > 0) {
      --len_;
      if (echo_) out_.Write("\b \b");
    }
    return;
  }
  if (c == '\t') c = ' ';
  if (c < ' ' || c > '~') return;  // other control bytes and non-ASCII: dropped
  if (len_ >= kLineMax) {
    overflow_ = true;
    return;
  }
  line_[len_++] = c;
  if (echo_) {
    const char text[2] = {c, '\0'};
    out_.Write(text);
  }
}

void Shell::Help() {
  out_.Write("commands:\n");
  for (const Command& c : commands_)
    out_.Printf("  %s\n", c.usage);
  out_.Write("  help\n");
}

void Shell::Execute(char* line) {
  char* argv[kArgsMax];
  size_t argc = 0;
  for (char* p = line; *p != '\0';) {
    while (*p == ' ' || *p == '\t')
      *p++ = '\0';
    if (*p == '\0') break;
    if (argc == kArgsMax) {
      out_.Printf("more than %u words: ignored\n", static_cast<unsigned>(kArgsMax));
      return;
    }
    argv[argc++] = p;
    while (*p != '\0' && *p != ' ' && *p != '\t')
      ++p;
  }
  if (argc == 0) return;
  if (std::strcmp(argv[0], "help") == 0) {
    Help();
    return;
  }
  for (const Command& c : commands_) {
    if (std::strcmp(argv[0], c.name) != 0) continue;
    const Status s = c.run(context_, Span<char* const>(argv, argc), out_);
    if (!s.ok()) out_.Printf("%s: %s\n", c.name, s.name());
    return;
  }
  out_.Printf("unknown command '%s' (help lists them)\n", argv[0]);
}

}  // namespace ota::shell

// The console shell: line editing, word splitting, dispatch, and the refusals.
#include "ota/shell/shell.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ota::shell {
namespace {

class StringOutput final : public Output {
 public:
  void Write(const char* text) override { text_ += text; }
  std::string Take() { return std::exchange(text_, std::string()); }

 private:
  std::string text_;
};

struct Calls {
  std::vector<std::vector<std::string>> argv;
};

Status Record(void* context, Span<char* const> argv, Output& out) {
  std::vector<std::string> words(argv.begin(), argv.end());
  static_cast<Calls*>(context)->argv.push_back(words);
  out.Write("ran\n");
  return Status::Ok();
}

Status Fail(void*, Span<char* const>, Output&) {
  return StatusCode::kInvalidArgument;
}

constexpr Command kCommands[] = {
    {"set", "set <a> <b>   record the words", Record},
    {"fail", "fail          always fails", Fail},
};

void Type(Shell& shell, const std::string& text) {
  for (const char c : text)
    shell.Feed(c);
}

TEST(Shell, Line_SplitIntoWordsAndDispatched) {
  Calls calls;
  StringOutput out;
  Shell shell(Span<const Command>(kCommands), &calls, out, false);
  Type(shell, "  set  radio\t42 \r\n");
  ASSERT_EQ(calls.argv.size(), 1u) << "CR LF is one end of line";
  EXPECT_EQ(calls.argv[0], (std::vector<std::string>{"set", "radio", "42"}));
  EXPECT_EQ(out.Take(), "ran\n");
}

TEST(Shell, Echo_RepeatsTypingAndHonoursBackspace) {
  Calls calls;
  StringOutput out;
  Shell shell(Span<const Command>(kCommands), &calls, out, true);
  Type(shell, "sex\bt 1\x7f");
  Type(shell, "2\r");
  ASSERT_EQ(calls.argv.size(), 1u);
  EXPECT_EQ(calls.argv[0], (std::vector<std::string>{"set", "2"}));
  EXPECT_EQ(out.Take(), "sex\b \bt 1\b \b2\nran\n> ");
}

TEST(Shell, UnknownCommandAndFailure_AreSaid) {
  Calls calls;
  StringOutput out;
  Shell shell(Span<const Command>(kCommands), &calls, out, false);
  Type(shell, "frobnicate\n");
  EXPECT_EQ(out.Take(), "unknown command 'frobnicate' (help lists them)\n");
  Type(shell, "fail\n");
  EXPECT_EQ(out.Take(), "fail: invalid-argument\n");
  Type(shell, "help\n");
  EXPECT_EQ(out.Take(),
            "commands:\n  set <a> <b>   record the words\n  fail          always fails\n"
            "  help\n");
}

TEST(Shell, OverlongLineAndTooManyWords_AreRefusedNotCut) {
  Calls calls;
  StringOutput out;
  Shell shell(Span<const Command>(kCommands), &calls, out, false);
  Type(shell, "set " + std::string(kLineMax, 'x') + "\n");
  EXPECT_TRUE(calls.argv.empty());
  EXPECT_EQ(out.Take(), "line longer than " + std::to_string(kLineMax) + " characters: ignored\n");
  Type(shell, "set 1 2 3 4 5 6 7 8\n");
  EXPECT_TRUE(calls.argv.empty());
  EXPECT_EQ(out.Take(), "more than 8 words: ignored\n");
  Type(shell, "set 1 2 3 4 5 6 7\n");
  ASSERT_EQ(calls.argv.size(), 1u) << "the shell works on after a refusal";
}

TEST(Shell, ControlAndNonAsciiBytes_AreDropped) {
  Calls calls;
  StringOutput out;
  Shell shell(Span<const Command>(kCommands), &calls, out, false);
  Type(shell,
       "s\x01"
       "e\x1b\xc3t\n");
  ASSERT_EQ(calls.argv.size(), 1u);
  EXPECT_EQ(calls.argv[0][0], "set");
}

}  // namespace
}  // namespace ota::shell

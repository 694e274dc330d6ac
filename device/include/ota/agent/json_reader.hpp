// Reading the platform's JSON with a fixed token table (jsmn, Debian's libjsmn-dev): no heap,
// every value copied into a buffer the caller sizes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::agent {

class JsonReader {
 public:
  static constexpr int kMaxTokens = 64;

  // kCorrupt if `text` is not JSON or has more than kMaxTokens tokens.
  Status Parse(const char* text, size_t len);

  // Token index of `key` in the object at token `object` (0 = the root), or -1.
  int Find(int object, const char* key) const;
  // Index of element `i` of the array at token `array`, or -1.
  int Element(int array, int i) const;
  bool IsString(int token) const;
  bool IsObject(int token) const;
  bool IsArray(int token) const;
  // Copies a string value (unescaped only for \" \\ \/; others refused) into `out` with a NUL.
  Status String(int token, Span<char> out) const;
  Result<int64_t> Integer(int token) const;
  // True if the string at `token` equals `s`.
  bool Equals(int token, const char* s) const;

 private:
  int Skip(int token) const;  // index of the token after `token` and its children
  struct Token {
    uint8_t type;
    int start, end, size;
  };
  const char* text_ = nullptr;
  int count_ = 0;
  Token tokens_[kMaxTokens] = {};
};

}  // namespace ota::agent

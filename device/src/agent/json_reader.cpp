#include "ota/agent/json_reader.hpp"

#include <cstring>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

namespace ota::agent {

Status JsonReader::Parse(const char* text, size_t len) {
  jsmn_parser parser;
  jsmntok_t raw[kMaxTokens];
  jsmn_init(&parser);
  const int n = jsmn_parse(&parser, text, len, raw, kMaxTokens);
  if (n <= 0) return StatusCode::kCorrupt;
  text_ = text;
  count_ = n;
  for (int i = 0; i < n; ++i) {
    tokens_[i] = {static_cast<uint8_t>(raw[i].type), raw[i].start, raw[i].end, raw[i].size};
  }
  return Status::Ok();
}

int JsonReader::Skip(int token) const {
  // A token's descendants follow it and lie inside its text: the first token that starts past
  // its end is its next sibling. A loop, not recursion: the stack stays bounded whatever the
  // nesting (scripts/stack-bound.py refuses recursion).
  int next = token + 1;
  while (next < count_ && tokens_[next].start < tokens_[token].end)
    ++next;
  return next;
}

int JsonReader::Find(int object, const char* key) const {
  if (object < 0 || object >= count_ || tokens_[object].type != JSMN_OBJECT) return -1;
  int t = object + 1;
  for (int i = 0; i < tokens_[object].size && t + 1 < count_; ++i) {
    if (Equals(t, key)) return t + 1;
    t = Skip(t + 1);
  }
  return -1;
}

int JsonReader::Element(int array, int i) const {
  if (array < 0 || array >= count_ || tokens_[array].type != JSMN_ARRAY) return -1;
  if (i < 0 || i >= tokens_[array].size) return -1;
  int t = array + 1;
  for (int k = 0; k < i && t < count_; ++k)
    t = Skip(t);
  return t < count_ ? t : -1;
}

bool JsonReader::IsString(int token) const {
  return token >= 0 && token < count_ && tokens_[token].type == JSMN_STRING;
}
bool JsonReader::IsObject(int token) const {
  return token >= 0 && token < count_ && tokens_[token].type == JSMN_OBJECT;
}
bool JsonReader::IsArray(int token) const {
  return token >= 0 && token < count_ && tokens_[token].type == JSMN_ARRAY;
}

Status JsonReader::String(int token, Span<char> out) const {
  if (!IsString(token) || out.empty()) return StatusCode::kCorrupt;
  size_t n = 0;
  for (int i = tokens_[token].start; i < tokens_[token].end; ++i) {
    char c = text_[i];
    if (c == '\\') {
      if (++i >= tokens_[token].end) return StatusCode::kCorrupt;
      c = text_[i];
      if (c != '"' && c != '\\' && c != '/') return StatusCode::kUnsupported;
    }
    if (n + 1 >= out.size()) return StatusCode::kTooLarge;
    out[n++] = c;
  }
  out[n] = '\0';
  return Status::Ok();
}

Result<int64_t> JsonReader::Integer(int token) const {
  if (token < 0 || token >= count_ || tokens_[token].type != JSMN_PRIMITIVE) {
    return StatusCode::kCorrupt;
  }
  int i = tokens_[token].start;
  const int end = tokens_[token].end;
  bool negative = false;
  if (i < end && text_[i] == '-') {
    negative = true;
    ++i;
  }
  if (i == end || end - i > 18) return StatusCode::kCorrupt;
  int64_t v = 0;
  for (; i < end; ++i) {
    if (text_[i] < '0' || text_[i] > '9') return StatusCode::kCorrupt;
    v = v * 10 + (text_[i] - '0');
  }
  return negative ? -v : v;
}

bool JsonReader::Equals(int token, const char* s) const {
  if (!IsString(token)) return false;
  const size_t len = static_cast<size_t>(tokens_[token].end - tokens_[token].start);
  return std::strlen(s) == len && std::memcmp(text_ + tokens_[token].start, s, len) == 0;
}

}  // namespace ota::agent

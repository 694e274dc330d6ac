// The delta patch format, version 1 (docs/spec/delta.md): a 16-byte plain header, then one
// range-coded stream of bsdiff-style blocks. The probability model is defined here, once, and
// used by both the host encoder and the device decoder.
#pragma once

#include <cstdint>

#include "ota/codec/prob.hpp"

namespace ota::codec {

inline constexpr uint32_t kDeltaMagic = 0x5044544F;  // bytes "OTDP"
inline constexpr uint8_t kDeltaFormat = 1;
inline constexpr uint32_t kDeltaHeaderSize = 16;
// Header: 0 u32 magic, 4 u8 format, 5 u8 flags (0), 6 u16 reserved (0), 8 u32 old_size,
// 12 u32 new_size. Little-endian.

// Numbers (block lengths, seeks) are coded as the bit length of value+1 through a 6-bit tree,
// then the bits below the leading one: the top kNumberModelledBits through a tree per bit
// length, the rest as direct bits.
inline constexpr int kNumberLengthBits = 6;
inline constexpr int kNumberModelledBits = 2;
inline constexpr int kLiteralContextBits = 3;  // literal context: previous byte's top bits
inline constexpr int kDiffHistoryBits = 4;     // zero/non-zero flags of the previous diffs
inline constexpr int kDiffHistoryContexts = 1 << kDiffHistoryBits;

enum NumberKind : uint8_t { kDiffLength = 0, kExtraLength = 1, kSeekMagnitude = 2, kNumberKinds };

struct NumberModel {
  Prob length[1 << kNumberLengthBits];
  Prob high[33][1 << kNumberModelledBits];
};

// The literal model for a byte at new-image position `pos` after byte `prev`. (Position
// lanes helped the Thumb-2 pairs and hurt the Xtensa one by about 2%: not used, for now.)
inline uint32_t LiteralContext([[maybe_unused]] uint32_t pos, uint8_t prev) {
  return static_cast<uint32_t>(prev >> (8 - kLiteralContextBits));
}

struct DeltaModel {
  NumberModel numbers[kNumberKinds];
  Prob seek_negative;
  // Diff bytes (new - old): zero or not, in the context of the two previous flags; a non-zero
  // diff is often the same as the previous non-zero one (a shifted pointer), else a byte.
  // Contexts include the byte's position in a 32-bit word: changed pointers and branch
  // offsets differ in the same lanes.
  Prob diff_zero[kDiffHistoryContexts][4];
  Prob diff_repeat[4];
  Prob diff_byte[4][256];
  // Extra (literal) bytes, in the context of the previous new byte's top bits.
  Prob literal[1 << kLiteralContextBits][256];
};

}  // namespace ota::codec

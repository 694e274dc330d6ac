// The delta patch format, version 2 (docs/spec/delta.md): a 16-byte plain header, then one
// range-coded stream of bsdiff-style blocks whose literal runs are LZ-coded (copies from the
// old image or from the part of the new image already produced). The probability model and
// the small state machines are defined here, once, and used by both the host encoder and the
// device decoder.
#pragma once

#include <cstdint>

#include "ota/codec/prob.hpp"

namespace ota::codec {

inline constexpr uint32_t kDeltaMagic = 0x5044544F;  // bytes "OTDP"
inline constexpr uint8_t kDeltaFormat = 2;
inline constexpr uint32_t kDeltaHeaderSize = 16;
// Header: 0 u32 magic, 4 u8 format, 5 u8 flags (0), 6 u16 reserved (0), 8 u32 old_size,
// 12 u32 new_size. Little-endian.

// Numbers (block lengths, seeks, long copy lengths) are coded as the bit length of value+1
// through a 6-bit tree, then the bits below the leading one: the top kNumberModelledBits
// through a tree per bit length, the rest as direct bits.
inline constexpr int kNumberLengthBits = 6;
inline constexpr int kNumberModelledBits = 2;
inline constexpr int kNumberAdaptShift = 4;    // number tables: final rate 1/16
inline constexpr int kLiteralContextBits = 3;  // literal context: previous byte's top bits
inline constexpr int kDiffHistoryBits = 4;     // zero/non-zero flags of the previous diffs
inline constexpr int kDiffHistoryContexts = 1 << kDiffHistoryBits;
inline constexpr int kDiffAdaptShift = 4;  // diff-run tables follow faster (final rate 1/16)

enum NumberKind : uint8_t {
  kDiffLength = 0,
  kExtraLength = 1,
  kSeekMagnitude = 2,
  kMatchLengthHigh = 3,  // copy length - kLenHighBase, new distance
  kRepLengthHigh = 4,    // copy length - kLenHighBase, repeated distance
  kNumberKinds
};

// Copies inside literal runs. The source is the "virtual buffer" V = old image followed by
// the new image: a copy at new position `pos` with distance `d` (1 <= d <= old_size + pos)
// reads V[old_size + pos - d + i]; so small distances reach back into the new image (read
// back from the slot it is written to) and larger ones into the old image.
inline constexpr uint32_t kMinMatch = 2;
inline constexpr uint32_t kLenLowSymbols = 8;  // lengths 2..9
inline constexpr uint32_t kLenMidSymbols = 8;  // lengths 10..17
inline constexpr uint32_t kLenHighBase = kMinMatch + kLenLowSymbols + kLenMidSymbols;  // 18
inline constexpr int kPosStates = 4;  // contexts by new position mod 4
inline constexpr int kStates = 12;    // kinds of the last few items (LZMA's)
inline constexpr int kLenStates = 4;  // distance-slot contexts by length
inline constexpr int kDistSlotBits = 6;
inline constexpr uint32_t kEndModelledSlot = 14;  // slots 4..13: low bits modelled
inline constexpr int kAlignBits = 4;              // slots >= 14: lowest bits modelled

// State transitions after each kind of item (states 0..6 follow a literal).
inline constexpr uint8_t StateAfterLiteral(uint8_t s) {
  return s < 4 ? 0 : (s < 10 ? static_cast<uint8_t>(s - 3) : static_cast<uint8_t>(s - 6));
}
inline constexpr uint8_t StateAfterMatch(uint8_t s) {
  return s < 7 ? 7 : 10;
}
inline constexpr uint8_t StateAfterRep(uint8_t s) {
  return s < 7 ? 8 : 11;
}
inline constexpr uint8_t StateAfterShortRep(uint8_t s) {
  return s < 7 ? 9 : 11;
}

// Distance slot of d0 = distance - 1: d0 itself below 4, else 2 * (bit length - 1) plus the
// bit below the leading one. The remaining `DistFooterBits` bits follow.
inline constexpr uint32_t DistSlot(uint32_t d0) {
  if (d0 < 4) return d0;
  uint32_t n = 31;
  while (((d0 >> n) & 1u) == 0)
    --n;
  return 2 * n + ((d0 >> (n - 1)) & 1u);
}
inline constexpr int DistFooterBits(uint32_t slot) {
  return slot < 4 ? 0 : static_cast<int>(slot / 2) - 1;
}
inline constexpr uint32_t DistBase(uint32_t slot) {
  return slot < 4 ? slot : (2u | (slot & 1u)) << DistFooterBits(slot);
}
// Slots 4..13 have their footer in a bit tree of 2^DistFooterBits probabilities, one after
// another in DeltaModel::dist_footer, from this index.
inline constexpr uint32_t DistFooterOffset(uint32_t slot) {
  return (1u << (slot / 2)) - 4 + (slot & 1u) * (1u << (slot / 2 - 1));
}
inline constexpr uint32_t kDistFooterProbs = DistFooterOffset(kEndModelledSlot);  // 124

// Header flags: which units of diff runs are predicted through the displacement map
// (docs/spec/delta.md, "Predicted units"). A patch with any of them starts with the map.
inline constexpr uint8_t kFlagPredictBranches = 1;  // Thumb-2 BL: its target moves with the map
inline constexpr uint8_t kFlagPredictPointers = 2;  // absolute pointers into the image
inline constexpr uint8_t kFlagPredictCalls = 16;    // Xtensa CALLn
inline constexpr uint8_t kPredictFlags =
    kFlagPredictBranches | kFlagPredictPointers | kFlagPredictCalls;
inline constexpr int kLiteralModeShift = 2;  // bits 2..3: literal context mode 0..2
inline constexpr uint8_t kLiteralModeMask = 3 << kLiteralModeShift;
inline constexpr uint8_t kLiteralModes = 3;
inline constexpr uint8_t kKnownFlags = kPredictFlags | kLiteralModeMask;
inline constexpr uint32_t kMaxMapEntries = 320;
inline constexpr uint32_t kMinUnit = 3;  // bytes of the shortest predicted unit

enum class UnitKind : uint8_t { kNone, kPointer, kBranch, kCall };

inline uint32_t UnitLength(UnitKind kind) {
  return kind == UnitKind::kNone ? 0 : (kind == UnitKind::kCall ? 3 : 4);
}

// What the old bytes at old-image offset `old_pos` (`avail` of them, 3 or 4) are. `base` is
// the address the images run at (pointers only). `xtensa_next` is the old offset of the next
// Xtensa instruction as far as the parse of the old bytes knows (updated here).
inline UnitKind ClassifyUnit(uint8_t flags, uint32_t base, uint32_t old_size, const uint8_t* old,
                             uint32_t avail, uint32_t old_pos, uint32_t* xtensa_next) {
  if (avail >= 4 && (flags & kFlagPredictPointers) != 0 && (old_pos & 3u) == 0) {
    const uint32_t x = static_cast<uint32_t>(old[0] | (old[1] << 8) | (old[2] << 16)) |
                       (static_cast<uint32_t>(old[3]) << 24);
    if (x - base < old_size) return UnitKind::kPointer;
  }
  // BL with J1 = J2 = 1 (targets within +-4 MB): hw1 = 11110 S imm10, hw2 = 11111 imm11.
  if (avail >= 4 && (flags & kFlagPredictBranches) != 0 && (old_pos & 1u) == 0 &&
      (old[1] & 0xF8) == 0xF0 && (old[3] & 0xF8) == 0xF8) {
    return UnitKind::kBranch;
  }
  if ((flags & kFlagPredictCalls) == 0) return UnitKind::kNone;
  // Xtensa: instructions are 2 bytes if op0 (the low 4 bits of the first byte) >= 8, else 3.
  // The parse restarts wherever the old position is not within the instruction it expects.
  if (old_pos != *xtensa_next) {
    if (old_pos < *xtensa_next && *xtensa_next - old_pos < 3) return UnitKind::kNone;
    *xtensa_next = old_pos;
  }
  const uint32_t op0 = old[0] & 15u;
  *xtensa_next = old_pos + (op0 >= 8 ? 2 : 3);
  return op0 == 5 ? UnitKind::kCall : UnitKind::kNone;
}

// The image offset a unit of `kind` at offset `pos` refers to (may be outside the image).
inline int64_t UnitTarget(UnitKind kind, uint32_t base, const uint8_t* b, uint32_t pos) {
  const uint32_t word = static_cast<uint32_t>(b[0] | (b[1] << 8) | (b[2] << 16)) |
                        (kind == UnitKind::kCall ? 0u : static_cast<uint32_t>(b[3]) << 24);
  switch (kind) {
    case UnitKind::kPointer:
      return static_cast<int32_t>(word - base);
    case UnitKind::kBranch: {
      // The offset is the sign-extended S:imm10:imm11, times 2, from the instruction + 4.
      const uint32_t imm = ((b[1] & 7u) << 19) | (uint32_t{b[0]} << 11) | ((b[3] & 7u) << 8) | b[2];
      return int64_t{pos} + 4 + (static_cast<int32_t>(imm << 10) >> 9);
    }
    case UnitKind::kCall:  // CALLn: (pc & ~3) + sign-extended offset18 * 4 + 4
      return int64_t{pos & ~3u} + int64_t{static_cast<int32_t>(word << 8) >> 14} * 4 + 4;
    default:
      return 0;
  }
}

// The bytes of a unit of `kind` like `b` (whose opcode bits it keeps) at offset `pos`
// referring to `target`.
inline void EncodeUnit(UnitKind kind, uint32_t base, const uint8_t* b, uint32_t pos, int64_t target,
                       uint8_t* out) {
  uint32_t word = 0;
  switch (kind) {
    case UnitKind::kPointer:
      word = base + static_cast<uint32_t>(target);
      break;
    case UnitKind::kBranch: {
      const auto f = static_cast<uint32_t>((target - int64_t{pos} - 4) >> 1) & 0x3FFFFFu;
      word = (f >> 11) | ((0xF0 | (f >> 19)) << 8) | ((f & 0xFF) << 16) |
             ((0xF8 | ((f >> 8) & 7u)) << 24);
      break;
    }
    case UnitKind::kCall:
      word = (b[0] & 0x3Fu) |
             ((static_cast<uint32_t>((target - int64_t{pos & ~3u} - 4) >> 2) & 0x3FFFFu) << 6);
      break;
    default:
      break;
  }
  for (uint32_t i = 0; i < UnitLength(kind); ++i)
    out[i] = static_cast<uint8_t>(word >> (8 * i));
}

// If the old bytes at `old_pos` form a predicted unit, writes the bytes it is expected to have
// at new-image offset `new_pos` (its target moved by the map: `shift_of(x)` = new offset - old
// offset of old offset x < old_size; targets outside the old image do not move) to `pred`
// and returns its length (3 or 4), else 0.
template <typename ShiftOf>
uint32_t PredictUnit(uint8_t flags, uint32_t base, uint32_t old_size, const uint8_t* old,
                     uint32_t avail, uint32_t old_pos, uint32_t new_pos, const ShiftOf& shift_of,
                     uint8_t* pred, uint32_t* xtensa_next) {
  const UnitKind kind = ClassifyUnit(flags, base, old_size, old, avail, old_pos, xtensa_next);
  if (kind == UnitKind::kNone) return 0;
  const int64_t target = UnitTarget(kind, base, old, old_pos);
  const int64_t shift =
      target >= 0 && target < int64_t{old_size} ? shift_of(static_cast<uint32_t>(target)) : 0;
  EncodeUnit(kind, base, old, new_pos, target + shift, pred);
  return UnitLength(kind);
}

struct NumberModel {
  Prob length[1 << kNumberLengthBits];
  Prob high[33][1 << kNumberModelledBits];
};

// Copy lengths: a choice bit (2..9 or more), a second (10..17 or more), 3-bit trees per
// position state, and a number above 17.
struct LengthModel {
  Prob choice;
  Prob choice2;
  Prob low[kPosStates][kLenLowSymbols];
  Prob mid[kPosStates][kLenMidSymbols];
};

// The literal model for a byte at new-image position `pos` after byte `prev`, by the
// header's literal mode: 0 the previous byte's top 3 bits (text, data); 1 pos mod 2 and its
// top 2 bits (16-bit instruction sets); 2 its bits 1..3 (instruction sets with the opcode in
// the low bits, like Xtensa). The encoder tries each.
inline uint32_t LiteralContext(uint32_t pos, uint8_t prev, uint8_t flags) {
  switch ((flags & kLiteralModeMask) >> kLiteralModeShift) {
    case 1:
      return ((pos & 1u) << 2) | (prev >> 6);
    case 2:
      return (prev >> 1) & 7u;
    default:
      return prev >> 5;
  }
}

struct DeltaModel {
  NumberModel numbers[kNumberKinds];
  Prob seek_negative;
  // Diff bytes (new - old): zero or not, in the context of the previous flags; a non-zero
  // diff is often the same as the previous non-zero one (a shifted pointer), else a byte.
  // Contexts include the byte's position in a 32-bit word: changed pointers and branch
  // offsets differ in the same lanes.
  Prob diff_zero[kDiffHistoryContexts][8];  // lanes 0..3, or 4 + byte of a predicted unit
  Prob diff_repeat[8];
  Prob diff_byte[4][256];
  // Literal-run items.
  Prob is_match[kStates][kPosStates];
  Prob is_rep[kStates];
  Prob is_rep0[kStates];
  Prob is_rep1[kStates];
  Prob is_rep2[kStates];
  Prob is_rep0_long[kStates][kPosStates];
  LengthModel match_len;
  LengthModel rep_len;
  Prob dist_slot[kLenStates][1 << kDistSlotBits];
  Prob dist_footer[kDistFooterProbs];  // slots 4..13
  Prob dist_align[1 << kAlignBits];
  // Literals, in the context of the previous new byte's top bits; right after a copy, while
  // the literal's bits agree with the byte the copy would have continued with, `matched`
  // (by that byte's bit) instead.
  Prob literal[1 << kLiteralContextBits][256];
  Prob matched[2][256];
};

}  // namespace ota::codec

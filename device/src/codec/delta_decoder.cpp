#include "ota/codec/delta_decoder.hpp"

#include <cstring>

#include "ota/bytes.hpp"

namespace ota::codec {

static_assert(sizeof(DeltaDecoder) <= kDeltaDecoderRamBudget,
              "the delta decoder outgrew its RAM budget");

DeltaDecoder::DeltaDecoder(ByteSource& patch, const FlashArea& old, const FlashArea& written)
    : patch_(patch), rc_(patch), old_(old), written_(written) {}

Status DeltaDecoder::Init(uint32_t old_size) {
  // The header travels in the clear, ahead of the coded stream; the range decoder starts
  // reading the source only in its own Init, after it.
  uint8_t header[kDeltaHeaderSize];
  size_t got = 0;
  while (got < sizeof(header)) {
    const Result<size_t> n = patch_.Read(ByteSpan(header).subspan(got));
    if (!n.ok()) return n.status();
    if (n.value() == 0) return StatusCode::kCorrupt;
    got += n.value();
  }
  if (LoadLe32(header) != kDeltaMagic) return StatusCode::kCorrupt;
  if (header[4] != kDeltaFormat || (header[5] & ~kKnownFlags) != 0 ||
      ((header[5] & kLiteralModeMask) >> kLiteralModeShift) >= kLiteralModes) {
    return StatusCode::kUnsupported;
  }
  flags_ = header[5];
  if (header[6] != 0 || header[7] != 0) return StatusCode::kCorrupt;
  old_size_ = LoadLe32(header + 8);
  new_size_ = LoadLe32(header + 12);
  if (old_size_ != old_size || old_size_ > old_.size()) return StatusCode::kFailedPrecondition;
  if (new_size_ > written_.size()) return StatusCode::kTooLarge;
  OTA_TRY(rc_.Init());
  if ((flags_ & kPredictFlags) != 0) OTA_TRY(ReadMap());
  initialized_ = true;
  return Status::Ok();
}

// The displacement map: base (32 direct bits), the entry count (16 direct bits), then per
// entry the start's increase over the previous start and the shift's change (signed).
Status DeltaDecoder::ReadMap() {
  base_ = rc_.DecodeDirect(32);
  map_entries_ = rc_.DecodeDirect(16);
  if (map_entries_ > kMaxMapEntries) return StatusCode::kCorrupt;
  uint32_t start = 0;
  int32_t shift = 0;
  for (uint32_t i = 0; i < map_entries_; ++i) {
    OTA_TRY_ASSIGN(const uint32_t step, DecodeNumber(kExtraLength));
    const uint32_t negative = rc_.DecodeBit(model_.seek_negative);
    OTA_TRY_ASSIGN(const uint32_t change, DecodeNumber(kSeekMagnitude));
    if ((i > 0 && step == 0) || step > old_size_ - start) return StatusCode::kCorrupt;
    start += step;
    shift = static_cast<int32_t>(static_cast<uint32_t>(shift) +
                                 (negative ? 0u - change : change));  // wraps like the encoder
    map_start_[i] = start;
    map_shift_[i] = shift;
  }
  return rc_.status();
}

int32_t DeltaDecoder::ShiftOf(uint32_t old_offset) const {
  uint32_t lo = 0, hi = map_entries_;  // the last entry starting at or before old_offset
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (map_start_[mid] <= old_offset) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == 0 ? 0 : map_shift_[lo - 1];
}

Result<uint32_t> DeltaDecoder::DecodeNumber(NumberKind kind) {
  NumberModel& m = model_.numbers[kind];
  const uint32_t below = rc_.DecodeTree(m.length, kNumberLengthBits, kNumberAdaptShift);
  if (below > 31) return StatusCode::kCorrupt;
  const int modelled = below < kNumberModelledBits ? static_cast<int>(below) : kNumberModelledBits;
  uint64_t value = 1;
  value = (value << modelled) | rc_.DecodeTree(m.high[below], modelled, kNumberAdaptShift);
  const int direct = static_cast<int>(below) - modelled;
  value = (value << direct) | rc_.DecodeDirect(direct);
  OTA_TRY(rc_.status());
  return static_cast<uint32_t>(value - 1);
}

Result<uint32_t> DeltaDecoder::DecodeLength(LengthModel& m, NumberKind high, uint32_t pos_state) {
  if (!rc_.DecodeBit(m.choice)) return kMinMatch + rc_.DecodeTree(m.low[pos_state], 3);
  if (!rc_.DecodeBit(m.choice2)) {
    return kMinMatch + kLenLowSymbols + rc_.DecodeTree(m.mid[pos_state], 3);
  }
  OTA_TRY_ASSIGN(const uint32_t n, DecodeNumber(high));
  if (n > new_size_) return StatusCode::kCorrupt;  // keeps the sum below 2^32
  return kLenHighBase + n;
}

// Returns distance - 1.
Result<uint32_t> DeltaDecoder::DecodeDistance(uint32_t len) {
  const uint32_t len_state = len - kMinMatch < kLenStates - 1 ? len - kMinMatch : kLenStates - 1;
  const uint32_t slot = rc_.DecodeTree(model_.dist_slot[len_state], kDistSlotBits);
  if (slot < 4) return slot;
  const int footer = DistFooterBits(slot);
  uint32_t d0 = DistBase(slot);
  if (slot < kEndModelledSlot) {
    d0 += rc_.DecodeTree(model_.dist_footer + DistFooterOffset(slot), footer);
  } else {
    d0 += rc_.DecodeDirect(footer - kAlignBits) << kAlignBits;
    d0 += rc_.DecodeTree(model_.dist_align, kAlignBits);
  }
  return d0;
}

// The next item of a literal run that is not a literal: a copy of `len` bytes at a new or a
// repeated distance; leaves the distance in rep_[0] and the length in copy_left_.
Status DeltaDecoder::DecodeItem() {
  const uint32_t ps = produced_ % kPosStates;
  const uint8_t s = state_;
  uint32_t len = 1;
  if (!rc_.DecodeBit(model_.is_rep[s])) {
    OTA_TRY_ASSIGN(len, DecodeLength(model_.match_len, kMatchLengthHigh, ps));
    OTA_TRY_ASSIGN(const uint32_t d0, DecodeDistance(len));
    if (d0 == 0xFFFFFFFFu) return StatusCode::kCorrupt;
    rep_[3] = rep_[2];
    rep_[2] = rep_[1];
    rep_[1] = rep_[0];
    rep_[0] = d0 + 1;
    state_ = StateAfterMatch(s);
  } else if (!rc_.DecodeBit(model_.is_rep0[s])) {
    if (!rc_.DecodeBit(model_.is_rep0_long[s][ps])) {
      state_ = StateAfterShortRep(s);
    } else {
      OTA_TRY_ASSIGN(len, DecodeLength(model_.rep_len, kRepLengthHigh, ps));
      state_ = StateAfterRep(s);
    }
  } else {
    uint32_t d;
    if (!rc_.DecodeBit(model_.is_rep1[s])) {
      d = rep_[1];
    } else {
      if (!rc_.DecodeBit(model_.is_rep2[s])) {
        d = rep_[2];
      } else {
        d = rep_[3];
        rep_[3] = rep_[2];
      }
      rep_[2] = rep_[1];
    }
    rep_[1] = rep_[0];
    rep_[0] = d;
    OTA_TRY_ASSIGN(len, DecodeLength(model_.rep_len, kRepLengthHigh, ps));
    state_ = StateAfterRep(s);
  }
  OTA_TRY(rc_.status());
  // A copy must stay inside the run and read only the old image or bytes already produced.
  if (len > remaining_ || rep_[0] > static_cast<uint64_t>(old_size_) + produced_) {
    return StatusCode::kCorrupt;
  }
  copy_left_ = len;
  return Status::Ok();
}

uint8_t DeltaDecoder::DecodeLiteral(uint8_t match_byte, bool matched) {
  uint32_t node = 1;
  if (matched) {
    uint32_t m = match_byte;
    while (node < 256) {
      const uint32_t match_bit = (m >> 7) & 1u;
      m <<= 1;
      const uint32_t bit = rc_.DecodeBit(model_.matched[match_bit][node]);
      node = (node << 1) | bit;
      if (bit != match_bit) break;
    }
  }
  Prob* probs = model_.literal[LiteralContext(produced_, prev_byte_, flags_)];
  while (node < 256)
    node = (node << 1) | rc_.DecodeBit(probs[node]);
  return static_cast<uint8_t>(node - 256);
}

Result<uint8_t> DeltaDecoder::OldByte(uint32_t pos) {
  if (pos >= old_size_) return StatusCode::kCorrupt;
  if (pos < cache_start_ || pos >= cache_start_ + cache_len_) {
    cache_start_ = pos;
    cache_len_ = old_size_ - pos < kOldCacheSize ? old_size_ - pos : kOldCacheSize;
    OTA_TRY(old_.Read(pos, ByteSpan(cache_, cache_len_)));
  }
  return cache_[pos - cache_start_];
}

Result<uint8_t> DeltaDecoder::NewByte(uint32_t pos, const uint8_t* out) {
  if (pos >= call_start_) return out[pos - call_start_];
  if (pos + kUnflushed >= call_start_) return seam_[pos % kUnflushed];
  // Below call_start_ - kUnflushed the slot holds the final bytes: safe to cache.
  if (pos < new_cache_start_ || pos >= new_cache_start_ + new_cache_len_) {
    const uint32_t readable = call_start_ - kUnflushed - pos;
    new_cache_start_ = pos;
    new_cache_len_ = readable < kNewCacheSize ? readable : kNewCacheSize;
    OTA_TRY(written_.Read(pos, ByteSpan(new_cache_, new_cache_len_)));
  }
  return new_cache_[pos - new_cache_start_];
}

// The byte `distance` back from the next one in V = old image followed by the new image.
Result<uint8_t> DeltaDecoder::SourceByte(uint32_t distance, const uint8_t* out) {
  const uint64_t v = static_cast<uint64_t>(old_size_) + produced_ - distance;
  if (distance == 0 || distance > static_cast<uint64_t>(old_size_) + produced_) {
    return StatusCode::kCorrupt;
  }
  if (v < old_size_) return OldByte(static_cast<uint32_t>(v));
  return NewByte(static_cast<uint32_t>(v - old_size_), out);
}

// Starts a predicted unit if the old bytes at the diff run's position form one.
Status DeltaDecoder::Predict() {
  uint8_t old[4];
  const auto pos = static_cast<uint32_t>(old_pos_);
  const uint32_t avail = remaining_ < 4 ? remaining_ : 4;  // the run holds them: old bytes
  for (uint32_t i = 0; i < avail; ++i) {
    OTA_TRY_ASSIGN(old[i], OldByte(pos + i));
  }
  unit_len_ = static_cast<uint8_t>(PredictUnit(
      flags_, base_, old_size_, old, avail, pos, produced_,
      [this](uint32_t x) { return ShiftOf(x); }, pred_, &xtensa_next_));
  pred_left_ = unit_len_;
  return Status::Ok();
}

Status DeltaDecoder::StartBlock() {
  const uint32_t negative = rc_.DecodeBit(model_.seek_negative);
  OTA_TRY_ASSIGN(const uint32_t magnitude, DecodeNumber(kSeekMagnitude));
  old_pos_ += negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
  OTA_TRY_ASSIGN(const uint32_t diff, DecodeNumber(kDiffLength));
  OTA_TRY_ASSIGN(const uint32_t extra, DecodeNumber(kExtraLength));
  const uint32_t left = new_size_ - produced_;
  // An empty block would let a forged patch spin without producing anything.
  if ((diff == 0 && extra == 0) || diff > left || extra > left - diff) {
    return StatusCode::kCorrupt;
  }
  if (diff > 0 && (old_pos_ < 0 || old_pos_ + diff > old_size_)) return StatusCode::kCorrupt;
  remaining_ = diff;
  extra_after_ = extra;
  phase_ = diff > 0 ? Phase::kDiff : Phase::kExtra;
  if (diff == 0) remaining_ = extra;
  return Status::Ok();
}

Result<size_t> DeltaDecoder::Read(ByteSpan out) {
  if (!initialized_) return StatusCode::kFailedPrecondition;
  call_start_ = produced_;
  std::memcpy(seam_, recent_, sizeof(seam_));
  size_t filled = 0;
  while (filled < out.size()) {
    if (phase_ == Phase::kDone) break;
    if (phase_ == Phase::kBlockStart) {
      if (produced_ == new_size_) {
        phase_ = Phase::kDone;
        break;
      }
      OTA_TRY(StartBlock());
      continue;
    }
    if (remaining_ == 0) {
      if (phase_ == Phase::kDiff && extra_after_ > 0) {
        phase_ = Phase::kExtra;
        remaining_ = extra_after_;
        continue;
      }
      phase_ = Phase::kBlockStart;
      continue;
    }
    uint8_t byte = 0;
    if (phase_ == Phase::kDiff) {
      if ((flags_ & kPredictFlags) != 0 && pred_left_ == 0 && remaining_ >= kMinUnit) {
        OTA_TRY(Predict());
      }
      const uint32_t lane = produced_ & 3;
      const uint32_t flag_lane = pred_left_ > 0 ? 4u + unit_len_ - pred_left_ : lane;
      const uint32_t nonzero =
          rc_.DecodeBit(model_.diff_zero[diff_flags_][flag_lane], kDiffAdaptShift);
      uint8_t d = 0;
      if (nonzero) {
        d = rc_.DecodeBit(model_.diff_repeat[flag_lane], kDiffAdaptShift)
                ? last_diff_[lane]
                : static_cast<uint8_t>(rc_.DecodeTree(model_.diff_byte[lane], 8, kDiffAdaptShift));
        last_diff_[lane] = d;
      }
      diff_flags_ =
          static_cast<uint8_t>(((diff_flags_ << 1) | nonzero) & (kDiffHistoryContexts - 1));
      OTA_TRY_ASSIGN(uint8_t old_byte, OldByte(static_cast<uint32_t>(old_pos_)));
      if (pred_left_ > 0) {
        old_byte = pred_[unit_len_ - pred_left_];
        --pred_left_;
      }
      byte = static_cast<uint8_t>(old_byte + d);
      ++old_pos_;
    } else {
      if (copy_left_ == 0) {
        if (!rc_.DecodeBit(model_.is_match[state_][produced_ % kPosStates])) {
          const bool matched = state_ >= 7;
          uint8_t match_byte = 0;
          if (matched) {
            OTA_TRY_ASSIGN(match_byte, SourceByte(rep_[0], out.data()));
          }
          byte = DecodeLiteral(match_byte, matched);
          state_ = StateAfterLiteral(state_);
        } else {
          OTA_TRY(DecodeItem());
        }
      }
      if (copy_left_ > 0) {
        OTA_TRY_ASSIGN(byte, SourceByte(rep_[0], out.data()));
        --copy_left_;
      }
    }
    OTA_TRY(rc_.status());
    prev_byte_ = byte;
    recent_[produced_ % kUnflushed] = byte;
    out[filled++] = byte;
    ++produced_;
    --remaining_;
  }
  return filled;
}

}  // namespace ota::codec

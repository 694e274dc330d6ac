#include "ota/codec/delta_decoder.hpp"

#include "ota/bytes.hpp"

namespace ota::codec {

static_assert(sizeof(DeltaDecoder) <= kDeltaDecoderRamBudget,
              "the delta decoder outgrew its RAM budget");

DeltaDecoder::DeltaDecoder(ByteSource& patch, const FlashArea& old)
    : patch_(patch), rc_(patch), old_(old) {}

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
  if (header[4] != kDeltaFormat || header[5] != 0) return StatusCode::kUnsupported;
  if (header[6] != 0 || header[7] != 0) return StatusCode::kCorrupt;
  old_size_ = LoadLe32(header + 8);
  new_size_ = LoadLe32(header + 12);
  if (old_size_ != old_size || old_size_ > old_.size()) return StatusCode::kFailedPrecondition;
  OTA_TRY(rc_.Init());
  initialized_ = true;
  return Status::Ok();
}

Result<uint32_t> DeltaDecoder::DecodeNumber(NumberKind kind) {
  NumberModel& m = model_.numbers[kind];
  const uint32_t below = rc_.DecodeTree(m.length, kNumberLengthBits);  // bits below the top
  if (below > 31) return StatusCode::kCorrupt;
  const int modelled = below < kNumberModelledBits ? static_cast<int>(below) : kNumberModelledBits;
  uint64_t value = 1;
  value = (value << modelled) | rc_.DecodeTree(m.high[below], modelled);
  const int direct = static_cast<int>(below) - modelled;
  value = (value << direct) | rc_.DecodeDirect(direct);
  OTA_TRY(rc_.status());
  return static_cast<uint32_t>(value - 1);
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
    uint8_t byte;
    if (phase_ == Phase::kDiff) {
      const uint32_t lane = produced_ & 3;
      const uint32_t nonzero = rc_.DecodeBit(model_.diff_zero[diff_flags_][lane]);
      uint8_t d = 0;
      if (nonzero) {
        d = rc_.DecodeBit(model_.diff_repeat[lane])
                ? last_diff_[lane]
                : static_cast<uint8_t>(rc_.DecodeTree(model_.diff_byte[lane], 8));
        last_diff_[lane] = d;
      }
      diff_flags_ =
          static_cast<uint8_t>(((diff_flags_ << 1) | nonzero) & (kDiffHistoryContexts - 1));
      OTA_TRY_ASSIGN(const uint8_t old_byte, OldByte(static_cast<uint32_t>(old_pos_)));
      byte = static_cast<uint8_t>(old_byte + d);
      ++old_pos_;
    } else {
      byte = static_cast<uint8_t>(
          rc_.DecodeTree(model_.literal[LiteralContext(produced_, prev_byte_)], 8));
    }
    OTA_TRY(rc_.status());
    prev_byte_ = byte;
    out[filled++] = byte;
    ++produced_;
    --remaining_;
  }
  return filled;
}

}  // namespace ota::codec

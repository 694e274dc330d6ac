// Streaming delta decoder: reads the patch once, in order, from a ByteSource; reads the old
// image at random through a FlashArea (the backup region); produces the new image in order,
// through Read(), as a ByteSource itself. No heap: everything it holds is in the object, whose
// size is checked against kDeltaDecoderRamBudget.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/codec/delta_format.hpp"
#include "ota/codec/range_decoder.hpp"
#include "ota/flash_area.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::codec {

// Everything the decoder holds, whatever the image size (the codec issue's budget).
inline constexpr size_t kDeltaDecoderRamBudget = 16 * 1024;

class DeltaDecoder final : public ByteSource {
 public:
  static constexpr size_t kOldCacheSize = 256;

  // `old` holds the old image from offset 0 (empty for a full image).
  DeltaDecoder(ByteSource& patch, const FlashArea& old);

  // Reads and checks the header: the old image size must be the one we hold.
  Status Init(uint32_t old_size);
  uint32_t new_size() const { return new_size_; }
  uint32_t produced() const { return produced_; }

  // Fills `out` with the next bytes of the new image; 0 at the end. A corrupt patch is an
  // error, never a read outside the old image or a byte past new_size.
  Result<size_t> Read(ByteSpan out) override;

 private:
  enum class Phase : uint8_t { kBlockStart, kDiff, kExtra, kDone };
  Result<uint32_t> DecodeNumber(NumberKind kind);
  Result<uint8_t> OldByte(uint32_t pos);
  Status StartBlock();

  ByteSource& patch_;
  RangeDecoder rc_;
  const FlashArea old_;
  DeltaModel model_;
  uint32_t old_size_ = 0;
  uint32_t new_size_ = 0;
  uint32_t produced_ = 0;
  Phase phase_ = Phase::kBlockStart;
  uint32_t remaining_ = 0;  // bytes left in the current diff or extra run
  uint32_t extra_after_ = 0;
  int64_t old_pos_ = 0;
  uint8_t diff_flags_ = 0;     // last two zero/non-zero flags
  uint8_t last_diff_[4] = {};  // last non-zero difference per byte lane
  uint8_t prev_byte_ = 0;
  bool initialized_ = false;
  uint8_t cache_[kOldCacheSize] = {};
  uint32_t cache_start_ = 0;
  uint32_t cache_len_ = 0;
};

}  // namespace ota::codec

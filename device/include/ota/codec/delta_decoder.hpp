// Streaming delta decoder: reads the patch once, in order, from a ByteSource; reads the old
// image at random through a FlashArea (the backup region); produces the new image in order,
// through Read(), as a ByteSource itself. Copies may also reach back into the part of the new
// image produced so far, which the decoder reads back through a second FlashArea (the slot
// the caller writes the new image to), so far copies cost no RAM. No heap: everything it
// holds is in the object, whose size is checked against kDeltaDecoderRamBudget.
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
  static constexpr size_t kNewCacheSize = 256;
  // The caller may hold back up to this many of the last bytes Read() returned before they
  // are readable through `written` (a flash program unit); the decoder keeps them itself.
  static constexpr uint32_t kUnflushed = 16;

  // `old` holds the old image from offset 0 (empty for a full image). `written` is where the
  // caller puts the new image from offset 0: before each Read(), every byte returned by the
  // earlier calls, except at most the last kUnflushed, must read back from it as returned.
  DeltaDecoder(ByteSource& patch, const FlashArea& old, const FlashArea& written);

  // Reads and checks the header: the old image size must be the one we hold, and the new
  // image must fit `written`.
  Status Init(uint32_t old_size);
  uint32_t new_size() const { return new_size_; }
  uint32_t produced() const { return produced_; }

  // Fills `out` with the next bytes of the new image; 0 at the end. A corrupt patch is an
  // error, never a read outside the old image or a byte past new_size.
  Result<size_t> Read(ByteSpan out) override;

 private:
  enum class Phase : uint8_t { kBlockStart, kDiff, kExtra, kDone };
  Result<uint32_t> DecodeNumber(NumberKind kind);
  Result<uint32_t> DecodeLength(LengthModel& m, NumberKind high, uint32_t pos_state);
  Result<uint32_t> DecodeDistance(uint32_t len);
  Status DecodeItem();
  uint8_t DecodeLiteral(uint8_t match_byte, bool matched);
  Result<uint8_t> OldByte(uint32_t pos);
  // Byte `pos` of the new image (pos < produced_), `out` being this call's output so far.
  Result<uint8_t> NewByte(uint32_t pos, const uint8_t* out);
  Result<uint8_t> SourceByte(uint32_t distance, const uint8_t* out);
  Status StartBlock();
  Status ReadMap();
  Status Predict();
  int32_t ShiftOf(uint32_t old_offset) const;

  ByteSource& patch_;
  RangeDecoder rc_;
  const FlashArea old_;
  const FlashArea written_;
  DeltaModel model_;
  uint32_t old_size_ = 0;
  uint32_t new_size_ = 0;
  uint32_t produced_ = 0;
  uint32_t call_start_ = 0;  // produced_ when this Read() began
  Phase phase_ = Phase::kBlockStart;
  uint32_t remaining_ = 0;  // bytes left in the current diff or extra run
  uint32_t extra_after_ = 0;
  int64_t old_pos_ = 0;
  uint32_t rep_[4] = {1, 1, 1, 1};  // the last four copy distances, most recent first
  uint32_t copy_left_ = 0;          // bytes still to copy at distance rep_[0]
  uint8_t state_ = 0;
  uint8_t diff_flags_ = 0;     // last zero/non-zero flags
  uint8_t last_diff_[4] = {};  // last non-zero difference per byte lane
  uint8_t prev_byte_ = 0;
  uint8_t flags_ = 0;
  uint8_t pred_[4] = {};  // the predicted unit being decoded
  uint8_t pred_left_ = 0;
  uint8_t unit_len_ = 0;
  uint32_t xtensa_next_ = 0;  // old offset of the next Xtensa instruction (parse)
  bool initialized_ = false;
  uint32_t base_ = 0;
  uint32_t map_entries_ = 0;
  uint32_t map_start_[kMaxMapEntries] = {};  // old offsets, increasing
  int32_t map_shift_[kMaxMapEntries] = {};   // new - old from there on
  uint8_t recent_[kUnflushed] = {};          // the last kUnflushed bytes produced (ring)
  uint8_t seam_[kUnflushed] = {};            // recent_ as it was when this Read() began
  uint8_t cache_[kOldCacheSize] = {};
  uint32_t cache_start_ = 0;
  uint32_t cache_len_ = 0;
  uint8_t new_cache_[kNewCacheSize] = {};
  uint32_t new_cache_start_ = 0;
  uint32_t new_cache_len_ = 0;
};

}  // namespace ota::codec

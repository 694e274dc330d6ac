#include "ota/host/delta_encoder.hpp"

#include <divsufsort.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "ota/bytes.hpp"
#include "ota/codec/delta_format.hpp"
#include "ota/host/range_encoder.hpp"

namespace ota::host {

namespace {

using codec::DeltaModel;
using codec::NumberKind;

// The longest prefix of `target` that occurs in `old`, found by binary search over the
// suffix array: the match is next to where `target` would be inserted.
struct Match {
  int64_t pos = 0;
  int64_t len = 0;
};

int64_t CommonPrefix(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i])
    ++i;
  return static_cast<int64_t>(i);
}

Match LongestMatch(const std::vector<saidx_t>& sa, std::span<const uint8_t> old,
                   std::span<const uint8_t> target) {
  Match best;
  if (sa.empty() || target.empty()) return best;
  size_t lo = 0;
  size_t hi = sa.size();
  while (lo < hi) {  // first suffix not less than target
    const size_t mid = lo + (hi - lo) / 2;
    const auto suffix = old.subspan(static_cast<size_t>(sa[mid]));
    const size_t n = std::min(suffix.size(), target.size());
    const int c = std::memcmp(suffix.data(), target.data(), n);
    if (c < 0 || (c == 0 && suffix.size() < target.size())) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (size_t i : {lo, lo - 1}) {
    if (i >= sa.size()) continue;  // lo - 1 wraps when lo == 0
    const int64_t len = CommonPrefix(old.subspan(static_cast<size_t>(sa[i])), target);
    if (len > best.len) best = {sa[i], len};
  }
  return best;
}

class BlockWriter {
 public:
  explicit BlockWriter(DeltaStats* stats) : stats_(stats) {}

  void Number(NumberKind kind, uint32_t value) {
    codec::NumberModel& m = model_->numbers[kind];
    const uint64_t w = static_cast<uint64_t>(value) + 1;
    int below = 63 - __builtin_clzll(w);  // bits under the leading one
    rc_.EncodeTree(m.length, codec::kNumberLengthBits, static_cast<uint32_t>(below));
    const int modelled = std::min(below, codec::kNumberModelledBits);
    const int direct = below - modelled;
    const auto rest = static_cast<uint32_t>(w & ((uint64_t{1} << below) - 1));
    rc_.EncodeTree(m.high[below], modelled, rest >> direct);
    rc_.EncodeDirect(rest & ((1u << direct) - 1u), direct);
  }

  // A block: seek (from where the decoder's old position is), diff run, literal run.
  void Block(std::span<const uint8_t> old, std::span<const uint8_t> neu, int64_t old_pos,
             int64_t new_pos, int64_t diff_len, int64_t extra_len) {
    double mark = rc_.cost_bits();
    // Adds what was coded since the last call to `bucket` (in bytes).
    auto charge = [&](double DeltaStats::*bucket) {
      if (stats_) stats_->*bucket += (rc_.cost_bits() - mark) / 8;
      mark = rc_.cost_bits();
    };
    const int64_t seek = diff_len > 0 ? old_pos - decoder_old_pos_ : 0;
    rc_.EncodeBit(model_->seek_negative, seek < 0);
    Number(codec::kSeekMagnitude, static_cast<uint32_t>(seek < 0 ? -seek : seek));
    if (diff_len > 0) decoder_old_pos_ = old_pos + diff_len;
    Number(codec::kDiffLength, static_cast<uint32_t>(diff_len));
    Number(codec::kExtraLength, static_cast<uint32_t>(extra_len));
    charge(&DeltaStats::control_cost);
    for (int64_t i = 0; i < diff_len; ++i) {
      const auto d = static_cast<uint8_t>(neu[new_pos + i] - old[old_pos + i]);
      const uint32_t nonzero = d != 0;
      const auto lane = static_cast<uint32_t>((new_pos + i) & 3);
      rc_.EncodeBit(model_->diff_zero[flags_][lane], nonzero);
      charge(&DeltaStats::diff_flag_cost);
      if (nonzero) {
        const uint32_t repeat = d == last_diff_[lane];
        rc_.EncodeBit(model_->diff_repeat[lane], repeat);
        if (!repeat) rc_.EncodeTree(model_->diff_byte[lane], 8, d);
        last_diff_[lane] = d;
        charge(&DeltaStats::diff_value_cost);
        if (stats_) ++stats_->nonzero_diffs;
      }
      flags_ = static_cast<uint8_t>(((flags_ << 1) | nonzero) & (codec::kDiffHistoryContexts - 1));
      prev_ = neu[new_pos + i];
    }
    for (int64_t i = 0; i < extra_len; ++i) {
      const uint8_t b = neu[new_pos + diff_len + i];
      rc_.EncodeTree(model_->literal[codec::LiteralContext(
                         static_cast<uint32_t>(new_pos + diff_len + i), prev_)],
                     8, b);
      prev_ = b;
    }
    charge(&DeltaStats::literal_cost);
    if (stats_) {
      ++stats_->blocks;
      stats_->diff_bytes += static_cast<uint64_t>(diff_len);
      stats_->extra_bytes += static_cast<uint64_t>(extra_len);
    }
  }

  std::vector<uint8_t> Finish() { return rc_.Finish(); }

 private:
  std::unique_ptr<DeltaModel> model_ = std::make_unique<DeltaModel>();
  RangeEncoder rc_;
  DeltaStats* stats_;
  int64_t decoder_old_pos_ = 0;
  uint8_t flags_ = 0;
  uint8_t last_diff_[4] = {};
  uint8_t prev_ = 0;
};

}  // namespace

// Matching follows bsdiff's idea (approximate matches extended forwards and backwards, the
// rest as literals), coded with the adaptive model instead of bzip2.
std::vector<uint8_t> EncodeDelta(std::span<const uint8_t> old, std::span<const uint8_t> neu,
                                 DeltaStats* stats) {
  std::vector<saidx_t> sa(old.size());
  if (!old.empty()) divsufsort(old.data(), sa.data(), static_cast<saidx_t>(old.size()));
  const auto old_size = static_cast<int64_t>(old.size());
  const auto new_size = static_cast<int64_t>(neu.size());
  BlockWriter out(stats);

  int64_t scan = 0, len = 0, pos = 0;
  int64_t last_scan = 0, last_pos = 0, last_offset = 0;
  while (scan < new_size) {
    int64_t old_score = 0;
    int64_t scsc = scan += len;
    for (; scan < new_size; ++scan) {
      const Match m = LongestMatch(sa, old, neu.subspan(static_cast<size_t>(scan)));
      pos = m.pos;
      len = m.len;
      for (; scsc < scan + len; ++scsc) {
        if (scsc + last_offset < old_size && old[scsc + last_offset] == neu[scsc]) ++old_score;
      }
      if ((len == old_score && len != 0) || len > old_score + 8) break;
      if (scan + last_offset < old_size && old[scan + last_offset] == neu[scan]) --old_score;
    }
    if (len == old_score && scan != new_size) continue;

    // Extend the previous match forwards while it is at least half right...
    int64_t len_f = 0;
    for (int64_t i = 0, s = 0, best = 0; last_scan + i < scan && last_pos + i < old_size; ++i) {
      if (old[last_pos + i] == neu[last_scan + i]) ++s;
      if (s * 2 - (i + 1) > best * 2 - len_f) {
        best = s;
        len_f = i + 1;
      }
    }
    // ...and the new one backwards.
    int64_t len_b = 0;
    if (scan < new_size) {
      for (int64_t i = 1, s = 0, best = 0; scan >= last_scan + i && pos >= i; ++i) {
        if (old[pos - i] == neu[scan - i]) ++s;
        if (s * 2 - i > best * 2 - len_b) {
          best = s;
          len_b = i;
        }
      }
    }
    // Where they overlap, split at the point that keeps the most matching bytes.
    if (last_scan + len_f > scan - len_b) {
      const int64_t overlap = (last_scan + len_f) - (scan - len_b);
      int64_t s = 0, best = 0, len_s = 0;
      for (int64_t i = 0; i < overlap; ++i) {
        if (neu[last_scan + len_f - overlap + i] == old[last_pos + len_f - overlap + i]) ++s;
        if (neu[scan - len_b + i] == old[pos - len_b + i]) --s;
        if (s > best) {
          best = s;
          len_s = i + 1;
        }
      }
      len_f += len_s - overlap;
      len_b -= len_s;
    }
    const int64_t extra = (scan - len_b) - (last_scan + len_f);
    if (len_f > 0 || extra > 0) out.Block(old, neu, last_pos, last_scan, len_f, extra);
    last_scan = scan - len_b;
    last_pos = pos - len_b;
    last_offset = pos - scan;
  }

  std::vector<uint8_t> patch(codec::kDeltaHeaderSize, 0);
  StoreLe32(patch.data(), codec::kDeltaMagic);
  patch[4] = codec::kDeltaFormat;
  StoreLe32(patch.data() + 8, static_cast<uint32_t>(old.size()));
  StoreLe32(patch.data() + 12, static_cast<uint32_t>(neu.size()));
  const std::vector<uint8_t> body = out.Finish();
  patch.insert(patch.end(), body.begin(), body.end());
  return patch;
}

}  // namespace ota::host

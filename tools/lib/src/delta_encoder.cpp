#include "ota/host/delta_encoder.hpp"

#include <divsufsort.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
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

// Where bits go: the range encoder (updating the model) or a price sum (model read-only).
// Token coding is written once, over either.
struct EncodeSink {
  RangeEncoder& rc;
  void Bit(codec::Prob& p, uint32_t bit, int max_shift = codec::kAdaptShift) {
    rc.EncodeBit(p, bit, max_shift);
  }
  void Direct(uint32_t value, int count) { rc.EncodeDirect(value, count); }
};

// -log2 of each probability value, for bit 0 (index p) and bit 1 (index 4096 - p).
const std::vector<float>& PriceTable() {
  static const std::vector<float> table = [] {
    std::vector<float> t(codec::kProbOne + 1);
    for (uint32_t p = 1; p < codec::kProbOne; ++p) {
      t[p] = static_cast<float>(-std::log2(static_cast<double>(p) / codec::kProbOne));
    }
    t[0] = t[1];
    t[codec::kProbOne] = 0;
    return t;
  }();
  return table;
}

float BitPrice(const codec::Prob& p, uint32_t bit) {
  return PriceTable()[bit == 0 ? p.p() : codec::kProbOne - p.p()];
}

struct PriceSink {
  float cost = 0;
  void Bit(const codec::Prob& p, uint32_t bit, int = 0) {
    cost += PriceTable()[bit == 0 ? p.p() : codec::kProbOne - p.p()];
  }
  void Direct(uint32_t, int count) { cost += static_cast<float>(count); }
};

template <typename Sink>
void CodeTree(Sink& sink, codec::Prob* probs, int bits, uint32_t symbol,
              int max_shift = codec::kAdaptShift) {
  uint32_t node = 1;
  for (int i = bits - 1; i >= 0; --i) {
    const uint32_t bit = (symbol >> i) & 1u;
    sink.Bit(probs[node], bit, max_shift);
    node = (node << 1) | bit;
  }
}

template <typename Sink>
void CodeNumber(Sink& sink, codec::NumberModel& m, uint32_t value) {
  const uint64_t w = static_cast<uint64_t>(value) + 1;
  const int below = 63 - __builtin_clzll(w);  // bits under the leading one
  CodeTree(sink, m.length, codec::kNumberLengthBits, static_cast<uint32_t>(below),
           codec::kNumberAdaptShift);
  const int modelled = std::min(below, codec::kNumberModelledBits);
  const int direct = below - modelled;
  const auto rest = static_cast<uint32_t>(w & ((uint64_t{1} << below) - 1));
  CodeTree(sink, m.high[below], modelled, rest >> direct, codec::kNumberAdaptShift);
  sink.Direct(rest & ((1u << direct) - 1u), direct);
}

template <typename Sink>
void CodeLength(Sink& sink, DeltaModel& model, codec::LengthModel& m, NumberKind high,
                uint32_t pos_state, uint32_t len) {
  if (len < codec::kMinMatch + codec::kLenLowSymbols) {
    sink.Bit(m.choice, 0);
    CodeTree(sink, m.low[pos_state], 3, len - codec::kMinMatch);
  } else if (len < codec::kLenHighBase) {
    sink.Bit(m.choice, 1);
    sink.Bit(m.choice2, 0);
    CodeTree(sink, m.mid[pos_state], 3, len - codec::kMinMatch - codec::kLenLowSymbols);
  } else {
    sink.Bit(m.choice, 1);
    sink.Bit(m.choice2, 1);
    CodeNumber(sink, model.numbers[high], len - codec::kLenHighBase);
  }
}

uint32_t LenState(uint32_t len) {
  return std::min<uint32_t>(len - codec::kMinMatch, codec::kLenStates - 1);
}

template <typename Sink>
void CodeDistance(Sink& sink, DeltaModel& model, uint32_t len, uint32_t d0) {
  const uint32_t slot = codec::DistSlot(d0);
  CodeTree(sink, model.dist_slot[LenState(len)], codec::kDistSlotBits, slot);
  if (slot < 4) return;
  const int footer = codec::DistFooterBits(slot);
  const uint32_t rest = d0 - codec::DistBase(slot);
  if (slot < codec::kEndModelledSlot) {
    CodeTree(sink, model.dist_footer + codec::DistFooterOffset(slot), footer, rest);
  } else {
    sink.Direct(rest >> codec::kAlignBits, footer - codec::kAlignBits);
    CodeTree(sink, model.dist_align, codec::kAlignBits, rest & ((1u << codec::kAlignBits) - 1));
  }
}

template <typename Sink>
void CodeLiteral(Sink& sink, DeltaModel& model, uint8_t flags, uint32_t pos, uint8_t prev,
                 bool matched, uint8_t match_byte, uint8_t byte) {
  uint32_t node = 1;
  int i = 7;
  if (matched) {
    for (; i >= 0; --i) {
      const uint32_t match_bit = (match_byte >> i) & 1u;
      const uint32_t bit = (byte >> i) & 1u;
      sink.Bit(model.matched[match_bit][node], bit);
      node = (node << 1) | bit;
      if (bit != match_bit) {
        --i;
        break;
      }
    }
  }
  codec::Prob* probs = model.literal[codec::LiteralContext(pos, prev, flags)];
  for (; i >= 0; --i) {
    const uint32_t bit = (byte >> i) & 1u;
    sink.Bit(probs[node], bit);
    node = (node << 1) | bit;
  }
}

// Literal-run items.
enum class Item : uint8_t { kLiteral, kMatch, kRep0, kRep1, kRep2, kRep3, kShortRep };

struct LzState {
  uint32_t rep[4] = {1, 1, 1, 1};
  uint8_t state = 0;
  uint8_t flags = 0;  // the header's (constant)
};

// Codes one item (`arg` is the distance of a kMatch) and advances `lz` as the decoder does.
template <typename Sink>
void CodeItem(Sink& sink, DeltaModel& model, LzState& lz, Item item, uint32_t pos, uint32_t len,
              uint32_t arg, uint8_t prev, uint8_t match_byte, uint8_t byte) {
  const uint8_t s = lz.state;
  const uint32_t pos_state = pos % codec::kPosStates;
  if (item == Item::kLiteral) {
    sink.Bit(model.is_match[s][pos_state], 0);
    CodeLiteral(sink, model, lz.flags, pos, prev, s >= 7, match_byte, byte);
    lz.state = codec::StateAfterLiteral(s);
    return;
  }
  sink.Bit(model.is_match[s][pos_state], 1);
  if (item == Item::kMatch) {
    sink.Bit(model.is_rep[s], 0);
    CodeLength(sink, model, model.match_len, codec::kMatchLengthHigh, pos_state, len);
    CodeDistance(sink, model, len, arg - 1);
    lz.rep[3] = lz.rep[2];
    lz.rep[2] = lz.rep[1];
    lz.rep[1] = lz.rep[0];
    lz.rep[0] = arg;
    lz.state = codec::StateAfterMatch(s);
    return;
  }
  sink.Bit(model.is_rep[s], 1);
  if (item == Item::kShortRep || item == Item::kRep0) {
    sink.Bit(model.is_rep0[s], 0);
    sink.Bit(model.is_rep0_long[s][pos_state], item == Item::kRep0);
    if (item == Item::kShortRep) {
      lz.state = codec::StateAfterShortRep(s);
      return;
    }
  } else {
    sink.Bit(model.is_rep0[s], 1);
    uint32_t d;
    if (item == Item::kRep1) {
      sink.Bit(model.is_rep1[s], 0);
      d = lz.rep[1];
    } else {
      sink.Bit(model.is_rep1[s], 1);
      sink.Bit(model.is_rep2[s], item == Item::kRep3);
      if (item == Item::kRep2) {
        d = lz.rep[2];
      } else {
        d = lz.rep[3];
        lz.rep[3] = lz.rep[2];
      }
      lz.rep[2] = lz.rep[1];
    }
    lz.rep[1] = lz.rep[0];
    lz.rep[0] = d;
  }
  CodeLength(sink, model, model.rep_len, codec::kRepLengthHigh, pos_state, len);
  lz.state = codec::StateAfterRep(s);
}

// Hash chains over V = old image followed by the new image (the copy source space).
class MatchFinder {
 public:
  MatchFinder(std::span<const uint8_t> old, std::span<const uint8_t> neu)
      : old_size_(static_cast<uint32_t>(old.size())) {
    v_.reserve(old.size() + neu.size());
    v_.insert(v_.end(), old.begin(), old.end());
    v_.insert(v_.end(), neu.begin(), neu.end());
    head_.assign(kHashSize, -1);
    prev_.assign(v_.size(), -1);
  }

  uint8_t At(uint64_t v) const { return v_[v]; }
  uint32_t old_size() const { return old_size_; }

  // Length of the common run at virtual positions a < b, at most `limit`.
  uint32_t CommonLength(uint64_t a, uint64_t b, uint32_t limit) const {
    uint32_t n = 0;
    while (n < limit && v_[a + n] == v_[b + n])
      ++n;
    return n;
  }

  // Candidates at virtual position `v` (every earlier position is inserted first): pairs of
  // (length, distance) with increasing length, each the nearest giving that length.
  void Find(uint64_t v, uint32_t limit, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
    InsertUpTo(v);
    out.clear();
    if (limit < 2 || v + 2 > v_.size()) return;
    // The nearest earlier occurrence of the next two bytes.
    uint32_t best = 2;
    const int64_t c2 = last2_[v_[v] | (v_[v + 1] << 8)];
    if (c2 >= 0 && static_cast<uint64_t>(c2) < v) {
      out.emplace_back(2, static_cast<uint32_t>(v - static_cast<uint64_t>(c2)));
    }
    if (limit < 3 || v + 3 > v_.size()) return;
    int64_t c = head_[Hash(v)];
    while (c >= 0 && static_cast<uint64_t>(c) >= v)  // inserted ahead by an earlier window
      c = prev_[c];
    int depth_limit = kDepth;
    for (int depth = 0; c >= 0 && depth < depth_limit; ++depth, c = prev_[c]) {
      if (v_[c + best] != v_[v + best]) continue;
      const uint32_t len = CommonLength(static_cast<uint64_t>(c), v, limit);
      if (len > best) {
        // A good match found: look only a little further (bounds the time on repetitive data).
        if (len >= kGoodLength && best < kGoodLength)
          depth_limit = std::min(depth_limit, depth + kGoodDepth);
        best = len;
        out.emplace_back(len, static_cast<uint32_t>(v - static_cast<uint64_t>(c)));
        if (len >= limit || len >= kStopLength) break;
      }
    }
  }

 private:
  static constexpr uint32_t kHashBits = 20;
  static constexpr uint32_t kHashSize = 1u << kHashBits;
  static constexpr int kDepth = 1024;
  static constexpr uint32_t kGoodLength = 32;
  static constexpr int kGoodDepth = 64;  // candidates tried per position
  static constexpr uint32_t kStopLength = 1024;

  uint32_t Hash(uint64_t v) const {
    const uint32_t x = v_[v] | (v_[v + 1] << 8) | (v_[v + 2] << 16);
    return (x * 2654435761u) >> (32 - kHashBits);
  }
  void InsertUpTo(uint64_t v) const {
    for (; inserted2_ < v && inserted2_ + 2 <= v_.size(); ++inserted2_)
      last2_[v_[inserted2_] | (v_[inserted2_ + 1] << 8)] = static_cast<int64_t>(inserted2_);
    for (; inserted_ < v && inserted_ + 3 <= v_.size(); ++inserted_) {
      const uint32_t h = Hash(inserted_);
      prev_[inserted_] = head_[h];
      head_[h] = static_cast<int64_t>(inserted_);
    }
    if (inserted_ < v) inserted_ = v;
  }

  std::vector<uint8_t> v_;
  // Filled lazily as positions are asked for (one finder per encode pass).
  mutable std::vector<int64_t> head_;
  mutable std::vector<int64_t> prev_;
  mutable uint64_t inserted_ = 0;
  mutable std::vector<int64_t> last2_ = std::vector<int64_t>(1 << 16, -1);
  mutable uint64_t inserted2_ = 0;
  uint32_t old_size_;
};

// What the diff runs predict: header flags, the run address and the displacement map
// (old offset where an entry starts, new - old from there on).
struct Prediction {
  uint8_t flags = 0;
  uint32_t base = 0;
  std::vector<std::pair<uint32_t, int32_t>> map;

  int32_t ShiftOf(uint32_t x) const {
    auto it = std::upper_bound(map.begin(), map.end(), x,
                               [](uint32_t v, const auto& e) { return v < e.first; });
    return it == map.begin() ? 0 : std::prev(it)->second;
  }
};

class BlockWriter {
 public:
  // Without `code_literals` the literal runs are left out (for comparing the rest).
  BlockWriter(std::span<const uint8_t> old, std::span<const uint8_t> neu, const MatchFinder& finder,
              const Prediction& pred, DeltaStats* stats, bool code_literals)
      : old_(old),
        neu_(neu),
        finder_(finder),
        pred_(pred),
        stats_(stats),
        code_literals_(code_literals) {
    lz_.flags = pred_.flags;
    if ((pred_.flags & codec::kPredictFlags) == 0) return;
    EncodeSink sink{rc_};
    rc_.EncodeDirect(pred_.base, 32);
    rc_.EncodeDirect(static_cast<uint32_t>(pred_.map.size()), 16);
    uint32_t start = 0;
    int32_t shift = 0;
    for (const auto& [s, sh] : pred_.map) {
      CodeNumber(sink, model_->numbers[codec::kExtraLength], s - start);
      const int64_t change = int64_t{sh} - shift;
      rc_.EncodeBit(model_->seek_negative, change < 0);
      CodeNumber(sink, model_->numbers[codec::kSeekMagnitude],
                 static_cast<uint32_t>(change < 0 ? -change : change));
      start = s;
      shift = sh;
    }
    if (stats_) stats_->map_cost = rc_.cost_bits() / 8;
  }

  // A block: seek (from where the decoder's old position is), diff run, literal run.
  void Block(int64_t old_pos, int64_t new_pos, int64_t diff_len, int64_t extra_len) {
    double mark = rc_.cost_bits();
    // Adds what was coded since the last call to `bucket` (in bytes).
    auto charge = [&](double DeltaStats::*bucket) {
      if (stats_) stats_->*bucket += (rc_.cost_bits() - mark) / 8;
      mark = rc_.cost_bits();
    };
    EncodeSink sink{rc_};
    const int64_t seek = diff_len > 0 ? old_pos - decoder_old_pos_ : 0;
    rc_.EncodeBit(model_->seek_negative, seek < 0);
    CodeNumber(sink, model_->numbers[codec::kSeekMagnitude],
               static_cast<uint32_t>(seek < 0 ? -seek : seek));
    if (diff_len > 0) decoder_old_pos_ = old_pos + diff_len;
    CodeNumber(sink, model_->numbers[codec::kDiffLength], static_cast<uint32_t>(diff_len));
    CodeNumber(sink, model_->numbers[codec::kExtraLength], static_cast<uint32_t>(extra_len));
    charge(&DeltaStats::control_cost);
    uint8_t unit[4];
    uint32_t unit_len = 0, unit_left = 0;
    for (int64_t i = 0; i < diff_len; ++i) {
      const auto o = static_cast<uint32_t>(old_pos + i);
      if ((pred_.flags & codec::kPredictFlags) != 0 && unit_left == 0 &&
          diff_len - i >= codec::kMinUnit) {
        unit_len = codec::PredictUnit(
            pred_.flags, pred_.base, static_cast<uint32_t>(old_.size()), &old_[o],
            static_cast<uint32_t>(std::min<int64_t>(diff_len - i, 4)), o,
            static_cast<uint32_t>(new_pos + i), [this](uint32_t x) { return pred_.ShiftOf(x); },
            unit, &xtensa_next_);
        unit_left = unit_len;
        if (stats_ && unit_len > 0) ++stats_->predicted_units;
      }
      const auto lane = static_cast<uint32_t>((new_pos + i) & 3);
      const uint32_t flag_lane = unit_left > 0 ? 4 + unit_len - unit_left : lane;
      uint8_t base = old_[o];
      if (unit_left > 0) base = unit[unit_len - unit_left--];
      const auto d = static_cast<uint8_t>(neu_[new_pos + i] - base);
      const uint32_t nonzero = d != 0;
      rc_.EncodeBit(model_->diff_zero[flags_][flag_lane], nonzero, codec::kDiffAdaptShift);
      charge(&DeltaStats::diff_flag_cost);
      if (nonzero) {
        const uint32_t repeat = d == last_diff_[lane];
        rc_.EncodeBit(model_->diff_repeat[flag_lane], repeat, codec::kDiffAdaptShift);
        if (!repeat) rc_.EncodeTree(model_->diff_byte[lane], 8, d, codec::kDiffAdaptShift);
        last_diff_[lane] = d;
        charge(&DeltaStats::diff_value_cost);
        if (stats_) ++stats_->nonzero_diffs;
      }
      flags_ = static_cast<uint8_t>(((flags_ << 1) | nonzero) & (codec::kDiffHistoryContexts - 1));
    }
    if (code_literals_) {
      LiteralRun(static_cast<uint32_t>(new_pos + diff_len), static_cast<uint32_t>(extra_len));
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
  struct Node {
    float price = 0;
    uint32_t from = 0;
    uint32_t len = 0;
    uint32_t dist = 0;
    Item item = Item::kLiteral;
    LzState lz;
  };
  static constexpr uint32_t kChunk = 2048;     // positions per parse
  static constexpr uint32_t kLookahead = 256;  // parsed beyond the chunk, not committed
  static constexpr uint32_t kNiceLength = 96;  // a copy this long is taken at once
  // Copy length prices for the current window, by model, position state and length; valid
  // where len_price_window_ says the current window.
  float len_price_[2][codec::kPosStates][kNiceLength + 1] = {};
  uint32_t len_price_window_[2][codec::kPosStates][kNiceLength + 1] = {};
  uint32_t window_ = 0;

  // The price of a copy length up to kNiceLength, cached for the window.
  float CachedLengthPrice(bool rep, uint32_t pos_state, uint32_t len) {
    if (len_price_window_[rep][pos_state][len] != window_) {
      len_price_window_[rep][pos_state][len] = window_;
      len_price_[rep][pos_state][len] =
          LengthPrice(rep ? model_->rep_len : model_->match_len, pos_state, len);
    }
    return len_price_[rep][pos_state][len];
  }

  uint8_t Prev(uint32_t pos) const { return pos > 0 ? neu_[pos - 1] : 0; }
  uint64_t Virtual(uint32_t pos) const { return finder_.old_size() + uint64_t{pos}; }
  bool Reachable(uint32_t pos, uint32_t dist) const { return dist >= 1 && dist <= Virtual(pos); }
  uint8_t Source(uint32_t pos, uint32_t dist) const { return finder_.At(Virtual(pos) - dist); }

  void Emit(uint32_t pos, Item item, uint32_t len, uint32_t dist) {
    EncodeSink sink{rc_};
    const uint8_t match_byte = Reachable(pos, lz_.rep[0]) ? Source(pos, lz_.rep[0]) : 0;
    CodeItem(sink, *model_, lz_, item, pos, len, dist, Prev(pos), match_byte, neu_[pos]);
  }

  float LengthPrice(codec::LengthModel& m, uint32_t pos_state, uint32_t len) {
    PriceSink sink;
    const NumberKind high =
        &m == &model_->match_len ? codec::kMatchLengthHigh : codec::kRepLengthHigh;
    CodeLength(sink, *model_, m, high, pos_state, len);
    return sink.cost;
  }

  // The price of an item after `lz`, which it advances.
  float ItemPrice(LzState& lz, uint32_t pos, Item item, uint32_t len, uint32_t dist) {
    PriceSink sink;
    const uint8_t match_byte = Reachable(pos, lz.rep[0]) ? Source(pos, lz.rep[0]) : 0;
    CodeItem(sink, *model_, lz, item, pos, len, dist, Prev(pos), match_byte, neu_[pos]);
    return sink.cost;
  }

  // Codes neu_[start, start + len) as literals and copies: an optimal parse over chunks,
  // priced with the model as it stands at the start of each chunk.
  void LiteralRun(uint32_t start, uint32_t len) {
    uint32_t pos = start;
    const uint32_t end = start + len;
    std::vector<Node> nodes;
    std::vector<std::pair<uint32_t, uint32_t>> found;
    while (pos < end) {
      const uint32_t n = std::min(end - pos, kChunk + kLookahead);
      const uint32_t commit = n == end - pos ? n : kChunk;  // items starting before this
      ++window_;  // length prices are recomputed lazily for each window
      nodes.assign(n + 1, Node{});
      for (auto& node : nodes)
        node.price = std::numeric_limits<float>::infinity();
      nodes[0].price = 0;
      nodes[0].lz = lz_;
      uint32_t stop = n;  // where the parse ends
      uint32_t long_len = 0, long_dist = 0;
      Item long_item = Item::kLiteral;
      for (uint32_t i = 0; i < n; ++i) {
        const Node& at = nodes[i];
        const uint32_t p = pos + i;
        const uint32_t limit = end - p;
        auto relax_to = [&](uint32_t l, float price, Item item, uint32_t d, const LzState& lz) {
          const uint32_t to = i + l;
          if (to > n || price >= nodes[to].price) return;
          Node& node = nodes[to];
          node.price = price;
          node.from = i;
          node.item = item;
          node.len = l;
          node.dist = d;
          node.lz = lz;
        };
        auto relax = [&](Item item, uint32_t l, uint32_t d) {
          if (i + l > n) return;
          LzState lz = at.lz;
          const float price = at.price + ItemPrice(lz, p, item, l, d);
          relax_to(l, price, item, d, lz);
        };
        const uint8_t st = at.lz.state;
        const uint32_t ps = p % codec::kPosStates;
        DeltaModel& m = *model_;
        const float copy_price = BitPrice(m.is_match[st][ps], 1);
        relax(Item::kLiteral, 1, 0);
        uint32_t longest = 0, longest_dist = 0;
        Item longest_item = Item::kLiteral;
        for (int j = 0; j < 4; ++j) {
          const uint32_t d = at.lz.rep[j];
          if (!Reachable(p, d)) continue;
          const uint32_t l = finder_.CommonLength(Virtual(p) - d, Virtual(p), limit);
          const auto item = static_cast<Item>(static_cast<int>(Item::kRep0) + j);
          if (j == 0 && l >= 1) {
            relax(Item::kShortRep, 1, 0);
          }
          if (l < codec::kMinMatch) continue;
          // The price without the length, and the state after, are the same for every length.
          LzState post = at.lz;
          const float whole = ItemPrice(post, p, item, codec::kMinMatch, 0);
          const float prefix = whole - CachedLengthPrice(true, ps, codec::kMinMatch);
          for (uint32_t k = codec::kMinMatch; k <= l && i + k <= n; ++k) {
            if (k > kNiceLength && k != l) continue;
            const float len_price =
                k <= kNiceLength ? CachedLengthPrice(true, ps, k) : LengthPrice(m.rep_len, ps, k);
            relax_to(k, at.price + prefix + len_price, item, 0, post);
          }
          if (l > longest) {
            longest = l;
            longest_item = item;
            longest_dist = 0;
          }
        }
        finder_.Find(Virtual(p), limit, found);
        uint32_t from_len = codec::kMinMatch;
        const float match_prefix = copy_price + BitPrice(m.is_rep[st], 0);
        for (const auto& [l, d] : found) {
          LzState post = at.lz;
          ItemPrice(post, p, Item::kMatch, codec::kMinMatch, d);
          float dist_price[codec::kLenStates];
          for (uint32_t ls = 0; ls < codec::kLenStates; ++ls) {
            PriceSink sink;
            CodeDistance(sink, m, codec::kMinMatch + ls, d - 1);
            dist_price[ls] = sink.cost;
          }
          for (uint32_t k = from_len; k <= l && i + k <= n; ++k) {
            if (k > kNiceLength && k != l) continue;
            const float len_price = k <= kNiceLength ? CachedLengthPrice(false, ps, k)
                                                     : LengthPrice(m.match_len, ps, k);
            relax_to(k, at.price + match_prefix + len_price + dist_price[LenState(k)], Item::kMatch,
                     d, post);
          }
          from_len = l + 1;
          if (l > longest + 1) {
            longest = l;
            longest_item = Item::kMatch;
            longest_dist = d;
          }
        }
        if (longest >= kNiceLength) {
          stop = i;
          long_len = longest;
          long_dist = longest_dist;
          long_item = longest_item;
          break;
        }
      }
      // Walk back from `stop`, then emit forwards.
      std::vector<uint32_t> path;
      for (uint32_t i = stop; i > 0; i = nodes[i].from)
        path.push_back(i);
      uint32_t done = 0;
      for (auto it = path.rbegin(); it != path.rend(); ++it) {
        const Node& node = nodes[*it];
        if (node.from >= commit) break;
        Emit(pos + node.from, node.item, node.len, node.dist);
        done = *it;
      }
      if (done < stop) {  // the rest is parsed again with the next window
        pos += done;
        continue;
      }
      pos += stop;
      if (long_len > 0) {
        Emit(pos, long_item, long_len, long_dist);
        pos += long_len;
      }
    }
  }

  std::span<const uint8_t> old_;
  std::span<const uint8_t> neu_;
  const MatchFinder& finder_;
  const Prediction& pred_;
  std::unique_ptr<DeltaModel> model_ = std::make_unique<DeltaModel>();
  RangeEncoder rc_;
  DeltaStats* stats_;
  bool code_literals_;
  LzState lz_;
  int64_t decoder_old_pos_ = 0;
  uint32_t xtensa_next_ = 0;
  uint8_t flags_ = 0;
  uint8_t last_diff_[4] = {};
};

}  // namespace

namespace {

struct BlockSpec {
  int64_t old_pos, new_pos, diff_len, extra_len;
};

// Matching follows bsdiff's idea (approximate matches extended forwards and backwards, the
// rest as literals).
std::vector<BlockSpec> MatchBlocks(std::span<const uint8_t> old, std::span<const uint8_t> neu) {
  std::vector<BlockSpec> blocks;
  std::vector<saidx_t> sa(old.size());
  if (!old.empty()) divsufsort(old.data(), sa.data(), static_cast<saidx_t>(old.size()));
  const auto old_size = static_cast<int64_t>(old.size());
  const auto new_size = static_cast<int64_t>(neu.size());

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
    if (len_f > 0 || extra > 0) blocks.push_back({last_pos, last_scan, len_f, extra});
    last_scan = scan - len_b;
    last_pos = pos - len_b;
    last_offset = pos - scan;
  }

  return blocks;
}

// Diff runs with stretches of at least `min_len` bytes equal to the old ones are cut there:
// the stretch becomes a literal run, coded as one copy from the old image (on long stretches a
// zero flag per byte costs more than that).
std::vector<BlockSpec> SplitIdentical(std::span<const uint8_t> old, std::span<const uint8_t> neu,
                                      const std::vector<BlockSpec>& blocks, int64_t min_len) {
  std::vector<BlockSpec> out;
  for (BlockSpec b : blocks) {
    int64_t i = 0;
    while (i < b.diff_len) {
      if (neu[b.new_pos + i] != old[b.old_pos + i]) {
        ++i;
        continue;
      }
      int64_t j = i;
      while (j < b.diff_len && neu[b.new_pos + j] == old[b.old_pos + j])
        ++j;
      if (j - i < min_len) {
        i = j;
        continue;
      }
      out.push_back({b.old_pos, b.new_pos, i, j - i});
      b = {b.old_pos + j, b.new_pos + j, b.diff_len - j, b.extra_len};
      i = 0;
    }
    if (b.diff_len > 0 || b.extra_len > 0) out.push_back(b);
  }
  return out;
}

std::vector<uint8_t> Encode(std::span<const uint8_t> old, std::span<const uint8_t> neu,
                            const std::vector<BlockSpec>& blocks, const Prediction& pred,
                            DeltaStats* stats, bool code_literals = true) {
  const MatchFinder finder(old, neu);
  if (stats) stats->flags = pred.flags;
  BlockWriter out(old, neu, finder, pred, stats, code_literals);
  for (const BlockSpec& b : blocks)
    out.Block(b.old_pos, b.new_pos, b.diff_len, b.extra_len);
  std::vector<uint8_t> patch(codec::kDeltaHeaderSize, 0);
  StoreLe32(patch.data(), codec::kDeltaMagic);
  patch[4] = codec::kDeltaFormat;
  patch[5] = pred.flags;
  StoreLe32(patch.data() + 8, static_cast<uint32_t>(old.size()));
  StoreLe32(patch.data() + 12, static_cast<uint32_t>(neu.size()));
  const std::vector<uint8_t> body = out.Finish();
  patch.insert(patch.end(), body.begin(), body.end());
  return patch;
}

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0] | (p[1] << 8) | (p[2] << 16)) | (uint32_t{p[3]} << 24);
}

// The address the image most likely runs at: the 64 KB-aligned value whose image-sized range
// holds the most aligned words. Candidates: the high halves of the commonest words (not
// 0x0000 or 0xFFFF: small numbers, erased flash) and up to an image size below them. 0 and
// `found` false if too few words look like pointers to bother.
uint32_t GuessBase(std::span<const uint8_t> image, bool* found) {
  *found = false;
  if (image.size() < 1024) return 0;
  std::map<uint32_t, uint32_t> high;
  for (size_t i = 0; i + 4 <= image.size(); i += 4)
    ++high[Le32(&image[i]) >> 16];
  high.erase(0);
  high.erase(0xFFFF);
  std::vector<std::pair<uint32_t, uint32_t>> by_count(high.begin(), high.end());
  std::sort(by_count.begin(), by_count.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  // Words per 64 KB of values, to count a range quickly.
  const uint32_t span = static_cast<uint32_t>((image.size() + 0xFFFF) >> 16);
  uint32_t best = 0, best_count = 0;
  for (size_t c = 0; c < std::min<size_t>(by_count.size(), 16); ++c) {
    for (uint32_t k = 0; k <= span && k <= by_count[c].first; ++k) {
      const uint32_t base = (by_count[c].first - k) << 16;
      if (base == 0 || uint64_t{base} + image.size() > 0xFFFF0000u) continue;
      uint32_t count = 0;
      for (size_t i = 0; i + 4 <= image.size(); i += 4)
        count += Le32(&image[i]) - base < image.size();
      if (count > best_count || (count == best_count && base < best)) {
        best = base;
        best_count = count;
      }
    }
  }
  *found = best_count * 64 >= image.size() / 4;  // at least 1 word in 64
  return best;
}

// A copy of `image` with the target fields of the units `flags` predict zeroed (parsed as
// the decoder classifies them), so that matching does not break blocks at them.
std::vector<uint8_t> ZeroUnits(std::span<const uint8_t> image, uint8_t flags, uint32_t base) {
  std::vector<uint8_t> out(image.begin(), image.end());
  const auto size = static_cast<uint32_t>(out.size());
  uint32_t xtensa_next = 0;
  for (uint32_t i = 0; i + codec::kMinUnit <= size;) {
    const auto avail = std::min<uint32_t>(size - i, 4);
    const codec::UnitKind kind =
        codec::ClassifyUnit(flags, base, size, &out[i], avail, i, &xtensa_next);
    switch (kind) {
      case codec::UnitKind::kPointer:
        std::fill(out.begin() + i, out.begin() + i + 4, 0);
        break;
      case codec::UnitKind::kBranch:
        out[i] = 0;
        out[i + 1] &= 0xF8;
        out[i + 2] = 0;
        out[i + 3] &= 0xF8;
        break;
      case codec::UnitKind::kCall:
        out[i] &= 0x3F;
        out[i + 1] = out[i + 2] = 0;
        break;
      default:
        break;
    }
    i += kind != codec::UnitKind::kNone ? codec::UnitLength(kind)
                                        : ((flags & codec::kFlagPredictCalls) ? 1 : 2);
  }
  return out;
}

// The displacement map from the diff runs: their shifts (new - old) by old offset, equal
// neighbours merged, runs shorter than a threshold dropped (raised until the map fits).
std::vector<std::pair<uint32_t, int32_t>> BuildMap(const std::vector<BlockSpec>& blocks) {
  std::vector<BlockSpec> runs;
  for (const BlockSpec& b : blocks) {
    if (b.diff_len > 0) runs.push_back(b);
  }
  std::sort(runs.begin(), runs.end(),
            [](const BlockSpec& a, const BlockSpec& b) { return a.old_pos < b.old_pos; });
  for (int64_t min_len = 64;; min_len *= 2) {
    std::vector<std::pair<uint32_t, int32_t>> map;
    for (const BlockSpec& r : runs) {
      if (r.diff_len < min_len) continue;
      const auto shift = static_cast<int32_t>(r.new_pos - r.old_pos);
      if (!map.empty() && map.back().second == shift) continue;
      const auto start = static_cast<uint32_t>(map.empty() ? 0 : r.old_pos);
      if (!map.empty() && map.back().first == start) {
        map.back().second = shift;
      } else {
        map.emplace_back(start, shift);
      }
    }
    if (map.size() <= codec::kMaxMapEntries) return map;
  }
}

// The displacement map from what the units' targets actually became: for each unit of the
// diff runs, (old target, new target - old target); runs of equal shifts seen at least twice,
// by old target, become entries (the fewest-seen dropped until the map fits).
std::vector<std::pair<uint32_t, int32_t>> ObservedMap(std::span<const uint8_t> old,
                                                      std::span<const uint8_t> neu,
                                                      const std::vector<BlockSpec>& blocks,
                                                      uint8_t flags, uint32_t base) {
  const auto old_size = static_cast<uint32_t>(old.size());
  std::vector<std::pair<uint32_t, int32_t>> seen;
  uint32_t xtensa_next = 0;
  for (const BlockSpec& b : blocks) {
    for (int64_t i = 0; i + codec::kMinUnit <= b.diff_len; ++i) {
      const auto o = static_cast<uint32_t>(b.old_pos + i);
      const auto np = static_cast<uint32_t>(b.new_pos + i);
      const auto avail = static_cast<uint32_t>(std::min<int64_t>(b.diff_len - i, 4));
      const codec::UnitKind kind =
          codec::ClassifyUnit(flags, base, old_size, &old[o], avail, o, &xtensa_next);
      if (kind == codec::UnitKind::kNone) continue;
      const int64_t from = codec::UnitTarget(kind, base, &old[o], o);
      uint32_t ignore = np;
      const codec::UnitKind now = codec::ClassifyUnit(
          flags, base, static_cast<uint32_t>(neu.size()), &neu[np], avail, np, &ignore);
      if (now == kind && from >= 0 && from < int64_t{old_size}) {
        const int64_t to = codec::UnitTarget(kind, base, &neu[np], np);
        seen.emplace_back(static_cast<uint32_t>(from), static_cast<int32_t>(to - from));
      }
      i += codec::UnitLength(kind) - 1;
    }
  }
  std::stable_sort(seen.begin(), seen.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<uint32_t, int32_t>> diff_runs;  // (old start, shift), by old start
  for (const BlockSpec& b : blocks) {
    if (b.diff_len > 0) {
      diff_runs.emplace_back(static_cast<uint32_t>(b.old_pos),
                             static_cast<int32_t>(b.new_pos - b.old_pos));
    }
  }
  std::sort(diff_runs.begin(), diff_runs.end());
  struct Run {
    uint32_t first, last;  // old targets seen
    int32_t shift;
    uint32_t count;
  };
  std::vector<Run> runs;
  for (const auto& [at, shift] : seen) {
    if (!runs.empty() && runs.back().shift == shift) {
      ++runs.back().count;
      runs.back().last = at;
    } else {
      runs.push_back({at, at, shift, 1});
    }
  }
  for (uint32_t min_count = 2;; ++min_count) {
    std::vector<Run> kept;
    for (const Run& r : runs) {
      if (r.count < min_count) continue;
      if (!kept.empty() && kept.back().shift == r.shift) {
        kept.back().last = r.last;
      } else {
        kept.push_back(r);
      }
    }
    // Each entry starts where, after the last target seen with the previous shift, a diff run
    // with its shift starts; failing that, at the first target seen with its shift.
    std::vector<std::pair<uint32_t, int32_t>> map;
    for (size_t k = 0; k < kept.size(); ++k) {
      uint32_t start = k == 0 ? 0 : kept[k].first;
      if (k > 0) {
        auto it = std::upper_bound(
            diff_runs.begin(), diff_runs.end(), kept[k - 1].last,
            [](uint32_t v, const std::pair<uint32_t, int32_t>& e) { return v < e.first; });
        for (; it != diff_runs.end() && it->first < kept[k].first; ++it) {
          if (it->second == kept[k].shift) {
            start = it->first;
            break;
          }
        }
      }
      while (!map.empty() && map.back().first >= start)  // starts must increase
        map.pop_back();
      if (!map.empty() && map.back().second == kept[k].shift) continue;
      map.emplace_back(map.empty() ? 0 : start, kept[k].shift);
    }
    if (map.size() <= codec::kMaxMapEntries) return map;
  }
}

}  // namespace

// Tries the prediction variants (none; branches, calls and/or pointers; block-shift or
// observed map), then on the best: matching on images with its fields zeroed, the other
// literal context modes, cutting long identical stretches out of diff runs; keeps the
// smallest patch.
std::vector<uint8_t> EncodeDelta(std::span<const uint8_t> old, std::span<const uint8_t> neu,
                                 DeltaStats* stats) {
  std::vector<BlockSpec> blocks = MatchBlocks(old, neu);
  DeltaStats best_stats;
  std::vector<uint8_t> best = Encode(old, neu, blocks, Prediction{}, &best_stats);
  Prediction best_pred;
  if (!old.empty() && !neu.empty()) {
    // Literal runs code the same whatever is predicted (their tables are their own), so the
    // variants are compared on the rest of the patch, coded without them.
    auto rest = [](const DeltaStats& s) {
      return s.control_cost + s.diff_flag_cost + s.diff_value_cost + s.map_cost;
    };
    DeltaStats none;
    Encode(old, neu, blocks, Prediction{}, &none, false);
    double best_rest = rest(none);
    bool have_base = false;
    const uint32_t base = GuessBase(old, &have_base);
    bool best_observed = false;
    // Thumb-2 and Xtensa units are not tried together.
    for (uint8_t arch : {uint8_t{0}, codec::kFlagPredictBranches, codec::kFlagPredictCalls}) {
      for (uint8_t pointers : {uint8_t{0}, codec::kFlagPredictPointers}) {
        if ((arch | pointers) == 0 || (pointers != 0 && !have_base)) continue;
        for (bool observed : {false, true}) {
          Prediction pred;
          pred.flags = arch | pointers;
          pred.base = base;
          pred.map = observed ? ObservedMap(old, neu, blocks, pred.flags, base) : BuildMap(blocks);
          DeltaStats trial;
          Encode(old, neu, blocks, pred, &trial, false);
          if (rest(trial) < best_rest) {
            best_rest = rest(trial);
            best_pred = std::move(pred);
            best_observed = observed;
          }
        }
      }
    }
    if (best_pred.flags != 0) {
      DeltaStats trial;
      std::vector<uint8_t> patch = Encode(old, neu, blocks, best_pred, &trial);
      if (patch.size() < best.size()) {
        best = std::move(patch);
        best_stats = trial;
      } else {
        best_pred = Prediction{};
      }
    }
    if (best_pred.flags != 0) {  // the same prediction, matching with its fields zeroed
      std::vector<BlockSpec> zeroed =
          MatchBlocks(ZeroUnits(old, best_pred.flags, base), ZeroUnits(neu, best_pred.flags, base));
      Prediction pred = best_pred;
      pred.map = best_observed ? ObservedMap(old, neu, zeroed, pred.flags, base) : BuildMap(zeroed);
      DeltaStats trial;
      std::vector<uint8_t> patch = Encode(old, neu, zeroed, pred, &trial);
      if (patch.size() < best.size()) {
        best = std::move(patch);
        best_stats = trial;
        best_pred = std::move(pred);
        blocks = std::move(zeroed);
      }
    }
  }
  Prediction final_pred = best_pred;
  for (uint8_t mode = 1; mode < codec::kLiteralModes; ++mode) {
    Prediction pred = best_pred;
    pred.flags = static_cast<uint8_t>(pred.flags | (mode << codec::kLiteralModeShift));
    DeltaStats trial;
    std::vector<uint8_t> patch = Encode(old, neu, blocks, pred, &trial);
    if (patch.size() < best.size()) {
      best = std::move(patch);
      best_stats = trial;
      final_pred = std::move(pred);
    }
  }
  for (int64_t min_len : {256, 1024, 16384}) {
    const std::vector<BlockSpec> split = SplitIdentical(old, neu, blocks, min_len);
    auto same = [](const BlockSpec& a, const BlockSpec& b) {
      return a.old_pos == b.old_pos && a.new_pos == b.new_pos && a.diff_len == b.diff_len &&
             a.extra_len == b.extra_len;
    };
    if (std::equal(split.begin(), split.end(), blocks.begin(), blocks.end(), same)) continue;
    DeltaStats trial;
    std::vector<uint8_t> patch = Encode(old, neu, split, final_pred, &trial);
    if (patch.size() < best.size()) {
      best = std::move(patch);
      best_stats = trial;
    }
  }
  if (stats) *stats = best_stats;
  return best;
}

}  // namespace ota::host

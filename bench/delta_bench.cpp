// Delta codec benchmark: for each firmware pair, our patch (encoded, decoded by the device
// decoder from emulated flash, checked byte for byte) next to bsdiff, xdelta3 and zstd
// measured in the same run; and each new image compressed whole, next to xz -9e.
//
// Usage: delta_bench [DIR...]. A DIR holding exactly one *.old.bin and one *.new.bin is one
// pair named after the DIR; a DIR with several (like ../shared/firmware-pairs) is grouped by
// the file-name prefix before the first '_'.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ota/codec/delta_decoder.hpp"
#include "ota/codec/memory_source.hpp"
#include "ota/host/delta_encoder.hpp"
#include "sim/board_flash.hpp"
#include "sim/emulated_flash.hpp"
#include "sim/flash_timing.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

struct Pair {
  std::string name;
  fs::path old_path, new_path;
};

Bytes Load(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

std::vector<Pair> FindPairs(const fs::path& dir) {
  std::map<std::string, Pair> found;
  std::vector<fs::path> olds, news;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.ends_with(".old.bin")) olds.push_back(e.path());
    if (f.ends_with(".new.bin")) news.push_back(e.path());
  }
  if (olds.size() == 1 && news.size() == 1) {
    return {{dir.filename().string(), olds[0], news[0]}};
  }
  for (const auto& p : olds) {
    const std::string f = p.filename().string();
    found[f.substr(0, f.find('_'))].old_path = p;
  }
  for (const auto& p : news) {
    const std::string f = p.filename().string();
    found[f.substr(0, f.find('_'))].new_path = p;
  }
  std::vector<Pair> pairs;
  for (auto& [name, pair] : found) {
    if (pair.old_path.empty() || pair.new_path.empty()) continue;
    pair.name = name;
    pairs.push_back(pair);
  }
  return pairs;
}

// Size of what `command` wrote to `out`, or -1 if it failed.
long long Peer(const std::string& command, const fs::path& out) {
  fs::remove(out);
  if (std::system((command + " 2>/dev/null").c_str()) != 0 || !fs::exists(out)) return -1;
  return static_cast<long long>(fs::file_size(out));
}

std::string Q(const fs::path& p) {
  return "'" + p.string() + "'";
}

struct Decoded {
  bool exact = false;
  double seconds = 0;
};

// Decodes with the device decoder, the old image in an emulated W25Q128 as on the board.
Decoded Decode(const Bytes& old, const Bytes& patch, const Bytes& expected) {
  static ota::sim::EmulatedFlash flash(ota::kStm32f429Fire.external, ota::sim::kW25q128Timing,
                                       nullptr);
  std::copy(old.begin(), old.end(), flash.raw().begin());
  // The new image is written to the upper half of the same device as it comes out.
  constexpr uint32_t kNewOffset = 8u << 20;
  ota::codec::MemorySource source(ota::ConstByteSpan(patch.data(), patch.size()));
  const auto start = std::chrono::steady_clock::now();
  ota::codec::DeltaDecoder decoder(
      source, ota::FlashArea(flash, 0, static_cast<uint32_t>(std::max<size_t>(old.size(), 1))),
      ota::FlashArea(flash, kNewOffset, kNewOffset));
  Decoded result;
  if (!decoder.Init(static_cast<uint32_t>(old.size())).ok()) return result;
  Bytes out;
  out.reserve(expected.size());
  uint8_t buf[1024];
  for (;;) {
    const ota::Result<size_t> n = decoder.Read(ota::ByteSpan(buf));
    if (!n.ok()) return result;
    if (n.value() == 0) break;
    std::copy(buf, buf + n.value(), flash.raw().begin() + kNewOffset + out.size());
    out.insert(out.end(), buf, buf + n.value());
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exact = out == expected;
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> dirs;
  for (int i = 1; i < argc; ++i)
    dirs.emplace_back(argv[i]);
  if (dirs.empty()) dirs.emplace_back(fs::path(OTA_SOURCE_DIR) / "../shared/firmware-pairs");
  char tmpl[] = "/tmp/delta-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 2;
  const fs::path tmp(tmpl);
  int failures = 0;
  int pairs_done = 0;
  for (const fs::path& dir : dirs) {
    if (!fs::is_directory(dir)) {
      std::fprintf(stderr, "delta-bench: %s is not a directory (skipped)\n", dir.c_str());
      continue;
    }
    for (const Pair& pair : FindPairs(dir)) {
      const Bytes old = Load(pair.old_path);
      const Bytes neu = Load(pair.new_path);
      const auto start = std::chrono::steady_clock::now();
      ota::host::DeltaStats stats;
      const Bytes patch = ota::host::EncodeDelta(old, neu, &stats);
      const double encode_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const Decoded decoded = Decode(old, patch, neu);
      if (!decoded.exact) {
        std::printf("delta: %s FAILED: decoded image differs\n", pair.name.c_str());
        ++failures;
        continue;
      }
      const long long bsdiff =
          Peer("bsdiff " + Q(pair.old_path) + " " + Q(pair.new_path) + " " + Q(tmp / "p.bsdiff"),
               tmp / "p.bsdiff");
      const long long xdelta = Peer("xdelta3 -e -9 -f -s " + Q(pair.old_path) + " " +
                                        Q(pair.new_path) + " " + Q(tmp / "p.xd3"),
                                    tmp / "p.xd3");
      const long long zstd = Peer("zstd -q -f -19 --patch-from=" + Q(pair.old_path) + " " +
                                      Q(pair.new_path) + " -o " + Q(tmp / "p.zst"),
                                  tmp / "p.zst");
      long long best = -1;
      for (long long v : {bsdiff, xdelta, zstd}) {
        if (v > 0 && (best < 0 || v < best)) best = v;
      }
      std::printf(
          "delta: %s new=%zu ours=%zu bsdiff=%lld xdelta3=%lld zstd=%lld best_peer_ratio=%.3f "
          "decoder_ram=%zu encode_s=%.2f decode_mb_s=%.1f\n",
          pair.name.c_str(), neu.size(), patch.size(), bsdiff, xdelta, zstd,
          best > 0 ? static_cast<double>(patch.size()) / static_cast<double>(best) : 0.0,
          sizeof(ota::codec::DeltaDecoder), encode_s,
          static_cast<double>(neu.size()) / 1e6 / std::max(decoded.seconds, 1e-9));

      std::printf(
          "delta-detail: %s blocks=%llu diff_bytes=%llu nonzero=%llu extra_bytes=%llu "
          "cost_control=%.0f cost_diff_flags=%.0f cost_diff_values=%.0f cost_literals=%.0f "
          "cost_map=%.0f flags=%u predicted_units=%llu\n",
          pair.name.c_str(), static_cast<unsigned long long>(stats.blocks),
          static_cast<unsigned long long>(stats.diff_bytes),
          static_cast<unsigned long long>(stats.nonzero_diffs),
          static_cast<unsigned long long>(stats.extra_bytes), stats.control_cost,
          stats.diff_flag_cost, stats.diff_value_cost, stats.literal_cost, stats.map_cost,
          stats.flags, static_cast<unsigned long long>(stats.predicted_units));

      // The full image against an empty old one, next to xz -9e.
      const Bytes full = ota::host::EncodeDelta({}, neu);
      const bool full_ok = Decode({}, full, neu).exact;
      const long long xz =
          Peer("xz -9e -k -c " + Q(pair.new_path) + " > " + Q(tmp / "f.xz"), tmp / "f.xz");
      std::printf("full: %s new=%zu ours=%zu xz=%lld ratio=%.3f%s\n", pair.name.c_str(), neu.size(),
                  full.size(), xz,
                  xz > 0 ? static_cast<double>(full.size()) / static_cast<double>(xz) : 0.0,
                  full_ok ? "" : " FAILED: decoded image differs");
      if (!full_ok) ++failures;
      ++pairs_done;
    }
  }
  fs::remove_all(tmp);
  if (pairs_done == 0) {
    std::fprintf(stderr, "delta-bench: no pairs found in the given directories\n");
    return 1;
  }
  return failures == 0 ? 0 : 1;
}

// Package figures: bytes a package adds over its codec payload, and how long verification takes
// on the host for a 512 KB package: what `ota verify` does (parse, hash, ECDSA), the loader's
// whole pre-erase check (the same plus the codec header and, for a diff, the running image's
// hash), and ECDSA alone; plus what reading the package costs on the board's SPI flash.
#include <chrono>
#include <cstdio>
#include <vector>

#include "ota/host/image_builder.hpp"
#include "ota/host/package_apply.hpp"
#include "ota/image.hpp"
#include "ota/package.hpp"
#include "ota/package_installer.hpp"
#include "sim/flash_timing.hpp"
#include "sim_board.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double MeanMs(int runs, F&& f) {
  const auto start = Clock::now();
  for (int i = 0; i < runs; ++i)
    f();
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / runs;
}

uint32_t Overhead(const std::vector<uint8_t>& pkg) {
  ota::PackageError e;
  const ota::Result<ota::PackageManifest> m =
      ota::ParseManifest(ota::ConstByteSpan(pkg.data(), pkg.size()), &e);
  return m.ok() ? static_cast<uint32_t>(pkg.size() - m->payload_size) : 0;
}

}  // namespace

int main() {
  using namespace ota;  // NOLINT: a benchmark's main
  const BoardProfile& board_profile = kStm32f429Fire;
  const uint32_t load =
      board_profile.internal_base + board_profile.partition(PartitionId::kRunning).offset;
  constexpr uint32_t kImage = 512 * 1024 - 512;  // package ~512 KB: fills the download region
  const std::vector<uint8_t> v1 = testing::MakeTestImage("FOTAV1", kImage, load, 1);
  // v2: v1 with a changed stretch in the middle, as a real new version would look.
  std::vector<uint8_t> v2 = testing::MakeTestImage("FOTAV2", kImage, load, 2);
  std::copy(v1.begin() + 0x400, v1.begin() + 200000, v2.begin() + 0x400);
  std::copy(v1.begin() + 260000, v1.end() - kImageTrailerSize - 4096, v2.begin() + 260000);
  v2.resize(v2.size() - kImageTrailerSize);
  std::fill(v2.begin() + kImageHeaderOffset, v2.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
  v2 = host::StampImage(std::move(v2), "FOTAV2", load).image;

  testing::TestKey key;
  host::PackageSpec spec;
  spec.version = "FOTAV2";
  spec.image = v2;
  spec.codec = CodecId::kStored;  // random bytes: stored is what makes the package 512 KB
  const std::vector<uint8_t> full = testing::MakePackage(spec, &key);
  host::PackageSpec diff_spec = spec;
  diff_spec.kind = PackageKind::kDiff;
  diff_spec.codec = CodecId::kDelta;
  diff_spec.from_version = "FOTAV1";
  diff_spec.source = v1;
  const std::vector<uint8_t> diff = testing::MakePackage(diff_spec, &key);

  std::printf("package: overhead_full=%u overhead_diff=%u signature_block=%u header=%u\n",
              Overhead(full), Overhead(diff), kSignatureBlockSize, kPackageHeaderSize);

  host::ApplyOptions options;
  options.keys = {key.trusted()};
  constexpr int kRuns = 20;
  bool all_valid = true;
  const double verify_ms =
      MeanMs(kRuns, [&] { all_valid = host::VerifyPackage(full, options).valid && all_valid; });

  // The loader's Check on the simulated board, flash already holding both images.
  testing::SimBoard board(board_profile);
  board.FlashRunning(v1);
  if (!board.Stage(full, "FOTAV2").ok()) return 1;
  const TrustedKey keys[1] = {key.trusted()};
  Flash* const flashes[kFlashCount] = {&board.flash().internal, &board.flash().external};
  const FlashArea staged = OpenPartition(board_profile, flashes, PartitionId::kDownload);
  const FlashArea running = OpenPartition(board_profile, flashes, PartitionId::kRunning);
  BootRecord record;
  uint8_t work[1024];
  const InstallerContext ctx{
      staged, static_cast<uint32_t>(full.size()), running, load, record, ByteSpan(work)};
  board.flash().ResetCounters();
  const double check_ms = MeanMs(kRuns, [&] {
    // A fresh installer each time: no signature cached from the run before.
    PackageInstaller installer(PackagePolicy{Span<const TrustedKey>(keys), false});
    FailReason why;
    all_valid = installer.Check(ctx, &why).ok() && all_valid;
  });
  const double board_read_s =
      static_cast<double>(board.flash().counters().time_typ_us) / 1e6 / kRuns;

  Sha256Digest digest = {1, 2, 3};
  const std::vector<uint8_t> der = host::SignDigest(key.pkey(), digest);
  const double ecdsa_ms = MeanMs(kRuns, [&] {
    all_valid =
        VerifyEcdsaP256(keys[0].point, digest, ConstByteSpan(der.data(), der.size())).ok() &&
        all_valid;
  });
  if (!all_valid) {
    std::fprintf(stderr, "package-bench: a valid package did not verify\n");
    return 1;
  }
  std::printf(
      "verify: package=%zu ota_verify_ms=%.2f loader_check_ms=%.2f ecdsa_ms=%.2f "
      "board_flash_read_s=%.3f\n",
      full.size(), verify_ms, check_ms, ecdsa_ms, board_read_s);
  return 0;
}

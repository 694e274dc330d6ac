// Estimates how long a full 512 KB upgrade takes on the real FIRE board, from the flash
// timing model (datasheet typical and maximum figures), for this loader and for the seed's
// original flow replayed on the same emulated flash. Prints one line per flow.
#include <cstdio>
#include <vector>

#include "ota/boot_state.hpp"
#include "ota/otp_counter.hpp"
#include "ota/trust_store.hpp"
#include "sim/flash_timing.hpp"
#include "sim_board.hpp"
#include "test_images.hpp"

namespace {

using ota::FlashId;
using ota::PartitionId;

void Print(const char* flow, const ota::sim::BoardFlash& board) {
  const ota::sim::FlashCounters c = board.counters();
  std::printf(
      "upgrade-time: flow=%s typ=%s max=%s internal_typ=%s external_typ=%s program_ops=%llu "
      "erase_ops=%llu erased_kb=%llu\n",
      flow, ota::sim::FormatMicros(c.time_typ_us).c_str(),
      ota::sim::FormatMicros(c.time_max_us).c_str(),
      ota::sim::FormatMicros(board.internal.counters().time_typ_us).c_str(),
      ota::sim::FormatMicros(board.external.counters().time_typ_us).c_str(),
      static_cast<unsigned long long>(c.program_ops), static_cast<unsigned long long>(c.erase_ops),
      static_cast<unsigned long long>(c.erased_bytes / 1024));
}

int Fail(const char* what) {
  std::fprintf(stderr, "upgrade-time: %s\n", what);
  return 1;
}

// The seed's loader (LiteOS_Lab iot_link ota): copy the whole running slot to backup with
// 4 KB erases, erase the running slot plus one sector too many, program the new image byte by
// byte, and rewrite both flag copies (4 KB erase + program each) before every step.
int SeedFlow(const std::vector<uint8_t>& image) {
  ota::BoardProfile profile = ota::kStm32f429Fire;
  profile.internal.program_align = 1;         // byte programming (PSIZE x8), as the original driver
  profile.external.block_erase_sizes[0] = 0;  // the original erased in 4 KB sectors only
  profile.external.block_erase_sizes[1] = 0;
  ota::sim::BoardFlash board(profile);
  ota::Flash& in = board.internal;
  ota::Flash& ex = board.external;
  const auto& run = profile.partition(PartitionId::kRunning);
  const auto& bak = profile.partition(PartitionId::kBackup);
  const auto& flag = profile.partition(PartitionId::kBootStateA);
  const auto& flag2 = profile.partition(PartitionId::kBootStateB);
  std::vector<uint8_t> buf(256);
  const uint8_t record[180] = {0};
  auto write_flags = [&]() {
    return ex.Erase(flag.offset, 4096).ok() &&
           ex.Program(flag.offset, ota::ConstByteSpan(record)).ok() &&
           ex.Erase(flag2.offset, 4096).ok() &&
           ex.Program(flag2.offset, ota::ConstByteSpan(record)).ok();
  };
  if (!write_flags()) return Fail("seed flow: flag write failed");  // step BACKUP
  if (!ex.Erase(bak.offset, bak.size).ok()) return Fail("seed flow: backup erase failed");
  for (uint32_t off = 0; off < run.size; off += 256) {
    if (!in.Read(run.offset + off, ota::ByteSpan(buf.data(), 256)).ok() ||
        !ex.Program(bak.offset + off, ota::ConstByteSpan(buf.data(), 256)).ok()) {
      return Fail("seed flow: backup copy failed");
    }
  }
  if (!write_flags()) return Fail("seed flow: flag write failed");  // step PATCH
  // Defect 5: last sector computed from addr+len: sectors 5-9 instead of 5-8.
  if (!in.Erase(run.offset, run.size + 128 * 1024).ok()) return Fail("seed flow: erase failed");
  for (uint32_t off = 0; off < image.size(); ++off) {
    if (!in.Program(run.offset + off, ota::ConstByteSpan(&image[off], 1)).ok()) {
      return Fail("seed flow: program failed");
    }
  }
  if (!write_flags()) return Fail("seed flow: flag write failed");  // step DONE
  Print("seed-original", board);
  return 0;
}

int OurFlow(const std::vector<uint8_t>& old_image, const std::vector<uint8_t>& new_image) {
  ota::testing::SimBoard board(ota::kStm32f429Fire);
  board.FlashRunning(old_image);
  if (!board.Stage(new_image, "FOTAV2").ok()) return Fail("could not stage the package");
  board.flash().ResetCounters();  // the loader's work only, not the download
  const ota::Result<ota::BootDecision> d = board.Boot();
  if (!d.ok() || !d->boot_app || !board.RunningHolds(new_image)) {
    return Fail("our flow: upgrade did not complete");
  }
  Print("ours", board.flash());
  return 0;
}

// What the loader's root of trust costs at a power-on: reading the trust record (both internal
// sectors scanned) and the OTP counter, against the whole idle boot, which reads the 512 KB
// image once to hash it. Flash time only, from the model: the CPU's SHA-256 and CRC work is
// not modelled (docs/firmware.md gives its estimate).
int BootFlow(const std::vector<uint8_t>& image) {
  ota::testing::SimBoard board(ota::kStm32f429Fire);
  board.FlashRunning(image);
  if (!board.Boot().ok()) return Fail("boot flow: the first boot failed");
  // A used trust record: a few upgrades' worth of records in the copy in use.
  for (int i = 0; i < 20; ++i) {
    ota::Result<ota::TrustRecord> t = board.Trust();
    ota::Flash* const flashes[ota::kFlashCount] = {&board.flash().internal,
                                                   &board.flash().external};
    ota::TrustStore store(ota::OpenPartition(ota::kStm32f429Fire, flashes, PartitionId::kTrustA),
                          ota::OpenPartition(ota::kStm32f429Fire, flashes, PartitionId::kTrustB));
    if (!t.ok() || !store.Save(t.value()).ok()) return Fail("boot flow: trust record write");
  }
  board.flash().ResetCounters();
  const ota::Result<ota::BootDecision> d = board.Boot();
  if (!d.ok() || !d->boot_app) return Fail("boot flow: the idle boot did not boot");
  const ota::sim::FlashCounters boot = board.flash().counters();
  board.flash().ResetCounters();
  if (!board.Trust().ok() || !board.OtpCounterValue().ok()) return Fail("boot flow: reads");
  const ota::sim::FlashCounters trust = board.flash().counters();
  std::printf(
      "boot-time: idle boot typ=%s (flash reads of %llu KB; the image's SHA-256 on the CPU is "
      "not modelled) trust-check typ=%s (%llu bytes: trust record and OTP counter) writes=%llu\n",
      ota::sim::FormatMicros(boot.time_typ_us).c_str(),
      static_cast<unsigned long long>(boot.read_bytes / 1024),
      ota::sim::FormatMicros(trust.time_typ_us).c_str(),
      static_cast<unsigned long long>(trust.read_bytes),
      static_cast<unsigned long long>(boot.program_ops + boot.erase_ops));
  return 0;
}

}  // namespace

int main() {
  const uint32_t slot = 512 * 1024;
  const uint32_t load = ota::kStm32f429Fire.internal_base +
                        ota::kStm32f429Fire.partition(PartitionId::kRunning).offset;
  const auto old_image = ota::testing::MakeTestImage("FOTAV1", slot, load, 1);
  const auto new_image = ota::testing::MakeTestImage("FOTAV2", slot, load, 2);
  std::printf(
      "upgrade-time: a full %u KB image into the 512 KB running slot, STM32F429 + W25Q128\n",
      slot / 1024);
  if (OurFlow(old_image, new_image) != 0) return 1;
  if (BootFlow(old_image) != 0) return 1;
  return SeedFlow(new_image);
}

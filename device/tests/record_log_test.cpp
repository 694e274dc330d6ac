// RecordLog's sequence numbers across torn appends (ota/record_log.hpp). A torn slot fails its
// CRC today, but its bits may read back differently another day (a marginal cell settles
// programmed) and turn it into a valid record: its sequence number must then be one that no
// later record reuses, or the stale record could win the next Load.
#include "ota/record_log.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "ota/bytes.hpp"
#include "sim/board_flash.hpp"

namespace ota {
namespace {

constexpr uint32_t kMagic = 0x474C544F;  // bytes "OTLG"
constexpr uint32_t kPayloadOffset = 16;

void Fill(RecordBytes& raw, uint32_t payload) {
  std::memset(raw, 0, kRecordSize);
  StoreLe32(raw, kMagic);
  StoreLe32(raw + kPayloadOffset, payload);
}

// kSimSmall's trust-record partitions: internal flash, 1 KB sectors of 8 records, programmed
// one word per operation (so a tear can stop after any word of a record).
class RecordLogTest : public ::testing::Test {
 protected:
  RecordLogTest() { Reset(); }

  void Reset() { board_ = std::make_unique<sim::BoardFlash>(kSimSmall); }

  FlashArea Copy(PartitionId id) {
    Flash* const flashes[kFlashCount] = {&board_->internal, &board_->external};
    return OpenPartition(kSimSmall, flashes, id);
  }
  RecordLog Log() {
    return RecordLog(Copy(PartitionId::kTrustA), Copy(PartitionId::kTrustB), kMagic, nullptr);
  }

  // Appends a record carrying `payload`; `raw` keeps the bytes the log meant to write.
  Status Append(uint32_t payload, RecordBytes& raw) {
    Fill(raw, payload);
    RecordLog log = Log();
    return log.Append(raw).status();
  }
  Status Append(uint32_t payload) {
    RecordBytes raw;
    return Append(payload, raw);
  }
  // The same with the power torn at the append's `op`th flash operation.
  Status TornAppend(uint32_t payload, uint64_t op, RecordBytes& raw) {
    board_->power.Arm(sim::FaultPlan{0, op, op * 7919});
    const Status s = Append(payload, raw);
    board_->power.PowerOn();
    return s;
  }

  // Every slot of both copies, as raw cells.
  std::vector<uint8_t*> Slots() {
    std::vector<uint8_t*> slots;
    for (PartitionId id : {PartitionId::kTrustA, PartitionId::kTrustB}) {
      const Partition& p = kSimSmall.partition(id);
      for (uint32_t off = 0; off + kRecordSize <= p.size; off += kRecordSize)
        slots.push_back(&board_->internal.raw()[p.offset + off]);
    }
    return slots;
  }

  // The torn slot that was to hold `intended` reads back as all of it: marginal bits settle
  // programmed. False if no slot is a torn copy of it (the tear left nothing, or the slot
  // was erased since).
  bool Heal(const RecordBytes& intended) {
    for (uint8_t* slot : Slots()) {
      bool partial = std::memcmp(slot, intended, kRecordSize) != 0;
      bool erased = true;
      for (uint32_t i = 0; i < kRecordSize && partial; ++i) {
        partial = (slot[i] & intended[i]) == intended[i];  // only bits still to program
        erased = erased && slot[i] == 0xFF;
      }
      if (partial && !erased) {
        std::memcpy(slot, intended, kRecordSize);
        return true;
      }
    }
    return false;
  }

  // Sequence numbers of all valid records; fails the test if one repeats.
  void ExpectNoSequenceTwice() {
    std::set<uint32_t> seen;
    for (uint8_t* slot : Slots()) {
      RecordBytes raw;
      std::memcpy(raw, slot, kRecordSize);
      if (!CheckRecord(raw, kMagic, nullptr).ok()) continue;
      const uint32_t sequence = LoadLe32(raw + kRecordSequenceOffset);
      EXPECT_TRUE(seen.insert(sequence).second)
          << "two valid records with sequence " << sequence << " (payload "
          << LoadLe32(raw + kPayloadOffset) << ")";
    }
  }

  uint32_t Loaded() {
    RecordBytes raw;
    RecordLog log = Log();
    const Result<bool> found = log.Load(raw);
    EXPECT_TRUE(found.ok() && *found);
    return LoadLe32(raw + kPayloadOffset);
  }

  std::unique_ptr<sim::BoardFlash> board_;
};

// The +2 rule: after one torn append, the next append skips the number the torn slot may hold.
// Swept over every operation of the torn append, from a log with 1 to 17 records before it
// (so through copy switches, where the append erases the other copy first).
TEST_F(RecordLogTest, TornAppendThenAppend_NoSequenceTwiceEvenIfTheTornSlotHeals) {
  int healed = 0;
  for (uint32_t before = 1; before <= 17; ++before) {
    for (uint64_t op = 1;; ++op) {
      SCOPED_TRACE(::testing::Message() << before << " records, tear at op " << op);
      Reset();
      for (uint32_t i = 1; i <= before; ++i)
        ASSERT_TRUE(Append(i).ok());
      RecordBytes torn;
      if (TornAppend(1000, op, torn).ok()) break;  // past the append's last operation
      ASSERT_TRUE(Append(2000).ok());
      if (Heal(torn)) ++healed;
      ExpectNoSequenceTwice();
      EXPECT_EQ(Loaded(), 2000u);
    }
  }
  EXPECT_GT(healed, 100);
}

// Found with this test (a "+2 when any slot is torn" rule covered one torn slot only): once a
// copy holds a torn slot, a second torn append and the append after it got the same number,
// and if the second torn slot later read back whole, Load returned the stale record. Replay: 1
// good append, torn append, good append, torn append, good append. Numbering by the count of
// torn slots (newest + 1 + torn slots seen by the scan) keeps every number unique.
TEST_F(RecordLogTest, SecondTornAppendWhileATornSlotRemains_NoSequenceTwice) {
  ASSERT_TRUE(Append(1).ok());
  RecordBytes first, second;
  ASSERT_FALSE(TornAppend(2, 8, first).ok());
  ASSERT_TRUE(Append(3).ok());
  ASSERT_FALSE(TornAppend(4, 8, second).ok());
  ASSERT_TRUE(Append(5).ok());
  ASSERT_TRUE(Heal(first));
  ASSERT_TRUE(Heal(second));
  ExpectNoSequenceTwice();
  EXPECT_EQ(Loaded(), 5u) << "a stale record won";
}

// The same root cause with two tears in a row (a supply that browns out twice).
TEST_F(RecordLogTest, TwoTornAppendsInARow_NoSequenceTwice) {
  ASSERT_TRUE(Append(1).ok());
  RecordBytes first, second;
  ASSERT_FALSE(TornAppend(2, 8, first).ok());
  ASSERT_FALSE(TornAppend(3, 8, second).ok());
  ASSERT_TRUE(Append(4).ok());
  ASSERT_TRUE(Heal(first));
  ASSERT_TRUE(Heal(second));
  ExpectNoSequenceTwice();
  EXPECT_EQ(Loaded(), 4u) << "a stale record won";
}

}  // namespace
}  // namespace ota

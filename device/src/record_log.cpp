#include "ota/record_log.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/crc32.hpp"

namespace ota {

Status CheckRecord(const RecordBytes& raw, uint32_t magic, RecordLog::AcceptFn accept) {
  bool erased = true;
  for (uint8_t b : raw)
    erased = erased && b == 0xFF;
  if (erased) return StatusCode::kNotFound;
  if (LoadLe32(raw) != magic ||
      LoadLe32(raw + kRecordCrcOffset) != Crc32(0, ConstByteSpan(raw, kRecordCrcOffset))) {
    return StatusCode::kCorrupt;
  }
  if (accept != nullptr && !accept(raw)) return StatusCode::kCorrupt;
  return Status::Ok();
}

void SealRecord(RecordBytes& raw) {
  StoreLe32(raw + kRecordCrcOffset, Crc32(0, ConstByteSpan(raw, kRecordCrcOffset)));
}

Result<RecordLog::Scan> RecordLog::ScanCopies(RecordBytes& newest) {
  Scan scan;
  for (int c = 0; c < 2; ++c) {
    const uint32_t slots = copies_[c].size() / kRecordSize;
    for (uint32_t s = 0; s < slots; ++s) {
      RecordBytes raw;
      OTA_TRY(copies_[c].Read(s * kRecordSize, ByteSpan(raw)));
      const Status check = CheckRecord(raw, magic_, accept_);
      if (check.code() == StatusCode::kNotFound) continue;  // erased slot
      scan.next_slot[c] = s + 1;  // written (valid or torn): appends go after it
      if (!check.ok()) {
        ++scan.torn;
        continue;
      }
      const uint32_t sequence = LoadLe32(raw + kRecordSequenceOffset);
      if (!scan.found || sequence > scan.sequence) {
        scan.found = true;
        scan.copy = c;
        scan.slot = s;
        scan.sequence = sequence;
        std::memcpy(newest, raw, kRecordSize);
      }
    }
  }
  return scan;
}

Result<bool> RecordLog::Load(RecordBytes& out) {
  OTA_TRY_ASSIGN(const Scan scan, ScanCopies(out));
  return scan.found;
}

Result<uint32_t> RecordLog::Append(RecordBytes& raw) {
  if (copies_[0].size() < kRecordSize || copies_[1].size() < kRecordSize) {
    return StatusCode::kTooLarge;
  }
  RecordBytes newest;
  OTA_TRY_ASSIGN(const Scan scan, ScanCopies(newest));
  int copy = scan.found ? scan.copy : 1;  // a blank store starts in copy A (after the switch)
  uint32_t slot = scan.found ? scan.next_slot[copy] : slots_per_copy();
  // A torn slot may hold, in bits that read back differently another day, the number its
  // append meant to write, which was at most newest + 1 + the torn slots before it. Skipping
  // one number per torn slot means no two records ever share a sequence number.
  const uint64_t next = uint64_t{scan.found ? scan.sequence : 0} + 1 + scan.torn;
  // Numbers near the top (written by anyone who can write this flash: a forged record can
  // carry any number) would wrap and lose to the old record for ever. Start again from 1 in
  // the other copy, then erase the copy with the high numbers; until that erase completes the
  // old newest record still wins, so a cut leaves the store as if this append never happened.
  const bool renumber = next > kMaxRecordSequence;
  if (slot >= slots_per_copy() || renumber) {
    // The current copy is full: start over in the other one. Erasing it is safe because the
    // newest valid record is in `copy`, which stays untouched until a later switch.
    copy = 1 - copy;
    slot = 0;
    OTA_TRY(copies_[copy].Erase(0, copies_[copy].size()));
  }
  const uint32_t sequence = renumber ? 1 : static_cast<uint32_t>(next);
  StoreLe32(raw + kRecordSequenceOffset, sequence);
  SealRecord(raw);
  OTA_TRY(copies_[copy].Program(slot * kRecordSize, ConstByteSpan(raw)));
  RecordBytes check;
  OTA_TRY(copies_[copy].Read(slot * kRecordSize, ByteSpan(check)));
  if (std::memcmp(raw, check, kRecordSize) != 0) return StatusCode::kIoError;
  if (renumber) OTA_TRY(copies_[1 - copy].Erase(0, copies_[1 - copy].size()));
  return sequence;
}

}  // namespace ota

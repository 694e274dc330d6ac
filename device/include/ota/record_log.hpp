// A power-safe store of one small record in two erase sectors, the shape both the boot state
// (external flash) and the loader's trust record (internal flash) use.
//
// Every record is kRecordSize bytes: a u32 magic at 0, a u32 sequence number at 8 and a CRC-32
// of bytes [0, 124) at 124; the rest is the owner's. Saves append the next record to the copy
// in use; the newest valid record wins. A copy is erased only when the newest record lives in
// the *other* copy, so at no instant is the only good record erased, and a torn append fails
// its CRC so the record before it stands. docs/DESIGN.md ("Boot state") has the argument.
#pragma once

#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/status.hpp"

namespace ota {

inline constexpr uint32_t kRecordSize = 128;
inline constexpr uint32_t kRecordSequenceOffset = 8;
inline constexpr uint32_t kRecordCrcOffset = kRecordSize - 4;

using RecordBytes = uint8_t[kRecordSize];
// Past this, an append starts the numbering again from 1 (see RecordLog::Append).
inline constexpr uint32_t kMaxRecordSequence = 0x7FFFFFFF;

class RecordLog {
 public:
  // `accept` is the owner's full check of a record whose magic and CRC are right (formats,
  // ranges, reserved bytes): a record it refuses counts as torn.
  using AcceptFn = bool (*)(const RecordBytes& raw);

  // Two areas of exactly one erase sector each.
  RecordLog(const FlashArea& a, const FlashArea& b, uint32_t magic, AcceptFn accept)
      : copies_{a, b}, magic_(magic), accept_(accept) {}

  // Copies the newest valid record into `out`; false if there is none (a blank store).
  Result<bool> Load(RecordBytes& out);
  // Appends `raw` with the next sequence number and the CRC filled in, then reads it back.
  // Returns the sequence number written.
  Result<uint32_t> Append(RecordBytes& raw);

  uint32_t slots_per_copy() const { return copies_[0].size() / kRecordSize; }

 private:
  struct Scan {
    bool found = false;
    int copy = 0;                // copy holding the newest valid record
    uint32_t sequence = 0;       // its sequence number
    uint32_t slot = 0;           // its slot
    uint32_t torn = 0;           // slots holding bytes that are neither erased nor a valid record
    uint32_t next_slot[2] = {};  // first slot after the last non-erased slot, per copy
  };
  Result<Scan> ScanCopies(RecordBytes& newest);

  FlashArea copies_[2];
  uint32_t magic_;
  AcceptFn accept_;
};

// The magic, CRC and owner's check of one record; kNotFound if it is erased (all 0xFF),
// kCorrupt if it is anything else that is not a valid record.
Status CheckRecord(const RecordBytes& raw, uint32_t magic, RecordLog::AcceptFn accept);
// Fills in the CRC of `raw` (the last 4 bytes).
void SealRecord(RecordBytes& raw);

}  // namespace ota

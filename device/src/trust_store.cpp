#include "ota/trust_store.hpp"

#include <cstring>

#include "ota/bytes.hpp"

namespace ota {

// Layout (docs/spec/trust-record.md). Offsets:
namespace {
constexpr uint32_t kOffMagic = 0, kOffFormat = 4, kOffSequence = kRecordSequenceOffset,
                   kOffConfirmedSize = 12, kOffConfirmedCounter = 16, kOffTrialSize = 20,
                   kOffTrialCounter = 24, kOffConfirmedSha = 32, kOffTrialSha = 64,
                   kOffReserved = 96;
static_assert(kOffTrialSha + kSha256Size == kOffReserved, "layout");
static_assert(kOffReserved < kRecordCrcOffset, "layout");

bool FieldsValid(const RecordBytes& in) {
  if (in[kOffFormat] != kTrustRecordFormat) return false;
  for (uint32_t i : {5u, 6u, 7u, 28u, 29u, 30u, 31u}) {
    if (in[i] != 0) return false;
  }
  for (uint32_t i = kOffReserved; i < kRecordCrcOffset; ++i) {
    if (in[i] != 0) return false;
  }
  return true;
}
}  // namespace

void EncodeTrustRecord(const TrustRecord& r, RecordBytes& out) {
  std::memset(out, 0, kRecordSize);
  StoreLe32(out + kOffMagic, kTrustRecordMagic);
  out[kOffFormat] = kTrustRecordFormat;
  StoreLe32(out + kOffSequence, r.sequence);
  StoreLe32(out + kOffConfirmedSize, r.confirmed.size);
  StoreLe32(out + kOffConfirmedCounter, r.confirmed.security_counter);
  StoreLe32(out + kOffTrialSize, r.trial.size);
  StoreLe32(out + kOffTrialCounter, r.trial.security_counter);
  std::memcpy(out + kOffConfirmedSha, r.confirmed.sha256, kSha256Size);
  std::memcpy(out + kOffTrialSha, r.trial.sha256, kSha256Size);
  SealRecord(out);
}

Result<TrustRecord> DecodeTrustRecord(const RecordBytes& in) {
  OTA_TRY(CheckRecord(in, kTrustRecordMagic, &FieldsValid));
  TrustRecord r;
  r.sequence = LoadLe32(in + kOffSequence);
  r.confirmed.size = LoadLe32(in + kOffConfirmedSize);
  r.confirmed.security_counter = LoadLe32(in + kOffConfirmedCounter);
  r.trial.size = LoadLe32(in + kOffTrialSize);
  r.trial.security_counter = LoadLe32(in + kOffTrialCounter);
  std::memcpy(r.confirmed.sha256, in + kOffConfirmedSha, kSha256Size);
  std::memcpy(r.trial.sha256, in + kOffTrialSha, kSha256Size);
  return r;
}

TrustStore::TrustStore(const FlashArea& a, const FlashArea& b)
    : log_(a, b, kTrustRecordMagic, &FieldsValid) {}

Result<TrustRecord> TrustStore::Load(bool* found) {
  RecordBytes raw;
  OTA_TRY_ASSIGN(*found, log_.Load(raw));
  if (!*found) return TrustRecord{};
  return DecodeTrustRecord(raw);
}

Status TrustStore::Save(TrustRecord& record) {
  RecordBytes raw;
  EncodeTrustRecord(record, raw);
  OTA_TRY_ASSIGN(record.sequence, log_.Append(raw));
  return Status::Ok();
}

}  // namespace ota

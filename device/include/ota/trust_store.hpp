// The loader's trust record: which images the loader vouches for, kept in internal-flash
// sectors that only the MCU writes (docs/spec/trust-record.md, docs/DESIGN.md "Root of
// trust"). The external flash can say what it likes: an image boots, is backed up or is
// restored only if its SHA-256 is one of these.
#pragma once

#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/record_log.hpp"
#include "ota/sha256.hpp"
#include "ota/status.hpp"

namespace ota {

struct TrustedImage {
  uint32_t size = 0;              // bytes of the image with its trailer; 0 = no image
  Sha256Digest sha256 = {};       // of its first image_size bytes: the image's trailer (image.md)
  uint32_t security_counter = 0;  // the counter of the package that installed it

  bool present() const { return size != 0; }
  bool Matches(uint32_t image_size, const Sha256Digest digest) const {
    return present() && size == image_size && DigestEqual(sha256, digest);
  }
};

struct TrustRecord {
  uint32_t sequence = 0;   // set by TrustStore::Save
  TrustedImage confirmed;  // the last image the app confirmed (or the factory's image)
  TrustedImage trial;      // installed from a verified package, not yet confirmed
};

inline constexpr uint32_t kTrustRecordMagic = 0x5254544F;  // bytes "OTTR"
inline constexpr uint8_t kTrustRecordFormat = 1;

void EncodeTrustRecord(const TrustRecord& record, RecordBytes& out);
// kNotFound if erased, kCorrupt if not a valid record.
Result<TrustRecord> DecodeTrustRecord(const RecordBytes& in);

class TrustStore {
 public:
  // The profile's kTrustA/kTrustB: one internal-flash sector each.
  TrustStore(const FlashArea& a, const FlashArea& b);

  // The newest record; false in `*found` for a board whose loader has not run yet.
  Result<TrustRecord> Load(bool* found);
  Status Save(TrustRecord& record);

 private:
  RecordLog log_;
};

}  // namespace ota

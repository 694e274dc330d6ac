// Uploaded update packages: verified against the product's keys before anything is stored,
// kept as content-addressed blobs (the file's SHA-256 names it), and chosen per device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ota/server/database.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

struct PackageRecord {
  int64_t package_id = 0;
  std::string product_id, sha256, kind, version, source_version, key_id, file_name, description;
  int64_t size = 0;
  std::string category = "firmware";  // firmware (our signed package) | software (SOTA)
};

class PackageStore {
 public:
  PackageStore(Database& db, Registry& registry, std::filesystem::path blob_dir);

  // Refuses (ApiError) a file that is not a package, is unsigned, is not signed by one of the
  // product's keys, or is already stored; the blob is written before the row, atomically.
  PackageRecord Upload(const std::string& product_id, const std::vector<uint8_t>& bytes,
                       const std::string& file_name);
  // A software (SOTA) package: any file, which the device's application installs. Its
  // authenticity is a detached ECDSA P-256 / SHA-256 signature (DER, as `openssl dgst -sha256
  // -sign` writes it) by one of the product's keys; devices check the file's SHA-256 ("sign").
  PackageRecord UploadSoftware(const std::string& product_id, const std::vector<uint8_t>& bytes,
                               const std::string& file_name, const std::string& version,
                               const std::vector<uint8_t>& signature);
  PackageRecord Get(int64_t package_id) { return Read(db_, package_id); }
  // The same through any connection (a download's read-only one).
  static PackageRecord Read(Database& db, int64_t package_id);
  std::vector<PackageRecord> List(const std::string& product_id);
  std::filesystem::path BlobPath(const PackageRecord& record) const;
  // Removes the row, then the file (a file without a row is harmless; a row without its file
  // is not). 409 while an open task uses it; ended tasks that named it keep no package.
  void Delete(int64_t package_id);

  // For a device on `current_version`: the diff package to `target_version` when one exists,
  // else the full package; nullopt when neither does.
  // Only packages of `category` (a software package is always full).
  std::optional<PackageRecord> Choose(const std::string& product_id,
                                      const std::string& target_version,
                                      const std::string& current_version,
                                      const std::string& category = "firmware");

 private:
  PackageRecord Store(PackageRecord r, const std::vector<uint8_t>& bytes);
  Database& db_;
  Registry& registry_;
  std::filesystem::path blob_dir_;
};

}  // namespace ota::server

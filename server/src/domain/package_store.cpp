#include "ota/server/package_store.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "ota/host/package_apply.hpp"
#include "ota/package.hpp"
#include "ota/server/hex.hpp"
#include "ota/server/upgrade_tasks.hpp"
#include "ota/sha256.hpp"

namespace ota::server {

namespace {

void WriteBlob(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  if (std::filesystem::exists(path)) return;  // content-addressed: already there, identical
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw ApiError(500, "blob store: " + std::string(std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw ApiError(500, "blob store: write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw ApiError(500, "blob store: " + std::string(std::strerror(errno)));
  }
}

PackageRecord FromRow(Statement& st) {
  PackageRecord r;
  r.package_id = st.Int(0);
  r.product_id = st.Text(1);
  r.sha256 = st.Text(2);
  r.size = st.Int(3);
  r.kind = st.Text(4);
  r.version = st.Text(5);
  r.source_version = st.Text(6);
  r.key_id = st.Text(7);
  r.file_name = st.Text(8);
  r.description = st.Text(9);
  r.category = st.Text(10);
  return r;
}

constexpr const char* kColumns =
    "SELECT package_id, product_id, sha256, size, kind, version, COALESCE(source_version, ''), "
    "key_id, file_name, description, category FROM packages ";

// Whether `signature` (DER ECDSA) over `bytes` verifies with the PEM public key.
bool VerifyDetached(const std::string& public_pem, const std::vector<uint8_t>& bytes,
                    const std::vector<uint8_t>& signature) {
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* key = bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      key != nullptr && ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, signature.data(), signature.size(), bytes.data(), bytes.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

PackageStore::PackageStore(Database& db, Registry& registry, std::filesystem::path blob_dir)
    : db_(db), registry_(registry), blob_dir_(std::move(blob_dir)) {
  std::filesystem::create_directories(blob_dir_);
}

PackageRecord PackageStore::Upload(const std::string& product_id, const std::vector<uint8_t>& bytes,
                                   const std::string& file_name) {
  const std::vector<TrustedKey> keys = registry_.TrustedKeys(product_id);  // 404 first
  PackageError perr = PackageError::kNone;
  const ConstByteSpan all(bytes.data(), bytes.size());
  const Result<PackageManifest> m =
      ParseManifest(all.first(kPackageHeaderSize + kManifestMax), &perr);
  if (!m.ok()) throw ApiError(422, std::string("not a package: ") + PackageErrorName(perr));
  const Result<bool> is_signed = HasSignatureBlock(*m, static_cast<uint32_t>(bytes.size()), &perr);
  if (!is_signed.ok()) throw ApiError(422, std::string("not a package: ") + PackageErrorName(perr));
  if (!is_signed.value()) throw ApiError(422, "the package is not signed");
  if (keys.empty()) throw ApiError(422, "product " + product_id + " has no signing keys");
  host::ApplyOptions options;
  options.keys = keys;
  const host::VerifyResult v = host::VerifyPackage(bytes, options);
  if (!v.valid) {
    throw ApiError(422, "package refused: " + v.error +
                            (v.reason == FailReason::kBadSignature
                                 ? " (not signed by a key of product " + product_id + ")"
                                 : ""));
  }
  const Result<SignatureBlock> sig = ParseSignatureBlock(all.subspan(m->signed_size()), &perr);
  Sha256 sha;
  Sha256Digest digest;
  if (!sig.ok() || !sha.Update(all).ok() || !sha.Finish(digest).ok()) {
    throw ApiError(422, "package refused: signature block");
  }
  PackageRecord r;
  r.product_id = product_id;
  r.sha256 = ToHex(std::span<const uint8_t>(digest, kSha256Size));
  r.size = static_cast<int64_t>(bytes.size());
  r.kind = m->kind == PackageKind::kDiff ? "diff" : "full";
  r.version = m->target_version;
  r.source_version = m->kind == PackageKind::kDiff ? m->source_version : "";
  r.key_id = ToHex(sig->key_id);
  r.file_name = file_name.empty() ? r.version + "-" + r.kind + ".bin" : file_name;
  r.description = m->description;
  return Store(std::move(r), bytes);
}

PackageRecord PackageStore::UploadSoftware(const std::string& product_id,
                                           const std::vector<uint8_t>& bytes,
                                           const std::string& file_name, const std::string& version,
                                           const std::vector<uint8_t>& signature) {
  const Product product = registry_.GetProduct(product_id);  // 404 first
  if (version.empty() || version.size() > 64 || SafeUtf8(version, 64) != version) {
    throw ApiError(400, "version: 1-64 bytes of UTF-8");
  }
  if (bytes.empty()) throw ApiError(422, "the software package is empty");
  if (product.keys.empty()) throw ApiError(422, "product " + product_id + " has no signing keys");
  std::string key_id;
  for (const ProductKey& k : product.keys) {
    if (VerifyDetached(k.public_pem, bytes, signature)) key_id = k.key_id;
  }
  if (key_id.empty()) {
    throw ApiError(
        422, "software package refused: the signature is not by a key of product " + product_id);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_sha256(), nullptr);
  PackageRecord r;
  r.product_id = product_id;
  r.sha256 = ToHex(std::span<const uint8_t>(digest, n));
  r.size = static_cast<int64_t>(bytes.size());
  r.kind = "full";
  r.category = "software";
  r.version = version;
  r.key_id = key_id;
  r.file_name = file_name.empty() ? version + "-software.bin" : file_name;
  return Store(std::move(r), bytes);
}

PackageRecord PackageStore::Store(PackageRecord r, const std::vector<uint8_t>& bytes) {
  const std::string& product_id = r.product_id;
  if (db_.Prepare("SELECT 1 FROM packages WHERE sha256 = ?").Bind(1, r.sha256).Step()) {
    throw ApiError(409, "this package is already uploaded");
  }
  Statement same = db_.Prepare(
      "SELECT package_id FROM packages WHERE product_id = ? AND kind = ? AND version = ? AND "
      "COALESCE(source_version, '') = ? AND category = ?");
  same.Bind(1, product_id).Bind(2, r.kind).Bind(3, r.version).Bind(4, r.source_version);
  same.Bind(5, r.category);
  if (same.Step()) {
    throw ApiError(409, "product " + product_id + " already has a " +
                            (r.category == "software" ? "software" : r.kind) + " package for " +
                            (r.source_version.empty() ? "" : r.source_version + " -> ") +
                            r.version + " (package " + std::to_string(same.Int(0)) + ")");
  }
  WriteBlob(BlobPath(r), bytes);
  Transaction tx(db_);
  Statement ins = db_.Prepare(
      "INSERT INTO packages (product_id, sha256, size, kind, version, source_version, key_id, "
      "file_name, description, created_at, category) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.Bind(1, r.product_id).Bind(2, r.sha256).Bind(3, r.size).Bind(4, r.kind).Bind(5, r.version);
  if (r.source_version.empty()) {
    ins.BindNull(6);
  } else {
    ins.Bind(6, r.source_version);
  }
  ins.Bind(7, r.key_id).Bind(8, r.file_name).Bind(9, r.description);
  ins.Bind(10, static_cast<int64_t>(std::time(nullptr))).Bind(11, r.category);
  ins.Run();
  r.package_id = db_.LastInsertId();
  tx.Commit();
  return r;
}

PackageRecord PackageStore::Read(Database& db, int64_t package_id) {
  Statement st = db.Prepare(std::string(kColumns) + "WHERE package_id = ?");
  st.Bind(1, package_id);
  if (!st.Step()) throw ApiError(404, "no package " + std::to_string(package_id));
  return FromRow(st);
}

std::vector<PackageRecord> PackageStore::List(const std::string& product_id) {
  Statement st =
      db_.Prepare(std::string(kColumns) + "WHERE (?1 = '' OR product_id = ?1) ORDER BY package_id");
  st.Bind(1, product_id);
  std::vector<PackageRecord> out;
  while (st.Step())
    out.push_back(FromRow(st));
  return out;
}

void PackageStore::Delete(int64_t package_id) {
  Transaction tx(db_);
  const PackageRecord r = Get(package_id);
  // In use: an open task names it, or targets its version without naming a package (such a
  // task picks, per device when it commands it, a diff from the version the device reports or
  // else the full package: any package of the product, category and version may be picked,
  // whatever a diff's source), or a device of a task was sent it and has not ended.
  Statement open = db_.Prepare(
      "SELECT task_id FROM tasks WHERE stopped = 0 AND finished_at IS NULL AND (package_id = ?1 "
      "OR (package_id IS NULL AND product_id = ?2 AND kind = ?3 AND target_version = ?4)) "
      "UNION SELECT task_id FROM task_devices WHERE package_id = ?1 AND status IN ('Waiting', "
      "'Processing', 'FailWaitRetry') LIMIT 1");
  open.Bind(1, package_id).Bind(2, r.product_id).Bind(3, r.category).Bind(4, r.version);
  if (open.Step()) {
    throw ApiError(409, "package " + std::to_string(package_id) + " is used by open task " +
                            std::to_string(open.Int(0)));
  }
  // Ended tasks never act again; their rows keep the number for the record.
  db_.Prepare("UPDATE tasks SET package_id = NULL WHERE package_id = ?").Bind(1, package_id).Run();
  db_.Prepare("DELETE FROM packages WHERE package_id = ?").Bind(1, package_id).Run();
  tx.Commit();
  std::error_code ec;
  std::filesystem::remove(BlobPath(r), ec);  // left behind on failure: harmless
}

std::filesystem::path PackageStore::BlobPath(const PackageRecord& record) const {
  return blob_dir_ / record.sha256;
}

std::optional<PackageRecord> PackageStore::Choose(const std::string& product_id,
                                                  const std::string& target_version,
                                                  const std::string& current_version,
                                                  const std::string& category) {
  Statement diff = db_.Prepare(std::string(kColumns) +
                               "WHERE product_id = ? AND kind = 'diff' AND version = ? AND "
                               "source_version = ? AND category = ?");
  diff.Bind(1, product_id).Bind(2, target_version).Bind(3, current_version).Bind(4, category);
  if (diff.Step()) return FromRow(diff);
  Statement full = db_.Prepare(std::string(kColumns) +
                               "WHERE product_id = ? AND kind = 'full' AND version = ? AND "
                               "category = ?");
  full.Bind(1, product_id).Bind(2, target_version).Bind(3, category);
  if (full.Step()) return FromRow(full);
  return std::nullopt;
}

}  // namespace ota::server

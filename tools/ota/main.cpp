// `ota`: makes, signs, checks and applies update packages (docs/tools/ota.md).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ota/boot_state.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/host/package_apply.hpp"
#include "ota/host/package_builder.hpp"
#include "ota/package.hpp"
#include "ota/profile.hpp"
#include "ota/sha256.hpp"
#include "terminal.hpp"

namespace ota::cli {
namespace {

int Fail(int code, const std::string& message) {
  Progress::ClearActive();  // the error gets a line of its own
  std::fprintf(stderr, "ota: %s\n", message.c_str());
  return code;
}

const BoardProfile* Board(const std::string& name, std::string* error) {
  const BoardProfile* p = FindProfile(name.c_str());
  if (p == nullptr) *error = "unknown board '" + name + "' (known: stm32f429-fire, sim-small)";
  return p;
}

std::string Sha256Hex(std::span<const uint8_t> bytes) {
  Sha256 sha;
  uint8_t d[kSha256Size];
  if (!sha.Update(ConstByteSpan(bytes.data(), bytes.size())).ok() || !sha.Finish(d).ok()) {
    return "?";
  }
  return Hex(d);
}

// Loads a private key, asking for its password only if it is encrypted.
host::PrivateKeyResult LoadSigningKey(const std::string& path, const std::string& password_file) {
  host::PrivateKeyResult result;
  std::string error;
  if (!std::filesystem::exists(path)) {
    result.error = path + ": no such file";
    return result;
  }
  std::string password;
  if (host::IsEncryptedPrivateKey(path)) {
    const std::optional<std::string> p =
        GetPassword(password_file, false, "Password for " + path + ": ", &error);
    if (!p) {
      result.error = error;
      return result;
    }
    password = *p;
  }
  return host::LoadPrivateKey(path, password);
}

// --pub keys get no permission beyond upgrading; --downgrade-pub keys may sign downgrades.
bool LoadKeys(const std::vector<std::string>& pubs, const std::vector<std::string>& downgrade_pubs,
              std::vector<TrustedKey>* keys, std::string* error) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& path : pass == 0 ? pubs : downgrade_pubs) {
      const host::PublicKeyResult k = host::LoadPublicKey(path);
      if (!k.error.empty()) {
        *error = k.error;
        return false;
      }
      TrustedKey t{};
      std::memcpy(t.point, k.point.data(), kPublicKeySize);
      t.permissions = pass == 0 ? 0u : static_cast<uint32_t>(kKeyMayDowngrade);
      keys->push_back(t);
    }
  }
  return true;
}

// ---- keygen ----
struct KeygenArgs {
  std::string out, pub, password_file;
};

int Keygen(const KeygenArgs& a) {
  if (std::filesystem::exists(a.out)) {
    return Fail(kExitInput, a.out + ": exists; ota keygen never overwrites a key");
  }
  if (!a.pub.empty() && std::filesystem::exists(a.pub)) {
    return Fail(kExitInput, a.pub + ": exists; ota keygen never overwrites a key");
  }
  std::string error;
  const std::optional<std::string> password =
      GetPassword(a.password_file, true, "Password for the new key: ", &error);
  if (!password) return Fail(kExitInput, error);
  if (password->size() < host::kMinPasswordLength) {
    return Fail(kExitInput, "the password must be at least " +
                                std::to_string(host::kMinPasswordLength) + " characters");
  }
  error = host::GenerateKeyFiles(a.out, a.pub, *password);
  if (!error.empty()) return Fail(kExitOutput, error);
  std::string key_id;
  if (!a.pub.empty()) {
    const host::PublicKeyResult k = host::LoadPublicKey(a.pub);
    if (k.error.empty()) key_id = Hex(host::KeyIdOf(k.point));
  }
  std::printf("keygen: private=%s public=%s key_id=%s\n", a.out.c_str(),
              a.pub.empty() ? "-" : a.pub.c_str(), key_id.empty() ? "-" : key_id.c_str());
  return kExitOk;
}

// ---- pack ----
struct PackArgs {
  std::string full;
  std::vector<std::string> diff;
  std::string version, from_version, out, key, password_file, description, codec = "delta";
  std::string board = "stm32f429-fire";
  uint32_t counter = 0;
  bool allow_downgrade = false;
};

int Pack(const PackArgs& a) {
  std::string error;
  const bool diff = !a.diff.empty();
  if (diff == !a.full.empty()) return Fail(kExitUsage, "give exactly one of --full or --diff");
  if (diff && a.from_version.empty()) return Fail(kExitUsage, "--diff needs --from-version");
  if (!diff && !a.from_version.empty()) {
    return Fail(kExitUsage, "--from-version is only for --diff");
  }
  host::PackageSpec spec;
  spec.profile = Board(a.board, &error);
  if (spec.profile == nullptr) return Fail(kExitUsage, error);
  spec.kind = diff ? PackageKind::kDiff : PackageKind::kFull;
  spec.version = a.version;
  spec.from_version = a.from_version;
  spec.security_counter = a.counter;
  spec.allow_downgrade = a.allow_downgrade;
  spec.description = a.description;
  if (a.codec == "stored") {
    spec.codec = CodecId::kStored;
  } else if (a.codec != "delta") {
    return Fail(kExitUsage, "--codec must be delta or stored");
  }

  Progress progress("pack", a.key.empty() ? 3 : 4);
  progress.Stage("reading");
  host::Pkey key;
  if (!a.key.empty()) {
    host::PrivateKeyResult k = LoadSigningKey(a.key, a.password_file);
    if (!k.error.empty()) return Fail(kExitInput, k.error);
    key = std::move(k.key);
  }
  const std::string new_path = diff ? a.diff[1] : a.full;
  std::optional<std::vector<uint8_t>> image = ReadFile(new_path, &error);
  if (!image) return Fail(kExitInput, error);
  spec.image = std::move(*image);
  if (diff) {
    std::optional<std::vector<uint8_t>> source = ReadFile(a.diff[0], &error);
    if (!source) return Fail(kExitInput, error);
    spec.source = std::move(*source);
  }
  progress.Stage("encoding and checking");
  host::PackResult packed = host::BuildPackage(spec);
  if (!packed.error.empty()) return Fail(kExitInput, packed.error);
  std::vector<uint8_t> bytes = std::move(packed.package);
  if (key) {
    progress.Stage("signing");
    host::SignResult s = host::SignPackage(bytes, key.get());
    if (!s.error.empty()) return Fail(kExitInput, s.error);
    bytes = std::move(s.package);
  }
  progress.Stage("writing");
  if (!WriteFileAtomic(a.out, bytes, &error)) return Fail(kExitOutput, error);
  progress.Done();
  PackageError perr = PackageError::kNone;
  const Result<PackageManifest> m = ParseManifest(ConstByteSpan(bytes.data(), bytes.size()), &perr);
  const uint32_t payload = m.ok() ? m->payload_size : 0;
  std::printf("pack: %s kind=%s version=%s size=%zu payload=%u overhead=%zu signed=%s sha256=%s\n",
              a.out.c_str(), diff ? "diff" : "full", a.version.c_str(), bytes.size(), payload,
              bytes.size() - payload, key ? "yes" : "no", Sha256Hex(bytes).c_str());
  return kExitOk;
}

// ---- sign ----
struct SignArgs {
  std::string package, key, out, password_file;
};

int Sign(const SignArgs& a) {
  std::string error;
  const std::optional<std::vector<uint8_t>> bytes = ReadFile(a.package, &error);
  if (!bytes) return Fail(kExitInput, error);
  host::PrivateKeyResult k = LoadSigningKey(a.key, a.password_file);
  if (!k.error.empty()) return Fail(kExitInput, k.error);
  const host::SignResult s = host::SignPackage(*bytes, k.key.get());
  if (!s.error.empty()) return Fail(kExitInput, a.package + ": " + s.error);
  if (!WriteFileAtomic(a.out, s.package, &error)) return Fail(kExitOutput, error);
  std::printf("sign: %s size=%zu key_id=%s sha256=%s\n", a.out.c_str(), s.package.size(),
              Hex(host::KeyIdOf(host::PublicPointOf(k.key.get()))).c_str(),
              Sha256Hex(s.package).c_str());
  return kExitOk;
}

// What verify and apply check against: the loader's keys, the board, its recorded counter.
struct CheckArgs {
  std::vector<std::string> pubs, downgrade_pubs;
  uint32_t counter = 0;
  std::string board = "stm32f429-fire";
  // 0 on success, else the exit code after the error is printed.
  int Options(host::ApplyOptions* options) const {
    std::string error;
    options->profile = Board(board, &error);
    if (options->profile == nullptr) return Fail(kExitUsage, error);
    options->security_counter = counter;
    if (!LoadKeys(pubs, downgrade_pubs, &options->keys, &error)) return Fail(kExitInput, error);
    return kExitOk;
  }
};

// ---- verify ----
struct VerifyArgs : CheckArgs {
  std::string package;
};

int Verify(const VerifyArgs& a) {
  std::string error;
  host::ApplyOptions options;
  if (const int rc = a.Options(&options); rc != kExitOk) return rc;
  const std::optional<std::vector<uint8_t>> bytes = ReadFile(a.package, &error);
  if (!bytes) return Fail(kExitInput, error);
  const auto start = std::chrono::steady_clock::now();
  const host::VerifyResult v = host::VerifyPackage(*bytes, options);
  if (!v.valid) return Fail(kExitRefused, a.package + ": invalid: " + v.error);
  // A full package's target is decoded and checked as the loader checks it before booting;
  // one it would not boot is installed and then rolled back on the device: target-mismatch.
  const host::TargetCheck t = host::CheckPackageTarget(*bytes, options);
  if (t.checked && !t.bootable) {
    const FailReason why = FailReason::kTargetMismatch;
    return Fail(kExitRefused, a.package + ": invalid: " + FailReasonName(why) + " (IoTDA result " +
                                  std::to_string(IotdaResultCode(why)) +
                                  "): the target image: " + t.error);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("verify: %s valid size=%zu time_ms=%.1f\n", a.package.c_str(), bytes->size(), ms);
  return kExitOk;
}

// ---- inspect ----
struct InspectArgs {
  std::string package;
  bool json = false;
};

int Inspect(const InspectArgs& a) {
  std::string error;
  const std::optional<std::vector<uint8_t>> bytes = ReadFile(a.package, &error);
  if (!bytes) return Fail(kExitInput, error);
  const ConstByteSpan all(bytes->data(), bytes->size());
  PackageError perr = PackageError::kNone;
  const Result<PackageManifest> parsed =
      ParseManifest(all.first(kPackageHeaderSize + kManifestMax), &perr);
  if (!parsed.ok()) {
    return Fail(kExitInput, a.package + ": not a valid package: " + PackageErrorName(perr));
  }
  const PackageManifest& m = parsed.value();
  const Result<bool> is_signed = HasSignatureBlock(m, static_cast<uint32_t>(bytes->size()), &perr);
  if (!is_signed.ok()) {
    return Fail(kExitInput, a.package + ": not a valid package: " + PackageErrorName(perr));
  }
  SignatureBlock sig;
  if (is_signed.value()) {
    const Result<SignatureBlock> s = ParseSignatureBlock(all.subspan(m.signed_size()), &perr);
    if (!s.ok()) {
      return Fail(kExitInput, a.package + ": not a valid package: " + PackageErrorName(perr));
    }
    sig = s.value();
  }
  const bool diff = m.kind == PackageKind::kDiff;
  const std::string codec = m.codec == CodecId::kStored ? "stored" : "delta";
  nlohmann::ordered_json j;
  j["file"] = a.package;
  j["file_size"] = bytes->size();
  j["sha256"] = Sha256Hex(*bytes);
  j["format"] = kPackageFormat;
  j["kind"] = diff ? "diff" : "full";
  j["target"] = {
      {"version", m.target_version}, {"size", m.target_size}, {"sha256", Hex(m.target_sha256)}};
  if (diff) {
    j["source"] = {
        {"version", m.source_version}, {"size", m.source_size}, {"sha256", Hex(m.source_sha256)}};
  }
  j["codec"] = {{"name", codec}, {"format", m.codec_format}};
  j["payload"] = {{"offset", m.payload_offset()}, {"size", m.payload_size}};
  j["security_counter"] = m.security_counter;
  j["allow_downgrade"] = (m.flags & kPackageFlagAllowDowngrade) != 0;
  j["description"] = m.description;
  if (is_signed.value()) {
    j["signature"] = {{"algorithm", "ecdsa-p256-sha256"},
                      {"key_id", Hex(sig.key_id)},
                      {"der_size", sig.der_length}};
  } else {
    j["signature"] = nullptr;
  }
  if (a.json) {
    // Names and descriptions are bytes, not necessarily UTF-8: never throw on them.
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  std::printf("package          %s (%zu bytes)\n", a.package.c_str(), bytes->size());
  std::printf("sha256           %s\n", j["sha256"].get<std::string>().c_str());
  std::printf("format           %u\n", kPackageFormat);
  std::printf("kind             %s\n", diff ? "diff" : "full");
  std::printf("target           %s, %u bytes, sha256 %s\n", m.target_version, m.target_size,
              Hex(m.target_sha256).c_str());
  if (diff) {
    std::printf("source           %s, %u bytes, sha256 %s\n", m.source_version, m.source_size,
                Hex(m.source_sha256).c_str());
  }
  std::printf("codec            %s (format %u)\n", codec.c_str(), m.codec_format);
  std::printf("payload          %u bytes at offset %u\n", m.payload_size, m.payload_offset());
  std::printf("security counter %u\n", m.security_counter);
  std::printf("allow downgrade  %s\n", (m.flags & kPackageFlagAllowDowngrade) != 0 ? "yes" : "no");
  if (m.description[0] != '\0') std::printf("description      %s\n", m.description);
  if (is_signed.value()) {
    std::printf(
        "signature        ECDSA P-256/SHA-256, key id %s, %u-byte DER (not checked: "
        "use ota verify)\n",
        Hex(sig.key_id).c_str(), sig.der_length);
  } else {
    std::printf("signature        none (unsigned: ota sign)\n");
  }
  return kExitOk;
}

// ---- apply ----
struct ApplyArgs : CheckArgs {
  std::string package, old, out;
};

int Apply(const ApplyArgs& a) {
  std::string error;
  host::ApplyOptions options;
  if (const int rc = a.Options(&options); rc != kExitOk) return rc;
  Progress progress("apply", 3);
  progress.Stage("reading");
  const std::optional<std::vector<uint8_t>> bytes = ReadFile(a.package, &error);
  if (!bytes) return Fail(kExitInput, error);
  std::vector<uint8_t> old;
  if (!a.old.empty()) {
    std::optional<std::vector<uint8_t>> o = ReadFile(a.old, &error);
    if (!o) return Fail(kExitInput, error);
    old = std::move(*o);
  }
  progress.Stage("running the loader");
  const host::ApplyResult r = host::ApplyPackage(*bytes, old, options);
  if (!r.installed) return Fail(kExitRefused, a.package + ": " + r.error);
  progress.Stage("writing");
  if (!WriteFileAtomic(a.out, r.image, &error)) return Fail(kExitOutput, error);
  progress.Done();
  std::printf("apply: %s size=%zu sha256=%s signature=%s board_s=%.2f\n", a.out.c_str(),
              r.image.size(), Sha256Hex(r.image).c_str(),
              options.keys.empty() ? "not-checked" : "valid", r.board_seconds);
  return kExitOk;
}

// ---- stamp ----
struct StampArgs {
  std::string binary, version, out;
  std::string board = "stm32f429-fire";
};

int Stamp(const StampArgs& a) {
  std::string error;
  const BoardProfile* profile = Board(a.board, &error);
  if (profile == nullptr) return Fail(kExitUsage, error);
  std::optional<std::vector<uint8_t>> bytes = ReadFile(a.binary, &error);
  if (!bytes) return Fail(kExitInput, error);
  const Partition& slot = profile->partition(PartitionId::kRunning);
  host::StampResult r =
      host::StampImage(std::move(*bytes), a.version, profile->internal_base + slot.offset);
  if (!r.error.empty()) return Fail(kExitInput, a.binary + ": " + r.error);
  std::string version;
  error = host::CheckAppImage(r.image, *profile, &version);
  if (!error.empty()) return Fail(kExitInput, a.binary + ": " + error);
  if (!WriteFileAtomic(a.out, r.image, &error)) return Fail(kExitOutput, error);
  std::printf("stamp: %s version=%s size=%zu sha256=%s\n", a.out.c_str(), a.version.c_str(),
              r.image.size(), Sha256Hex(r.image).c_str());
  return kExitOk;
}

constexpr const char* kExitCodes =
    "Exit codes: 0 success; 1 package invalid or refused (verify, apply); 2 bad command line;\n"
    "3 an input is missing or wrong (file, password, key, image); 4 an output could not be "
    "written.\n"
    "Key passwords come from --password-file, else $OTA_KEY_PASSWORD, else the terminal.";

}  // namespace
}  // namespace ota::cli

int main(int argc, char** argv) {
  using namespace ota::cli;  // NOLINT: the subcommands read better unqualified
  CLI::App app{"ota: make, sign, verify, inspect and apply firmware update packages"};
  app.footer(kExitCodes);
  app.require_subcommand(1);

  KeygenArgs kg;
  CLI::App* keygen = app.add_subcommand("keygen", "Make an ECDSA P-256 signing key");
  keygen->add_option("-o,--out", kg.out, "private key file (PEM, password-encrypted)")->required();
  keygen->add_option("--pub", kg.pub, "also write the public key here (PEM)");
  keygen->add_option("--password-file", kg.password_file, "read the password from this file");
  keygen->footer(kExitCodes);

  PackArgs pk;
  CLI::App* pack = app.add_subcommand("pack", "Make a full or diff package");
  auto* full = pack->add_option("--full", pk.full, "new app image: make a full package");
  auto* diff = pack->add_option("--diff", pk.diff, "old and new app images: make a diff package")
                   ->expected(2);
  full->excludes(diff);
  pack->add_option("--version", pk.version, "the new image's version string")->required();
  pack->add_option("--from-version", pk.from_version, "the old image's version (diff)");
  pack->add_option("-o,--out", pk.out, "package file to write")->required();
  pack->add_option("--key", pk.key, "sign with this private key (else the package is unsigned)");
  pack->add_option("--password-file", pk.password_file, "the key's password file");
  pack->add_option("--counter", pk.counter, "security counter (anti-rollback)");
  pack->add_flag("--allow-downgrade", pk.allow_downgrade,
                 "allow installing below the device's counter (needs a downgrade key)");
  pack->add_option("--description", pk.description, "free text carried in the package");
  pack->add_option("--codec", pk.codec, "delta (default) or stored (full, uncompressed)");
  pack->add_option("--board", pk.board, "board profile (slot size and address)");
  pack->footer(kExitCodes);

  SignArgs sg;
  CLI::App* sign = app.add_subcommand("sign", "Sign an unsigned package");
  sign->add_option("package", sg.package, "unsigned package")->required();
  sign->add_option("--key", sg.key, "private key")->required();
  sign->add_option("-o,--out", sg.out, "signed package to write")->required();
  sign->add_option("--password-file", sg.password_file, "the key's password file");
  sign->footer(kExitCodes);

  VerifyArgs vf;
  CLI::App* verify = app.add_subcommand("verify", "Check a package as the loader would");
  verify->add_option("package", vf.package, "package")->required();
  verify->add_option("--pub", vf.pubs, "trusted public key (repeatable)");
  verify->add_option("--downgrade-pub", vf.downgrade_pubs,
                     "trusted public key that may sign downgrades (repeatable)");
  verify->add_option("--counter", vf.counter, "the device's recorded security counter");
  verify->add_option("--board", vf.board, "board profile");
  verify->footer(kExitCodes);

  InspectArgs in;
  CLI::App* inspect = app.add_subcommand("inspect", "Show every field of a package");
  inspect->add_option("package", in.package, "package")->required();
  inspect->add_flag("--json", in.json, "print JSON");
  inspect->footer(kExitCodes);

  ApplyArgs ap;
  CLI::App* apply = app.add_subcommand(
      "apply", "Install a package on a simulated board with the loader's code; write the image");
  apply->add_option("package", ap.package, "package")->required();
  apply->add_option("--old", ap.old, "the running image (needed for a diff)");
  apply->add_option("-o,--out", ap.out, "new image to write")->required();
  apply->add_option("--pub", ap.pubs,
                    "trusted public key (without it the signature is not checked)");
  apply->add_option("--downgrade-pub", ap.downgrade_pubs, "trusted key that may sign downgrades");
  apply->add_option("--counter", ap.counter, "the device's recorded security counter");
  apply->add_option("--board", ap.board, "board profile");
  apply->footer(kExitCodes);

  StampArgs st;
  CLI::App* stamp = app.add_subcommand(
      "stamp", "Turn a linked app binary into an app image: header at 0x200, SHA-256 trailer");
  stamp->add_option("binary", st.binary, "objcopy'd app binary (header bytes reserved)")
      ->required();
  stamp->add_option("--version", st.version, "version string to stamp")->required();
  stamp->add_option("-o,--out", st.out, "app image to write")->required();
  stamp->add_option("--board", st.board, "board profile (the slot's link address and size)");
  stamp->footer(kExitCodes);

  // CLI11 would only say "a subcommand is required" for a misspelt one.
  const auto known = [&](const char* name) {
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == name) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    return Fail(kExitUsage,
                std::string("unknown subcommand '") + argv[1] + "' (ota --help lists them)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (keygen->parsed()) return Keygen(kg);
  if (pack->parsed()) return Pack(pk);
  if (sign->parsed()) return Sign(sg);
  if (verify->parsed()) {
    if (vf.pubs.empty() && vf.downgrade_pubs.empty()) {
      return Fail(kExitUsage, "verify needs --pub (or --downgrade-pub)");
    }
    return Verify(vf);
  }
  if (inspect->parsed()) return Inspect(in);
  if (apply->parsed()) return Apply(ap);
  if (stamp->parsed()) return Stamp(st);
  return kExitUsage;
}

// One ota-server instance: its data directory, database, registry, packages, download tokens
// and TLS files. The HTTP API and the MQTT side both work through it, one request at a time
// on the database (`lock`).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "ota/broker/secret_box.hpp"
#include "ota/server/database.hpp"
#include "ota/server/download_tokens.hpp"
#include "ota/server/package_store.hpp"
#include "ota/server/registry.hpp"
#include "ota/server/tls_files.hpp"

namespace ota::server {

class Platform {
 public:
  // Creates what is missing in `data_dir`: database, keys, TLS files, the first API token
  // (written to data_dir/admin.token, mode 0600).
  // `tls`: certificate, key and CA from the configuration; null to use (and on first start
  // make) those in data_dir/tls.
  explicit Platform(const std::filesystem::path& data_dir, const TlsFiles* tls = nullptr);

  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path database_path() const { return data_dir_ / "ota.db"; }
  std::filesystem::path secret_key_path() const { return data_dir_ / "secret.key"; }
  // The password of the platform's broker identity (made on first start, mode 0600).
  std::filesystem::path platform_password_path() const { return data_dir_ / "platform.pw"; }
  const TlsFiles& tls() const { return tls_; }

  std::mutex& lock() { return lock_; }
  Database& db() { return *db_; }
  Registry& registry() { return *registry_; }
  PackageStore& packages() { return *packages_; }
  const DownloadTokens& download_tokens() const { return *tokens_; }

  // A Mosquitto configuration for this platform's devices: the auth plugin on this data
  // directory, an MQTTS listener with this platform's certificate, and optionally plain MQTT.
  std::string MosquittoConfig(const std::filesystem::path& plugin, int mqtts_port, int mqtt_port,
                              const std::string& bind) const;

  // API tokens are stored hashed; the plain token is returned once.
  std::string CreateApiToken(const std::string& name);
  bool CheckApiToken(const std::string& token);

 private:
  std::filesystem::path data_dir_;
  TlsFiles tls_;
  std::mutex lock_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<broker::SecretBox> box_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<PackageStore> packages_;
  std::unique_ptr<DownloadTokens> tokens_;
};

}  // namespace ota::server

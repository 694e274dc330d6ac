#include "ota/agent/device_settings.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/crc32.hpp"

namespace ota::agent {

namespace {

// Layout (little-endian): 0 u32 magic, 4 u16 version, 6 u16 record size, 8 device_id[65],
// 73 secret[65], 138 broker_host[65], 203 u16 broker_port, 205 wifi_ssid[33],
// 238 wifi_password[65], 303 reserved[65] (0), 368 u32 CRC-32 of bytes 0..367.
constexpr size_t kIdAt = 8, kSecretAt = 73, kHostAt = 138, kPortAt = 203, kSsidAt = 205,
                 kWifiPwAt = 238, kReservedAt = 303, kCrcAt = 368;
static_assert(kCrcAt + 4 == kSettingsRecordSize);

template <size_t N>
void PutField(uint8_t* out, const char (&field)[N]) {
  std::memcpy(out, field, N);
  out[N - 1] = 0;
}

// A field must be NUL-terminated within its N bytes, and zero after the NUL.
template <size_t N>
bool GetField(const uint8_t* in, char (&field)[N], bool may_be_empty) {
  const void* nul = std::memchr(in, 0, N);
  if (nul == nullptr) return false;
  const size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nul) - in);
  if (len == 0 && !may_be_empty) return false;
  for (size_t i = len; i < N; ++i) {
    if (in[i] != 0) return false;
  }
  std::memcpy(field, in, N);
  return true;
}

}  // namespace

template <size_t N>
bool SetField(char (&field)[N], const char* value, bool may_be_empty) {
  const size_t len = std::strlen(value);
  if (len >= N || (len == 0 && !may_be_empty)) return false;
  std::memset(field, 0, N);
  std::memcpy(field, value, len);
  return true;
}
template bool SetField(char (&)[65], const char*, bool);
template bool SetField(char (&)[33], const char*, bool);

void EncodeSettings(const DeviceSettings& s, uint8_t (&out)[kSettingsRecordSize]) {
  std::memset(out, 0, sizeof(out));
  StoreLe32(out, kSettingsMagic);
  StoreLe16(out + 4, kSettingsVersion);
  StoreLe16(out + 6, static_cast<uint16_t>(kSettingsRecordSize));
  PutField(out + kIdAt, s.device_id);
  PutField(out + kSecretAt, s.secret);
  PutField(out + kHostAt, s.broker_host);
  StoreLe16(out + kPortAt, s.broker_port);
  PutField(out + kSsidAt, s.wifi_ssid);
  PutField(out + kWifiPwAt, s.wifi_password);
  StoreLe32(out + kCrcAt, Crc32(0, ConstByteSpan(out, kCrcAt)));
}

Result<DeviceSettings> DecodeSettings(const uint8_t (&in)[kSettingsRecordSize]) {
  bool erased = true;
  for (const uint8_t b : in)
    erased = erased && b == 0xFF;
  if (erased) return StatusCode::kNotFound;
  if (LoadLe32(in) != kSettingsMagic) return StatusCode::kCorrupt;
  // Another version may have another size: it is not this code's to judge.
  if (LoadLe16(in + 4) != kSettingsVersion) return StatusCode::kUnsupported;
  if (LoadLe16(in + 6) != kSettingsRecordSize ||
      LoadLe32(in + kCrcAt) != Crc32(0, ConstByteSpan(in, kCrcAt))) {
    return StatusCode::kCorrupt;
  }
  DeviceSettings s;
  s.broker_port = LoadLe16(in + kPortAt);
  bool reserved_zero = true;
  for (size_t i = kReservedAt; i < kCrcAt; ++i)
    reserved_zero = reserved_zero && in[i] == 0;
  if (!GetField(in + kIdAt, s.device_id, false) || !GetField(in + kSecretAt, s.secret, false) ||
      !GetField(in + kHostAt, s.broker_host, false) || !GetField(in + kSsidAt, s.wifi_ssid, true) ||
      !GetField(in + kWifiPwAt, s.wifi_password, true) || s.broker_port == 0 || !reserved_zero) {
    return StatusCode::kCorrupt;
  }
  return s;
}

Status SaveSettings(const FlashArea& area, const DeviceSettings& s) {
  uint8_t record[kSettingsRecordSize];
  EncodeSettings(s, record);
  OTA_TRY(area.EraseCovering(0, sizeof(record)));
  const Status programmed = area.Program(0, ConstByteSpan(record, sizeof(record)));
  std::memset(record, 0, sizeof(record));  // it holds the secrets
  OTA_TRY(programmed);
  OTA_TRY_ASSIGN(const DeviceSettings back, LoadSettings(area));
  return std::strcmp(back.device_id, s.device_id) == 0 ? Status::Ok()
                                                       : Status(StatusCode::kVerifyFailed);
}

Result<DeviceSettings> LoadSettings(const FlashArea& area) {
  uint8_t record[kSettingsRecordSize];
  OTA_TRY(area.Read(0, ByteSpan(record, sizeof(record))));
  const Result<DeviceSettings> s = DecodeSettings(record);
  std::memset(record, 0, sizeof(record));
  return s;
}

}  // namespace ota::agent

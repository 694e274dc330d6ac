// What makes one board this device, kept apart from the firmware image (the image is the same
// for every device and is uploaded to the platform): its identity and secret, the broker, the
// Wi-Fi network. One record in a 4 KB sector of the external flash, written at provisioning
// (the shell's `provision`); format in docs/spec/device-settings.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/status.hpp"

namespace ota::agent {

inline constexpr uint32_t kSettingsMagic = 0x53445441;  // "ATDS" little-endian
inline constexpr uint16_t kSettingsVersion = 1;
inline constexpr size_t kSettingsRecordSize = 372;

struct DeviceSettings {
  char device_id[65] = {};      // 1..64 characters
  char secret[65] = {};         // 1..64 characters
  char broker_host[65] = {};    // 1..64 characters
  uint16_t broker_port = 8883;  // MQTT over TLS
  char wifi_ssid[33] = {};      // empty: the modem's saved network
  char wifi_password[65] = {};
};

// Encodes/decodes the record (CRC-32 last). Decode: kNotFound if the bytes are erased, kCorrupt
// if the magic, size, CRC or a field is wrong, kUnsupported for another record version.
void EncodeSettings(const DeviceSettings& s, uint8_t (&out)[kSettingsRecordSize]);
Result<DeviceSettings> DecodeSettings(const uint8_t (&in)[kSettingsRecordSize]);

// `area` is the settings sector. Save erases it first: a cut in between leaves no record
// (kNotFound on the next load), never a half-written one that decodes.
Status SaveSettings(const FlashArea& area, const DeviceSettings& s);
Result<DeviceSettings> LoadSettings(const FlashArea& area);

// Copies `value` into a settings field, refusing empty (unless `may_be_empty`) or too long.
template <size_t N>
bool SetField(char (&field)[N], const char* value, bool may_be_empty = false);

}  // namespace ota::agent

// The settings record (docs/spec/device-settings.md) and the shell commands that write and
// show it, on the emulated W25Q128 of the FIRE profile.
#include "ota/agent/device_settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ota/agent/app_shell.hpp"
#include "ota/profile.hpp"
#include "sim/board_flash.hpp"

namespace ota::agent {
namespace {

constexpr uint32_t kSettingsOffset = 0x102000;  // as firmware/app_main.cpp

class StringOutput final : public shell::Output {
 public:
  void Write(const char* text) override { text_ += text; }
  std::string Take() { return std::exchange(text_, std::string()); }

 private:
  std::string text_;
};

class DeviceSettingsTest : public ::testing::Test {
 protected:
  sim::BoardFlash flash_{kStm32f429Fire};
  FlashArea area_{flash_.external, kSettingsOffset, 4096};
};

DeviceSettings Example() {
  DeviceSettings s;
  EXPECT_TRUE(SetField(s.device_id, "fire_n1"));
  EXPECT_TRUE(SetField(s.secret, "s3cret"));
  EXPECT_TRUE(SetField(s.broker_host, "iot.example.com"));
  s.broker_port = 8883;
  EXPECT_TRUE(SetField(s.wifi_ssid, "lab"));
  return s;
}

TEST_F(DeviceSettingsTest, SaveThenLoad_RoundTrips) {
  EXPECT_EQ(LoadSettings(area_).status().code(), StatusCode::kNotFound) << "erased: none yet";
  ASSERT_TRUE(SaveSettings(area_, Example()).ok());
  const Result<DeviceSettings> s = LoadSettings(area_);
  ASSERT_TRUE(s.ok()) << s.status().name();
  EXPECT_STREQ(s->device_id, "fire_n1");
  EXPECT_STREQ(s->secret, "s3cret");
  EXPECT_STREQ(s->broker_host, "iot.example.com");
  EXPECT_EQ(s->broker_port, 8883);
  EXPECT_STREQ(s->wifi_ssid, "lab");
  EXPECT_STREQ(s->wifi_password, "");
}

TEST_F(DeviceSettingsTest, EveryFlippedByte_IsRejected) {
  uint8_t record[kSettingsRecordSize];
  EncodeSettings(Example(), record);
  for (size_t i = 0; i < sizeof(record); ++i) {
    uint8_t bad[kSettingsRecordSize];
    std::copy(record, record + sizeof(record), bad);
    bad[i] ^= 0x40;
    EXPECT_FALSE(DecodeSettings(bad).ok()) << "byte " << i;
  }
}

TEST_F(DeviceSettingsTest, AnotherRecordVersion_IsUnsupportedNotCorrupt) {
  uint8_t record[kSettingsRecordSize];
  EncodeSettings(Example(), record);
  record[4] = 2;  // version 2, whatever its size and CRC
  record[6] = 0x10;
  EXPECT_EQ(DecodeSettings(record).status().code(), StatusCode::kUnsupported);
}

TEST_F(DeviceSettingsTest, PowerCutDuringSave_LeavesNoRecordOrTheWholeOne) {
  ASSERT_TRUE(SaveSettings(area_, Example()).ok());
  DeviceSettings next = Example();
  ASSERT_TRUE(SetField(next.device_id, "fire_n2"));
  for (uint64_t cut = 1;; ++cut) {
    flash_.power.PowerOn();
    ASSERT_TRUE(SaveSettings(area_, Example()).ok());
    flash_.power.Arm({cut, 0, 0});
    const Status s = SaveSettings(area_, next);
    flash_.power.PowerOn();
    const Result<DeviceSettings> back = LoadSettings(area_);
    if (s.ok()) {
      ASSERT_TRUE(back.ok());
      EXPECT_STREQ(back->device_id, "fire_n2");
      break;
    }
    // Never a half-written record that decodes.
    if (back.ok()) {
      EXPECT_TRUE(std::string(back->device_id) == "fire_n1" ||
                  std::string(back->device_id) == "fire_n2");
    } else {
      EXPECT_TRUE(back.status().code() == StatusCode::kNotFound ||
                  back.status().code() == StatusCode::kCorrupt)
          << back.status().name();
    }
    ASSERT_LT(cut, 100u);
  }
}

TEST_F(DeviceSettingsTest, ShellProvisionAndSettings_NeverPrintTheSecrets) {
  StringOutput out;
  AppShellState state;
  state.settings = &area_;
  shell::Shell shell(AppShellCommands(), &state, out, false);
  char bad[] = "provision fire_n1 s3cret host 0";
  shell.Execute(bad);
  EXPECT_NE(out.Take().find("usage: provision"), std::string::npos);
  EXPECT_EQ(LoadSettings(area_).status().code(), StatusCode::kNotFound) << "nothing written";
  char good[] = "provision fire_n1 s3cret iot.example.com 8883 lab wifi-pass";
  shell.Execute(good);
  EXPECT_EQ(out.Take(), "saved; reboot to use them\n");
  char show[] = "settings";
  shell.Execute(show);
  const std::string shown = out.Take();
  EXPECT_EQ(shown,
            "device_id fire_n1\nsecret set (6 characters)\nbroker iot.example.com:8883\n"
            "wifi lab, password set\n");
  EXPECT_EQ(shown.find("s3cret"), std::string::npos);
  EXPECT_EQ(shown.find("wifi-pass"), std::string::npos);
  char status[] = "status";
  shell.Execute(status);
  EXPECT_EQ(out.Take(), "agent not running (see `settings`)\n");
}

}  // namespace
}  // namespace ota::agent

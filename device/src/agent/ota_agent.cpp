#include "ota/agent/ota_agent.hpp"

#include <mbedtls/md.h>

#include <cstdio>
#include <cstring>

namespace ota::agent {

namespace {

bool IsPowerLost(Status s) {
  return s.code() == StatusCode::kPowerLost;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Copies `s` into `out` (NUL-terminated) if it fits.
bool CopyString(const char* s, Span<char> out) {
  const size_t n = std::strlen(s);
  if (n + 1 > out.size()) return false;
  std::memcpy(out.data(), s, n + 1);
  return true;
}

}  // namespace

bool ParseSha256Hex(const char* hex, Sha256Digest out) {
  if (std::strlen(hex) != 2 * kSha256Size) return false;
  for (size_t i = 0; i < kSha256Size; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

Status IotdaPassword(const char* secret, const char* timestamp, char (&out)[65]) {
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  unsigned char mac[32];
  if (md == nullptr ||
      mbedtls_md_hmac(md, reinterpret_cast<const unsigned char*>(timestamp), std::strlen(timestamp),
                      reinterpret_cast<const unsigned char*>(secret), std::strlen(secret),
                      mac) != 0) {
    return StatusCode::kIoError;
  }
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof(mac); ++i) {
    out[2 * i] = kDigits[mac[i] >> 4];
    out[2 * i + 1] = kDigits[mac[i] & 15];
  }
  out[64] = '\0';
  return Status::Ok();
}

OtaAgent::OtaAgent(const AgentConfig& config, const BoardProfile& profile,
                   Flash* const (&flashes)[kFlashCount], MqttClient& mqtt, HttpsClient& https,
                   Clock& clock)
    : config_(config),
      profile_(profile),
      download_(OpenPartition(profile, flashes, PartitionId::kDownload)),
      running_(OpenPartition(profile, flashes, PartitionId::kRunning)),
      store_(OpenPartition(profile, flashes, PartitionId::kBootStateA),
             OpenPartition(profile, flashes, PartitionId::kBootStateB)),
      mqtt_(mqtt),
      https_(https),
      clock_(clock),
      installer_(PackagePolicy{config.keys, false}) {}

Status OtaAgent::SaveRecord() {
  return store_.Save(record_);
}

Status OtaAgent::Start(const char* running_version) {
  if (!CopyString(running_version, Span<char>(running_version_))) {
    return StatusCode::kInvalidArgument;
  }
  OTA_TRY_ASSIGN(record_, store_.Load());
  // An upgrade the loader finished (or refused) since the last run is reported once, below,
  // as soon as the platform is reachable; a new image is confirmed only then.
  pending_outcome_ = record_.status == UpgradeStatus::kUpgradedOk ||
                     record_.status == UpgradeStatus::kUpgradedFailed ||
                     record_.status == UpgradeStatus::kDownloading;
  return Status::Ok();
}

Status OtaAgent::Connect() {
  char hour[11];
  clock_.UtcHour(hour);
  char client_id[kDeviceIdMax + 24];
  std::snprintf(client_id, sizeof(client_id), "%s_0_0_%s", config_.device_id, hour);
  char password[65];
  OTA_TRY(IotdaPassword(config_.secret, hour, password));
  OTA_TRY(mqtt_.Connect(client_id, config_.device_id, password));
  char filter[sizeof(topic_)];
  std::snprintf(filter, sizeof(filter), "$oc/devices/%s/sys/events/down", config_.device_id);
  OTA_TRY(mqtt_.Subscribe(filter));
  return Status::Ok();
}

Status OtaAgent::Publish(const char* suffix, const char* json) {
  char topic[sizeof(topic_)];
  std::snprintf(topic, sizeof(topic), "$oc/devices/%s/sys/%s", config_.device_id, suffix);
  return mqtt_.Publish(topic,
                       ConstByteSpan(reinterpret_cast<const uint8_t*>(json), std::strlen(json)));
}

Status OtaAgent::ReportVersion() {
  std::snprintf(out_, sizeof(out_),
                "{\"object_device_id\":\"%s\",\"services\":[{\"service_id\":\"$ota\","
                "\"event_type\":\"version_report\",\"paras\":{\"fw_version\":\"%s\","
                "\"sw_version\":\"%s\"}}]}",
                config_.device_id, running_version_, config_.sw_version);
  return Publish("events/up", out_);
}

Status OtaAgent::ReportProgress(int result, int progress, const char* description) {
  std::snprintf(out_, sizeof(out_),
                "{\"object_device_id\":\"%s\",\"services\":[{\"service_id\":\"$ota\","
                "\"event_type\":\"upgrade_progress_report\",\"paras\":{\"result_code\":%d,"
                "\"progress\":%d,\"version\":\"%s\",\"description\":\"%s\"}}]}",
                config_.device_id, result, progress, running_version_, description);
  return Publish("events/up", out_);
}

Status OtaAgent::ReportProperties() {
  std::snprintf(out_, sizeof(out_),
                "{\"services\":[{\"service_id\":\"DeviceStatus\",\"properties\":"
                "{\"radioValue\":%d}}]}",
                radio_);
  return Publish("properties/report", out_);
}

Status OtaAgent::ReportResult(int result, int progress, const char* description) {
  const Status s = ReportProgress(result, progress, description);
  if (!s.ok()) {
    pending_result_ = true;
    pending_code_ = result;
    pending_progress_ = progress;
    std::snprintf(pending_text_, sizeof(pending_text_), "%s", description);
  }
  return s;
}

Status OtaAgent::ReportPending() {
  if (pending_outcome_) {
    // Publish returns Ok only once the broker has acknowledged the report (transport.hpp).
    // Until then nothing is cleared: a failure here is sent again after the reconnect.
    if (record_.status == UpgradeStatus::kUpgradedOk) {
      OTA_TRY(ReportProgress(kResultOk, 100, "upgraded"));
    } else if (record_.status == UpgradeStatus::kUpgradedFailed) {
      OTA_TRY(ReportProgress(IotdaResultCode(record_.reason), 0, FailReasonName(record_.reason)));
    } else {
      // A reset during the download: the offset stays for a resume; the platform retries.
      OTA_TRY(ReportProgress(kResultDownloadTimeout, 0, "download interrupted by a reset"));
    }
    pending_outcome_ = false;
    // Saved by SettleOutcome(). A reset before that save reports it again at the next boot
    // (the platform sees it twice and takes the second as a report on an attempt that has
    // ended); after the save, never again.
    settle_ = record_.status != UpgradeStatus::kDownloading;
    next_settle_ms_ = 0;
  }
  if (pending_result_) {
    OTA_TRY(ReportProgress(pending_code_, pending_progress_, pending_text_));
    pending_result_ = false;
  }
  return Status::Ok();
}

Status OtaAgent::SettleOutcome(uint64_t now) {
  if (!settle_ || now < next_settle_ms_) return Status::Ok();
  // The platform has the outcome: the upgrade is over, and the image that runs (the new one,
  // or the old one the loader kept or restored) has reached the platform, so it is confirmed.
  // Built on a copy: if the save fails, record_ still says what the flash says (on trial).
  BootRecord next = record_;
  next.status = UpgradeStatus::kIdle;
  next.step = UpgradeStep::kStart;
  next.flags = static_cast<uint8_t>(next.flags | kBootFlagConfirmed);
  const Status saved = store_.Save(next);
  if (!saved.ok()) {
    next_settle_ms_ = now + kSettleRetryMs;  // upgrades are refused until it goes through
    return saved;
  }
  record_ = next;
  settle_ = false;
  return Status::Ok();
}

bool OtaAgent::UpgradeBusy() const {
  return settle_ || (record_.status == UpgradeStatus::kUpgradedOk && !record_.confirmed());
}

void OtaAgent::EndSession() {
  // A port may keep a session whose publish was not acknowledged (a PUBACK timeout): it is
  // dropped, so that what is owed goes first on a fresh one, after the back-off.
  if (mqtt_.connected()) mqtt_.Disconnect();
  // Back off from the failure, not from the start of the attempt (a connect or publish may
  // itself have waited out a long timeout), with jitter from the clock so a fleet does not
  // reconnect in step.
  const uint64_t failed = clock_.NowMs();
  const uint32_t jitter = static_cast<uint32_t>(failed % (backoff_ms_ / 2 + 1));
  next_connect_ms_ = failed + backoff_ms_ + jitter;
  if (backoff_ms_ < 60000) backoff_ms_ *= 2;
}

Result<AgentEvent> OtaAgent::Step(uint32_t max_wait_ms) {
  const uint64_t now = clock_.NowMs();
  if (!mqtt_.connected()) {
    OTA_TRY(SettleOutcome(now));  // acknowledged before the session went: saved all the same
    if (now < next_connect_ms_) return AgentEvent::kNone;
    Status s = Connect();
    // What the last upgrade came to goes before the version report: a platform that sees the
    // old version from a device it thinks is upgrading may send the command again.
    if (s.ok()) s = ReportPending();
    // A session that fails at once (the first publish refused) backs off as well.
    if (s.ok()) s = ReportVersion();
    if (!s.ok()) {
      EndSession();
      return AgentEvent::kNone;
    }
    backoff_ms_ = 1000;
    next_report_ms_ = now;
  } else if (pending_outcome_ || pending_result_) {
    // Connected before Start() (a port that keeps its session across the app's start), or a
    // result whose publish failed while the session stayed up.
    if (!ReportPending().ok()) {
      EndSession();
      return AgentEvent::kNone;
    }
  }
  OTA_TRY(SettleOutcome(now));
  if (now >= next_report_ms_) {
    OTA_TRY(ReportProperties());
    next_report_ms_ = now + config_.report_interval_ms;
  }
  const Result<size_t> n =
      mqtt_.Receive(max_wait_ms, Span<char>(topic_),
                    ByteSpan(reinterpret_cast<uint8_t*>(text_), sizeof(text_) - 1));
  if (!n.ok()) {
    if (n.status().code() == StatusCode::kNotFound || n.status().code() == StatusCode::kTooLarge) {
      return AgentEvent::kNone;
    }
    return n.status();
  }
  text_[n.value()] = '\0';
  if (!json_.Parse(text_, n.value()).ok()) return AgentEvent::kNone;  // not ours to judge
  const int services = json_.Find(0, "services");
  for (int i = 0; json_.IsArray(services); ++i) {
    const int s = json_.Element(services, i);
    if (s < 0) break;
    if (!json_.Equals(json_.Find(s, "service_id"), "$ota")) continue;
    const int type = json_.Find(s, "event_type");
    if (json_.Equals(type, "version_query")) {
      OTA_TRY(ReportVersion());
    } else if (json_.Equals(type, "firmware_upgrade")) {
      return Upgrade(json_.Find(s, "paras"));
    }
  }
  return AgentEvent::kNone;
}

Result<AgentEvent> OtaAgent::Upgrade(int paras) {
  // The running image is on trial: staging now would have the loader back up an image nobody
  // has confirmed over the last one that was. Refused before anything is read, downloaded,
  // erased or saved; the platform retries later (it counts result 1 as a failed attempt).
  if (UpgradeBusy()) {
    OTA_TRY(ReportResult(kResultBusy, 0, "device busy: the running image is not confirmed yet"));
    return AgentEvent::kNone;
  }
  char version[kVersionMax];
  char sign_hex[2 * kSha256Size + 1];
  Sha256Digest sign;
  const Result<int64_t> size = json_.Integer(json_.Find(paras, "file_size"));
  if (!json_.IsObject(paras) ||
      !json_.String(json_.Find(paras, "version"), Span<char>(version)).ok() ||
      !json_.String(json_.Find(paras, "url"), Span<char>(url_)).ok() ||
      !json_.String(json_.Find(paras, "access_token"), Span<char>(token_)).ok() ||
      !json_.String(json_.Find(paras, "sign"), Span<char>(sign_hex)).ok() ||
      !ParseSha256Hex(sign_hex, sign) || !size.ok() || size.value() <= 0) {
    OTA_TRY(ReportResult(kResultUnsupported, 0, "firmware_upgrade without its fields"));
    return AgentEvent::kNone;
  }
  if (std::strcmp(version, running_version_) == 0) {
    OTA_TRY(ReportResult(kResultAlreadyLatest, 100, "already running this version"));
    return AgentEvent::kNone;
  }
  if (static_cast<uint64_t>(size.value()) > download_.size()) {
    OTA_TRY(ReportResult(kResultNoStorage, 0, "package larger than the download region"));
    return AgentEvent::kNone;
  }
  const uint32_t file_size = static_cast<uint32_t>(size.value());
  // The app may refuse (low battery, ...) before anything is downloaded or erased.
  const int refused = config_.gate != nullptr ? config_.gate->Allow(version, file_size) : 0;
  if (refused != 0) {
    OTA_TRY(ReportResult(refused, 0,
                         refused == kResultLowBattery ? "low battery" : "refused by the app"));
    return AgentEvent::kNone;
  }
  // The same package as an interrupted download: go on from the saved offset.
  const bool resume =
      record_.status == UpgradeStatus::kDownloading && record_.package_size == file_size &&
      DigestEqual(record_.package_sha256, sign) && record_.download_offset <= file_size;
  if (!resume) {
    record_.status = UpgradeStatus::kDownloading;
    record_.step = UpgradeStep::kStart;
    record_.reason = FailReason::kNone;
    record_.package_size = file_size;
    record_.download_offset = 0;
    std::memset(record_.package_version, 0, sizeof(record_.package_version));
    std::memcpy(record_.package_version, version, std::strlen(version));
    std::memcpy(record_.package_sha256, sign, kSha256Size);
    OTA_TRY(SaveRecord());
  }
  const Status downloaded = Download(url_, token_, file_size);
  if (IsPowerLost(downloaded)) return downloaded;
  if (!downloaded.ok()) {
    OTA_TRY(ReportResult(kResultDownloadTimeout, 0, "download failed; will resume"));
    return AgentEvent::kNone;
  }

  // `sign` first (the platform's word), then everything the loader will check.
  Sha256Digest got;
  OTA_TRY(HashArea(download_, 0, file_size, ByteSpan(block_), got));
  FailReason why = FailReason::kNone;
  const char* refusal = nullptr;
  int code = kResultVerifyFailed;
  if (!DigestEqual(got, sign)) {
    refusal = "sign does not match the file";
  } else {
    const InstallerContext ctx{download_, file_size,
                               running_,  profile_.internal_base + running_.offset(),
                               record_,   ByteSpan(block_)};
    const Result<PackageInfo> info = installer_.Check(ctx, &why);
    if (IsPowerLost(info.status())) return info.status();
    if (!info.ok()) {
      refusal = FailReasonName(why);
      code = IotdaResultCode(why);
    } else if (std::strcmp(info->version, version) != 0) {
      refusal = "package version differs from the command's";
    }
  }
  if (refusal != nullptr) {
    record_.status = UpgradeStatus::kIdle;  // nothing staged; the download region is garbage
    OTA_TRY(SaveRecord());
    OTA_TRY(ReportResult(code, 0, refusal));
    return AgentEvent::kNone;
  }
  // Progress only: the outcome after the reboot is what the platform goes by, so a lost
  // connection does not hold the install back.
  if (!ReportProgress(kResultOk, 100, "downloaded and verified; rebooting to install").ok()) {
    ++progress_report_failures_;
  }
  record_.status = UpgradeStatus::kDownloaded;
  record_.step = UpgradeStep::kStart;
  record_.download_offset = file_size;
  OTA_TRY(SaveRecord());
  return AgentEvent::kReboot;
}

Status OtaAgent::Download(const char* url, const char* token, uint32_t size) {
  int last_percent = static_cast<int>(uint64_t{record_.download_offset} * 100 / size);
  uint32_t since_save = 0;
  while (record_.download_offset < size) {
    const uint32_t offset = record_.download_offset;
    const uint32_t want = size - offset < kDownloadBlock ? size - offset : kDownloadBlock;
    // The offset is saved at block boundaries only, so this block starts on a sector.
    OTA_TRY(download_.EraseCovering(offset, want));
    uint32_t got = 0;
    int failures = 0;
    while (got < want) {
      uint32_t total = 0;
      const Result<size_t> n =
          https_.GetRange(url, token, offset + got, ByteSpan(block_ + got, want - got), &total);
      // total 0: the port cannot tell (an AT modem); `sign` still covers every byte.
      if (!n.ok() || n.value() == 0 || (total != 0 && total != size)) {
        if (++failures > kBlockRetries) {
          OTA_TRY(SaveRecord());
          return StatusCode::kIoError;
        }
        continue;
      }
      got += static_cast<uint32_t>(n.value());
    }
    OTA_TRY(download_.Program(offset, ConstByteSpan(block_, want)));
    record_.download_offset = offset + want;
    since_save += want;
    if (since_save >= kOffsetSaveEvery || record_.download_offset == size) {
      OTA_TRY(SaveRecord());
      since_save = 0;
    }
    const int percent = static_cast<int>(uint64_t{record_.download_offset} * 100 / size);
    if (percent / kProgressStepPercent > last_percent / kProgressStepPercent && percent < 100) {
      // Progress only: the download goes on over HTTPS if the MQTT session is lost.
      if (!ReportProgress(kResultOk, percent, "downloading").ok()) ++progress_report_failures_;
    }
    last_percent = percent;
  }
  return Status::Ok();
}

}  // namespace ota::agent

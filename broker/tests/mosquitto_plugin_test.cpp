// The auth plugin inside a real Mosquitto on a free loopback port: who may connect (and the
// CONNACK codes), that a device can neither publish to nor subscribe on another device's topics,
// the presence events the broker publishes for the platform, and the implicit subscriptions that
// deliver the platform's down messages to devices that never subscribed.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "mosquitto_process.hpp"
#include "mqtt_test_client.hpp"
#include "ota/broker/control.hpp"
#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/broker/login_stats.hpp"
#include "ota/broker/presence.hpp"
#include "temp_dir.hpp"

namespace ota::broker {
namespace {

using testing::MosquittoProcess;
using testing::MqttTestClient;

constexpr int kNotAuthorized = 5;  // Mosquitto answers every plugin refusal with this (3.1.1)

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(SecretBox::CreateKeyFile(dir_ / "key", &error)) << error;
    const auto box = SecretBox::FromKeyFile(dir_ / "key", &error);
    store_ = CredentialStore::Open(dir_ / "registry.db", true, *box, &error);
    ASSERT_TRUE(store_) << error;
    ASSERT_TRUE(store_->Put("prod_a", "secret-a", true, &error));
    ASSERT_TRUE(store_->Put("prod_b", "secret-b", true, &error));
    ASSERT_TRUE(store_->Put("prod_off", "secret-off", false, &error));
    std::ofstream(dir_ / "platform.pw") << "platform-pw\n";
    std::vector<std::string> config = {
        std::string("plugin ") + OTA_AUTH_PLUGIN,
        "plugin_opt_registry " + (dir_ / "registry.db").string(),
        "plugin_opt_secret_key " + (dir_ / "key").string(),
        "plugin_opt_platform_password_file " + (dir_ / "platform.pw").string(),
    };
    for (const std::string& line : ExtraConfig())
      config.push_back(line);
    broker_ = std::make_unique<MosquittoProcess>(dir_.path(), config);
    ASSERT_TRUE(broker_->running()) << "mosquitto did not start";
  }
  void TearDown() override { broker_.reset(); }
  // More broker config lines (plugin options) for a fixture.
  virtual std::vector<std::string> ExtraConfig() const { return {}; }

  // Connects as `device` with the password `secret` gives for `hour` (the client's own
  // client ID carries the sig type).
  int ConnectDevice(MqttTestClient& c, const std::string& device, const std::string& secret,
                    const std::string& hour = testing::UtcHour()) {
    return c.Connect(broker_->port(), device, IotdaPassword(secret, hour));
  }
  static std::string ClientIdOf(const std::string& device, int sig = 0,
                                const std::string& hour = testing::UtcHour()) {
    return device + "_0_" + std::to_string(sig) + "_" + hour;
  }

  testing::TempDir dir_{"ota-plugin"};
  std::unique_ptr<CredentialStore> store_;
  std::unique_ptr<MosquittoProcess> broker_;
};

TEST_F(PluginTest, GoodPassword_BothSigTypes_Accepted) {
  MqttTestClient a0(ClientIdOf("prod_a", 0));
  EXPECT_EQ(ConnectDevice(a0, "prod_a", "secret-a"), 0);
  MqttTestClient a1(ClientIdOf("prod_a", 1));
  EXPECT_EQ(ConnectDevice(a1, "prod_a", "secret-a"), 0);
}

// The login variants of Huawei's SDKs: HMAC-SM3 (sig 2), and the C SDK's stamp bumped past
// hour 23 (with sig 0 the stamp is only the HMAC key, so a fixed one shows it at any hour).
TEST_F(PluginTest, HuaweiSdkLoginVariants_Accepted) {
  MqttTestClient sm3(ClientIdOf("prod_a", 2));
  EXPECT_EQ(
      sm3.Connect(broker_->port(), "prod_a", IotdaPassword("secret-a", testing::UtcHour(), 2)), 0);
  MqttTestClient sha_for_sm3(ClientIdOf("prod_a", 2));
  EXPECT_NE(ConnectDevice(sha_for_sm3, "prod_a", "secret-a"), 0);
  MqttTestClient bumped(ClientIdOf("prod_a", 0, "2025041824"));
  EXPECT_EQ(ConnectDevice(bumped, "prod_a", "secret-a", "2025041824"), 0);
}

TEST_F(PluginTest, Refusals_AreLoggedWithDeviceIdNeverTheSecret) {
  MqttTestClient wrong(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(wrong, "prod_a", "not-the-secret"), kNotAuthorized);
  const std::string stale_hour = testing::UtcHour(-5 * 3600);
  MqttTestClient stale(ClientIdOf("prod_a", 1, stale_hour));
  EXPECT_EQ(ConnectDevice(stale, "prod_a", "secret-a", stale_hour), kNotAuthorized);
  MqttTestClient stale_sig0(ClientIdOf("prod_a", 0, stale_hour));
  EXPECT_EQ(ConnectDevice(stale_sig0, "prod_a", "secret-a", stale_hour), 0)
      << "sig type 0 does not check the time";
  MqttTestClient malformed("prod_a_9_9_nothour");
  EXPECT_EQ(ConnectDevice(malformed, "prod_a", "secret-a"), kNotAuthorized);
  MqttTestClient disabled(ClientIdOf("prod_off"));
  EXPECT_EQ(ConnectDevice(disabled, "prod_off", "secret-off"), kNotAuthorized);
  MqttTestClient other_user(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(other_user, "prod_b", "secret-a"), kNotAuthorized);
  MqttTestClient platform_bad("platform-1");
  EXPECT_EQ(platform_bad.Connect(broker_->port(), "ota-server", "guess"), kNotAuthorized);

  const std::string log = broker_->Log();
  EXPECT_NE(log.find("refused device prod_a from 127.0.0.1: bad username or password"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("refused device prod_a from 127.0.0.1: timestamp outside the window"),
            std::string::npos);
  EXPECT_NE(log.find("refused device (unparsable client id)"), std::string::npos);
  EXPECT_NE(log.find("refused device prod_off from 127.0.0.1: device disabled"), std::string::npos);
  EXPECT_NE(log.find("refused platform login"), std::string::npos);
  for (const char* secret : {"secret-a", "secret-off", "not-the-secret", "platform-pw", "guess"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log holds a secret: " << secret;
  }
  EXPECT_EQ(log.find(IotdaPassword("secret-a", testing::UtcHour())), std::string::npos);
}

TEST_F(PluginTest, DisablingADevice_TakesEffectAtItsNextConnect) {
  std::string error;
  ASSERT_TRUE(store_->SetEnabled("prod_a", false, &error));
  MqttTestClient a(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(a, "prod_a", "secret-a"), kNotAuthorized);
}

TEST_F(PluginTest, Acl_DeviceConfinedToItsOwnTopics) {
  MqttTestClient platform("ota-server-1");
  ASSERT_EQ(platform.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(platform.Subscribe("$oc/devices/+/sys/#"), 1);
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);

  // Subscriptions: own tree yes; another device's, or a wildcard across devices, refused.
  EXPECT_EQ(a.Subscribe("$oc/devices/prod_a/sys/commands/#"), 1);
  EXPECT_EQ(a.Subscribe("$oc/devices/prod_b/sys/commands/#"), 0x80);
  EXPECT_EQ(a.Subscribe("$oc/devices/+/sys/commands/#"), 0x80);
  EXPECT_EQ(a.Subscribe("#"), 0x80);
  ASSERT_EQ(b.Subscribe("$oc/devices/prod_b/sys/#"), 1);

  // Publishing into another device's tree is dropped: neither B nor the platform sees it.
  EXPECT_TRUE(a.Publish("$oc/devices/prod_b/sys/messages/down", "spoofed"));
  EXPECT_TRUE(a.Publish("$oc/devices/prod_a/sys/properties/report", "{\"services\":[]}"));
  // The platform reaches each device's tree.
  EXPECT_TRUE(platform.Publish("$oc/devices/prod_b/sys/commands/request_id=1", "{}"));

  const auto b_got = b.Receive(std::chrono::milliseconds(300));
  ASSERT_EQ(b_got.size(), 1u);
  EXPECT_EQ(b_got[0].topic, "$oc/devices/prod_b/sys/commands/request_id=1");
  const auto p_got = platform.Receive(std::chrono::milliseconds(300));
  std::vector<std::string> topics;
  for (const auto& m : p_got)
    topics.push_back(m.topic);
  EXPECT_NE(std::find(topics.begin(), topics.end(), "$oc/devices/prod_a/sys/properties/report"),
            topics.end());
  for (const auto& m : p_got)
    EXPECT_NE(m.payload, "spoofed") << m.topic;
  EXPECT_NE(broker_->Log().find("denied device prod_a publish on $oc/devices/prod_b"),
            std::string::npos);
}

// ---- Presence events ----

// An MQTT client on a bare socket, for what libmosquitto will not do here: vanish without a
// DISCONNECT, keep a persistent session, or speak MQTT 5. It receives and subscribes with
// MQTT 3.1.1 only.
class RawClient {
 public:
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The CONNACK code (MQTT 3.1.1: the return code; MQTT 5, `protocol` 5: the reason code), or -1.
  int Connect(int port, const std::string& client_id, const std::string& username,
              const std::string& password, bool clean_session = true, int protocol = 4) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
    std::string body = Str("MQTT") + static_cast<char>(protocol);
    body += static_cast<char>(0x80 | 0x40 | (clean_session ? 0x02 : 0x00));
    body += std::string("\x00\x3c", 2);  // keepalive 60 s
    if (protocol == 5) body += '\x00';   // no properties
    body += Str(client_id) + Str(username) + Str(password);
    if (!Send(0x10, body)) return -1;
    uint8_t type = 0;
    std::string ack;
    if (!ReadPacket(5000, &type, &ack) || type != 0x20 || ack.size() < 2) return -1;
    return static_cast<uint8_t>(ack[1]);
  }
  // The granted QoS (0x80 refused), or -1.
  int Subscribe(const std::string& filter, int qos) {
    const uint16_t mid = ++last_mid_;
    std::string body = Mid(mid) + Str(filter) + static_cast<char>(qos);
    if (!Send(0x82, body)) return -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      uint8_t type = 0;
      std::string packet;
      if (!ReadPacket(100, &type, &packet)) continue;
      if (type == 0x90 && packet.size() == 3 && packet.substr(0, 2) == Mid(mid)) {
        return static_cast<uint8_t>(packet[2]);
      }
      if ((type & 0xf0) == 0x30) OnPublish(type, packet);
    }
    return -1;
  }
  // Reads for `wait`, acknowledging QoS 1 PUBLISHes; returns what arrived (and anything that
  // arrived while subscribing).
  std::vector<testing::ReceivedMessage> Receive(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      uint8_t type = 0;
      std::string packet;
      if (!ReadPacket(static_cast<int>(std::max<int64_t>(left.count(), 1)), &type, &packet)) {
        continue;
      }
      if ((type & 0xf0) == 0x30) OnPublish(type, packet);
    }
    std::vector<testing::ReceivedMessage> out;
    out.swap(inbox_);
    return out;
  }
  void SendDisconnect() { (void)!::write(fd_, "\xe0\x00", 2); }
  // Closes the socket with a reset and without a DISCONNECT, as a device losing power would.
  void Drop() {
    const linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd_);
    fd_ = -1;
  }

 private:
  static std::string Str(const std::string& s) {
    return std::string(1, static_cast<char>(s.size() >> 8)) + static_cast<char>(s.size() & 0xff) +
           s;
  }
  static std::string Mid(uint16_t mid) {
    return std::string(1, static_cast<char>(mid >> 8)) + static_cast<char>(mid & 0xff);
  }
  bool Send(uint8_t type, const std::string& body) {
    std::string packet(1, static_cast<char>(type));
    for (size_t n = body.size();;) {  // remaining length, variable-length encoded
      const uint8_t digit = n % 128;
      n /= 128;
      packet += static_cast<char>(n > 0 ? digit | 0x80 : digit);
      if (n == 0) break;
    }
    packet += body;
    return ::write(fd_, packet.data(), packet.size()) == static_cast<ssize_t>(packet.size());
  }
  // Buffers bytes until `n` are there or `timeout_ms` passed.
  bool Fill(size_t n, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (buf_.size() < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) != 1) return false;
      char chunk[4096];
      const ssize_t got = ::read(fd_, chunk, sizeof(chunk));
      if (got <= 0) {
        closed_ = true;
        return false;
      }
      buf_.append(chunk, static_cast<size_t>(got));
    }
    return true;
  }
  // One whole packet: its first byte and its body. A packet cut by the timeout stays buffered.
  bool ReadPacket(int timeout_ms, uint8_t* type, std::string* body) {
    size_t length = 0, header = 1;
    for (int shift = 0;; shift += 7) {
      if (header > 4 || !Fill(header + 1, timeout_ms)) return false;
      const auto digit = static_cast<uint8_t>(buf_[header]);
      length |= static_cast<size_t>(digit & 0x7f) << shift;
      ++header;
      if ((digit & 0x80) == 0) break;
    }
    if (!Fill(header + length, timeout_ms)) return false;
    *type = static_cast<uint8_t>(buf_[0]);
    *body = buf_.substr(header, length);
    buf_.erase(0, header + length);
    return true;
  }
  void OnPublish(uint8_t type, const std::string& p) {
    const int qos = (type >> 1) & 3;
    if (p.size() < 2) return;
    const size_t topic_len = (static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]);
    size_t at = 2 + topic_len;
    if (p.size() < at + (qos > 0 ? 2 : 0)) return;
    const std::string topic = p.substr(2, topic_len);
    if (qos > 0) {
      Send(0x40, p.substr(at, 2));  // PUBACK
      at += 2;
    }
    inbox_.push_back({topic, p.substr(at)});
  }

  int fd_ = -1;
  bool closed_ = false;
  uint16_t last_mid_ = 0;
  std::string buf_;
  std::vector<testing::ReceivedMessage> inbox_;
};

struct Presence {
  std::string topic;
  std::string device_id;
  std::string event;
  uint64_t seq = 0;
  int64_t at_ms = 0;
};

// The exact format: {"device_id":"ID","event":"connected|disconnected","seq":N,"at_ms":M}.
// (Parsed by hand: std::regex trips GCC 12's -Wmaybe-uninitialized in the ASan build.)
Presence ParsePresence(const testing::ReceivedMessage& m) {
  Presence p;
  p.topic = m.topic;
  const std::string& s = m.payload;
  size_t at = 0;
  auto literal = [&](const std::string& text) {
    if (s.compare(at, text.size(), text) != 0) return false;
    at += text.size();
    return true;
  };
  auto until = [&](char end, std::string* out) {
    const size_t stop = s.find(end, at);
    if (stop == std::string::npos || stop == at) return false;
    *out = s.substr(at, stop - at);
    at = stop;
    return true;
  };
  auto digits = [](const std::string& t) {
    return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
  };
  std::string seq, at_ms;
  const bool ok = literal("{\"device_id\":\"") && until('"', &p.device_id) &&
                  literal("\",\"event\":\"") && until('"', &p.event) &&
                  (p.event == "connected" || p.event == "disconnected") && literal("\",\"seq\":") &&
                  until(',', &seq) && digits(seq) && literal(",\"at_ms\":") && until('}', &at_ms) &&
                  digits(at_ms) && literal("}") && at == s.size() &&
                  p.device_id.find_first_not_of(
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789_-") == std::string::npos;
  if (!ok) {
    ADD_FAILURE() << "not a presence payload: " << m.payload;
    return p;
  }
  p.seq = std::stoull(seq);
  p.at_ms = std::stoll(at_ms);
  return p;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The platform's rule: a device is online after "connected"; a "disconnected" counts only if
// its seq is not below the device's last "connected" seq (else it ends a connection already
// taken over).
struct PlatformView {
  struct Device {
    bool online = false;
    uint64_t connected_seq = 0;
  };
  std::map<std::string, Device> devices;
  void Apply(const Presence& p) {
    Device& d = devices[p.device_id];
    if (p.event == "connected") {
      if (p.seq >= d.connected_seq) d = {true, p.seq};
    } else if (p.seq >= d.connected_seq) {
      d.online = false;
    }
  }
};

class PresenceTest : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(platform_.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
    ASSERT_EQ(platform_.Subscribe("$ota/presence/#"), 1);
  }
  // Waits until `n` presence events arrived (or 5 s passed), then a little longer for extras.
  std::vector<Presence> Await(size_t n) {
    std::vector<Presence> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : platform_.Receive(std::chrono::milliseconds(50)))
        out.push_back(ParsePresence(m));
    }
    for (const auto& m : platform_.Receive(std::chrono::milliseconds(300)))
      out.push_back(ParsePresence(m));
    return out;
  }

  MqttTestClient platform_{"ota-server-presence"};
};

TEST_F(PresenceTest, ConnectThenCleanDisconnect_SameSeq) {
  const int64_t before = NowMs();
  auto a = std::make_unique<MqttTestClient>(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(*a, "prod_a", "secret-a"), 0);
  const std::vector<Presence> up = Await(1);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].topic, "$ota/presence/prod_a");
  EXPECT_EQ(up[0].device_id, "prod_a");
  EXPECT_EQ(up[0].event, "connected");
  EXPECT_GE(up[0].at_ms, before);
  EXPECT_LE(up[0].at_ms, NowMs());
  EXPECT_GE(up[0].seq, static_cast<uint64_t>(before) * 1000) << "seq starts at Unix microseconds";

  a.reset();  // sends DISCONNECT
  const std::vector<Presence> down = Await(1);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].topic, "$ota/presence/prod_a");
  EXPECT_EQ(down[0].event, "disconnected");
  EXPECT_EQ(down[0].seq, up[0].seq);
  EXPECT_GE(down[0].at_ms, up[0].at_ms);

  // The next connection gets a higher seq.
  MqttTestClient again(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(again, "prod_a", "secret-a"), 0);
  const std::vector<Presence> up2 = Await(1);
  ASSERT_EQ(up2.size(), 1u);
  EXPECT_GT(up2[0].seq, up[0].seq);
}

TEST_F(PresenceTest, ConnectionDroppedWithoutDisconnect_Reported) {
  RawClient b;
  ASSERT_EQ(b.Connect(broker_->port(), ClientIdOf("prod_b"), "prod_b",
                      IotdaPassword("secret-b", testing::UtcHour())),
            0);
  const std::vector<Presence> up = Await(1);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].event, "connected");
  b.Drop();
  const std::vector<Presence> down = Await(1);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].device_id, "prod_b");
  EXPECT_EQ(down[0].event, "disconnected");
  EXPECT_EQ(down[0].seq, up[0].seq);
}

// Mosquitto accepts the new login of a client ID, then closes the old connection: the old
// connection's "disconnected" comes after the new "connected", with the old (lower) seq.
TEST_F(PresenceTest, Takeover_LeavesTheDeviceOnline) {
  MqttTestClient first(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(first, "prod_a", "secret-a"), 0);
  const std::vector<Presence> one = Await(1);
  ASSERT_EQ(one.size(), 1u);
  auto second = std::make_unique<MqttTestClient>(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(*second, "prod_a", "secret-a"), 0);
  const std::vector<Presence> two = Await(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].event, "connected");
  EXPECT_GT(two[0].seq, one[0].seq);
  EXPECT_EQ(two[1].event, "disconnected");
  EXPECT_EQ(two[1].seq, one[0].seq) << "the old connection's end carries its own seq";

  PlatformView view;
  for (const auto& p : one)
    view.Apply(p);
  for (const auto& p : two)
    view.Apply(p);
  EXPECT_TRUE(view.devices["prod_a"].online) << "the stale disconnect is ignored";
  EXPECT_EQ(view.devices["prod_a"].connected_seq, two[0].seq);

  // The new connection's own end does take the device offline; the old client, already cut
  // off, produces nothing more.
  second.reset();
  const std::vector<Presence> three = Await(1);
  ASSERT_EQ(three.size(), 1u);
  EXPECT_EQ(three[0].event, "disconnected");
  EXPECT_EQ(three[0].seq, two[0].seq);
  view.Apply(three[0]);
  EXPECT_FALSE(view.devices["prod_a"].online);
}

// A persistent session outlives its connection; when the device comes back, Mosquitto fires a
// second disconnect event for the old session's client. It must not be reported again.
TEST_F(PresenceTest, PersistentSessionResumed_NoDuplicateDisconnect) {
  const std::string password = IotdaPassword("secret-a", testing::UtcHour());
  RawClient a1;
  ASSERT_EQ(a1.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a", password, false), 0);
  a1.SendDisconnect();
  const std::vector<Presence> first = Await(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].event, "connected");
  EXPECT_EQ(first[1].event, "disconnected");
  EXPECT_EQ(first[1].seq, first[0].seq);
  RawClient a2;
  ASSERT_EQ(a2.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a", password, false), 0);
  const std::vector<Presence> second = Await(1);
  ASSERT_EQ(second.size(), 1u) << "only the new connection";
  EXPECT_EQ(second[0].event, "connected");
  EXPECT_GT(second[0].seq, first[0].seq);
}

TEST_F(PresenceTest, RefusedAndPlatformLogins_NotReported) {
  MqttTestClient wrong(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(wrong, "prod_a", "not-the-secret"), kNotAuthorized);
  MqttTestClient disabled(ClientIdOf("prod_off"));
  EXPECT_EQ(ConnectDevice(disabled, "prod_off", "secret-off"), kNotAuthorized);
  MqttTestClient platform_bad("platform-2");
  EXPECT_EQ(platform_bad.Connect(broker_->port(), "ota-server", "guess"), kNotAuthorized);
  {
    MqttTestClient platform_again("ota-server-2");
    EXPECT_EQ(platform_again.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  }
  RawClient refused_raw;
  EXPECT_EQ(refused_raw.Connect(broker_->port(), ClientIdOf("prod_b"), "prod_b", "bad"),
            kNotAuthorized);
  refused_raw.Drop();
  const std::vector<Presence> got = Await(0);
  for (const auto& p : got)
    ADD_FAILURE() << "unexpected presence: " << p.topic << " " << p.event;
}

TEST_F(PresenceTest, DevicesCannotSubscribeToOrForgePresence) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  EXPECT_EQ(a.Subscribe("$ota/presence/#"), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/presence/prod_b"), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/presence/prod_a"), 0x80);
  EXPECT_TRUE(a.Publish("$ota/presence/prod_b",
                        R"({"device_id":"prod_b","event":"connected","seq":1,"at_ms":1})"));
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);

  EXPECT_TRUE(a.Receive(std::chrono::milliseconds(300)).empty());
  const std::vector<Presence> got = Await(2);
  ASSERT_EQ(got.size(), 2u) << "prod_a and prod_b connected, nothing forged";
  EXPECT_EQ(got[0].device_id, "prod_a");
  EXPECT_EQ(got[1].device_id, "prod_b");
  for (const auto& p : got)
    EXPECT_GT(p.seq, 1u);
  EXPECT_NE(broker_->Log().find("denied device prod_a publish on $ota/presence/prod_b"),
            std::string::npos);
}

// ---- CONNACK codes ----

// Mosquitto 2.0.11 answers a plugin's MOSQ_ERR_AUTH with "not authorised" whatever the reason:
// 5 for MQTT 3.1.1, 0x87 for MQTT 5 (docs/spec/broker-auth.md, "CONNACK codes").
TEST_F(PluginTest, ConnackCodes_Mqtt311_NotAuthorisedForEveryRefusal) {
  const std::string hour = testing::UtcHour();
  RawClient bad_password;
  EXPECT_EQ(bad_password.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a",
                                 IotdaPassword("not-the-secret", hour)),
            kNotAuthorized);
  RawClient unknown;
  EXPECT_EQ(unknown.Connect(broker_->port(), ClientIdOf("prod_nobody"), "prod_nobody",
                            IotdaPassword("secret-a", hour)),
            kNotAuthorized);
  RawClient malformed;
  EXPECT_EQ(malformed.Connect(broker_->port(), "prod_a", "prod_a", IotdaPassword("secret-a", hour)),
            kNotAuthorized);
  RawClient disabled;
  EXPECT_EQ(disabled.Connect(broker_->port(), ClientIdOf("prod_off"), "prod_off",
                             IotdaPassword("secret-off", hour)),
            kNotAuthorized);
  RawClient good;
  EXPECT_EQ(good.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a",
                         IotdaPassword("secret-a", hour)),
            0);
}

TEST_F(PluginTest, ConnackCodes_Mqtt5_NotAuthorisedForEveryRefusal) {
  constexpr int kMqtt5NotAuthorized = 0x87;
  const std::string hour = testing::UtcHour();
  RawClient bad_password;
  EXPECT_EQ(bad_password.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a",
                                 IotdaPassword("not-the-secret", hour), true, 5),
            kMqtt5NotAuthorized);
  RawClient unknown;
  EXPECT_EQ(unknown.Connect(broker_->port(), ClientIdOf("prod_nobody"), "prod_nobody",
                            IotdaPassword("secret-a", hour), true, 5),
            kMqtt5NotAuthorized);
  RawClient good;
  EXPECT_EQ(good.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a",
                         IotdaPassword("secret-a", hour), true, 5),
            0);
}

// ---- Implicit subscriptions ----

// The platform's down messages for `device`, one on each of IoTDA's six implicit filters.
std::vector<testing::ReceivedMessage> DownMessages(const std::string& device,
                                                   const std::string& tag = "") {
  const std::string t = "$oc/devices/" + device + "/sys/";
  return {
      {t + "events/down", R"({"services":[]})" + tag},
      {t + "commands/request_id=1", R"({"command_name":"reboot"})" + tag},
      {t + "properties/set/request_id=2", R"({"services":[]})" + tag},
      {t + "properties/get/request_id=3", R"({"service_id":"s"})" + tag},
      {t + "messages/down", "free form" + tag},
      {t + "shadow/get/response/request_id=4", R"({"shadow":[]})" + tag},
  };
}

// Whether `got` holds each of `want` exactly once and nothing else.
::testing::AssertionResult ExactlyOnce(const std::vector<testing::ReceivedMessage>& want,
                                       const std::vector<testing::ReceivedMessage>& got) {
  std::map<std::pair<std::string, std::string>, int> count;
  for (const auto& m : got)
    ++count[{m.topic, m.payload}];
  auto failure = ::testing::AssertionFailure();
  bool ok = got.size() == want.size();
  for (const auto& m : want) {
    const int n = count[{m.topic, m.payload}];
    if (n != 1) {
      ok = false;
      failure << m.topic << " arrived " << n << " times; ";
    }
  }
  if (ok) return ::testing::AssertionSuccess();
  return failure << got.size() << " messages in all";
}

class ImplicitSubscriptionTest : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    std::string error;
    ASSERT_TRUE(store_->Put("prod_c", "secret-c", true, &error)) << error;
    ASSERT_EQ(platform_.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
    // The platform's own subscriptions (server/src/device_protocol.cpp UpSubscriptions), and
    // catch-alls that would show any down message or re-filed original reaching it.
    for (const char* f : {"$oc/devices/+/sys/properties/report", "$oc/devices/+/sys/events/up",
                          "$oc/devices/+/sys/messages/up", "$oc/devices/+/sys/commands/response/#",
                          "$ota/presence/+", "$oc/devices/+/sys/#", "$ota/#"}) {
      ASSERT_EQ(platform_.Subscribe(f), 1) << f;
    }
  }

  // Publishes each message from the platform; each must be acknowledged (PUBACK).
  void PlatformSends(const std::vector<testing::ReceivedMessage>& messages) {
    for (const auto& m : messages)
      EXPECT_TRUE(platform_.Publish(m.topic, m.payload)) << "no PUBACK for " << m.topic;
  }
  // What `client` receives until `n` messages came (or 5 s passed), then 300 ms more.
  template <typename Client>
  static std::vector<testing::ReceivedMessage> Collect(Client& client, size_t n) {
    std::vector<testing::ReceivedMessage> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      for (auto& m : client.Receive(std::chrono::milliseconds(50)))
        out.push_back(std::move(m));
    }
    for (auto& m : client.Receive(std::chrono::milliseconds(300)))
      out.push_back(std::move(m));
    return out;
  }
  // Besides the broker's presence events and login statistics, the platform got exactly
  // `routed`: the down messages it sent to offline devices (normal routing reaches its
  // catch-all); never a redirected one, nor a re-filed original.
  void ExpectPlatformGot(const std::vector<testing::ReceivedMessage>& routed = {}) {
    std::vector<testing::ReceivedMessage> got;
    for (auto& m : platform_.Receive(std::chrono::milliseconds(100))) {
      if (m.topic.rfind("$ota/presence/", 0) != 0 && m.topic != kLoginStatsTopic) {
        got.push_back(std::move(m));
      }
    }
    EXPECT_TRUE(ExactlyOnce(routed, got));
  }

  MqttTestClient platform_{"ota-server-implicit"};
};

TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_NeverSubscribed_ReceivesExactlyOnce) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  const auto want = DownMessages("prod_a");
  PlatformSends(want);
  EXPECT_TRUE(ExactlyOnce(want, Collect(a, want.size())));
  ExpectPlatformGot();
  EXPECT_EQ(broker_->Log().find("cannot deliver"), std::string::npos);
}

// Huawei's C demo subscribes the six filters at QoS 0 on top of the implicit QoS 1 ones; our
// device agent subscribes its exact topic at QoS 1.
TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_SubscribedQos0_ReceivesExactlyOnce) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  ASSERT_EQ(a.Subscribe("$oc/devices/prod_a/sys/#", 0), 0);
  for (const char* f : {"messages/down", "commands/#", "properties/set/#", "properties/get/#",
                        "events/down", "shadow/get/response/#"}) {
    ASSERT_EQ(a.Subscribe(std::string("$oc/devices/prod_a/sys/") + f, 0), 0) << f;
  }
  const auto want = DownMessages("prod_a");
  PlatformSends(want);
  EXPECT_TRUE(ExactlyOnce(want, Collect(a, want.size())));
  ExpectPlatformGot();
}

TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_SubscribedQos1_ReceivesExactlyOnce) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  ASSERT_EQ(a.Subscribe("$oc/devices/prod_a/sys/#", 1), 1);
  ASSERT_EQ(a.Subscribe("$oc/devices/prod_a/sys/events/down", 1), 1);  // as our device agent
  ASSERT_EQ(a.Subscribe("$oc/devices/prod_a/#", 1), 1);
  const auto want = DownMessages("prod_a");
  PlatformSends(want);
  EXPECT_TRUE(ExactlyOnce(want, Collect(a, want.size())));
  ExpectPlatformGot();
}

TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_OtherDevices_ReceiveNothing) {
  auto a = std::make_unique<MqttTestClient>(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(*a, "prod_a", "secret-a"), 0);
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  ASSERT_EQ(b.Subscribe("$oc/devices/prod_b/sys/#", 1), 1);
  MqttTestClient c(ClientIdOf("prod_c"));
  ASSERT_EQ(ConnectDevice(c, "prod_c", "secret-c"), 0);
  const auto want = DownMessages("prod_a");
  PlatformSends(want);
  EXPECT_TRUE(ExactlyOnce(want, Collect(*a, want.size())));
  // And while prod_a is offline (normal routing): still nobody else.
  a.reset();
  const auto offline = DownMessages("prod_a", " offline");
  PlatformSends(offline);
  EXPECT_TRUE(b.Receive(std::chrono::milliseconds(300)).empty());
  EXPECT_TRUE(c.Receive(std::chrono::milliseconds(1)).empty());
  ExpectPlatformGot(offline);
}

// IoTDA's Python and Java SDKs build a new client ID (new hour, maybe another sig type) for each
// connect, so a device's new connection need not take its old one over in MQTT terms.
TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_Takeover_OnlyTheNewConnection) {
  MqttTestClient old_conn(ClientIdOf("prod_a", 0));
  ASSERT_EQ(ConnectDevice(old_conn, "prod_a", "secret-a"), 0);
  ASSERT_EQ(old_conn.Subscribe("$oc/devices/prod_a/sys/#", 1), 1);  // normal routing would hit it
  auto new_conn = std::make_unique<MqttTestClient>(ClientIdOf("prod_a", 1));
  ASSERT_EQ(ConnectDevice(*new_conn, "prod_a", "secret-a"), 0);
  const auto first = DownMessages("prod_a", " 1");
  PlatformSends(first);
  EXPECT_TRUE(ExactlyOnce(first, Collect(*new_conn, first.size())));
  EXPECT_TRUE(old_conn.Receive(std::chrono::milliseconds(1)).empty());

  // The same client ID again: Mosquitto closes the previous connection; the newest gets it.
  auto same_id = std::make_unique<MqttTestClient>(ClientIdOf("prod_a", 1));
  ASSERT_EQ(ConnectDevice(*same_id, "prod_a", "secret-a"), 0);
  const auto second = DownMessages("prod_a", " 2");
  PlatformSends(second);
  EXPECT_TRUE(ExactlyOnce(second, Collect(*same_id, second.size())));
  EXPECT_TRUE(new_conn->Receive(std::chrono::milliseconds(1)).empty());
  EXPECT_TRUE(old_conn.Receive(std::chrono::milliseconds(1)).empty());

  // When the newest ends, the older connection still open is the device's again.
  same_id.reset();
  new_conn.reset();
  const auto third = DownMessages("prod_a", " 3");
  PlatformSends(third);
  EXPECT_TRUE(ExactlyOnce(third, Collect(old_conn, third.size())));
  ExpectPlatformGot();
}

// Offline, the platform's message routes normally: a persistent session that subscribed has it
// queued and gets it on reconnecting, once; one that never subscribed gets nothing.
TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_OfflinePersistentSession_QueuedIfSubscribed) {
  const std::string password = IotdaPassword("secret-a", testing::UtcHour());
  {
    RawClient a1;
    ASSERT_EQ(a1.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a", password, false), 0);
    ASSERT_EQ(a1.Subscribe("$oc/devices/prod_a/sys/#", 1), 1);
    a1.SendDisconnect();
    EXPECT_TRUE(a1.Receive(std::chrono::milliseconds(200)).empty());
  }
  const auto queued = DownMessages("prod_a", " queued");
  PlatformSends(queued);
  ExpectPlatformGot(queued);  // offline: routed normally
  RawClient a2;
  ASSERT_EQ(a2.Connect(broker_->port(), ClientIdOf("prod_a"), "prod_a", password, false), 0);
  EXPECT_TRUE(ExactlyOnce(queued, Collect(a2, queued.size())));
  // Online again, with the subscription restored: redirected, still once.
  const auto online = DownMessages("prod_a", " online");
  PlatformSends(online);
  EXPECT_TRUE(ExactlyOnce(online, Collect(a2, online.size())));

  const std::string password_b = IotdaPassword("secret-b", testing::UtcHour());
  {
    RawClient b1;
    ASSERT_EQ(b1.Connect(broker_->port(), ClientIdOf("prod_b"), "prod_b", password_b, false), 0);
    b1.SendDisconnect();
    EXPECT_TRUE(b1.Receive(std::chrono::milliseconds(200)).empty());
  }
  const auto lost = DownMessages("prod_b", " lost");
  PlatformSends(lost);
  RawClient b2;
  ASSERT_EQ(b2.Connect(broker_->port(), ClientIdOf("prod_b"), "prod_b", password_b, false), 0);
  EXPECT_TRUE(b2.Receive(std::chrono::milliseconds(300)).empty());
  ExpectPlatformGot(lost);
}

// Only the platform's messages are redirected: a device publishing to its own down topic is
// ordinary MQTT (it reaches the platform's subscription, and the device only if it subscribed).
TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_DeviceOwnDownTopic_NotRedirected) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  EXPECT_TRUE(a.Publish("$oc/devices/prod_a/sys/commands/request_id=9", "from the device"));
  EXPECT_TRUE(a.Publish("$oc/devices/prod_a/sys/messages/down", "from the device"));
  EXPECT_TRUE(a.Receive(std::chrono::milliseconds(300)).empty());
  std::vector<std::string> topics;
  for (const auto& m : platform_.Receive(std::chrono::milliseconds(300))) {
    if (m.payload == "from the device") topics.push_back(m.topic);
  }
  EXPECT_EQ(topics, (std::vector<std::string>{"$oc/devices/prod_a/sys/commands/request_id=9",
                                              "$oc/devices/prod_a/sys/messages/down"}));

  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  ASSERT_EQ(b.Subscribe("$oc/devices/prod_b/sys/#", 1), 1);
  EXPECT_TRUE(b.Publish("$oc/devices/prod_b/sys/events/down", "own"));
  const auto got = Collect(b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "own");
}

// Nobody can read the topic the originals are re-filed under, the platform included.
TEST_F(ImplicitSubscriptionTest, ImplicitSubscription_SinkTopic_NeverDelivered) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  EXPECT_EQ(a.Subscribe("$ota/redirected", 1), 0x80);
  MqttTestClient other_platform("ota-server-sink");
  ASSERT_EQ(other_platform.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(other_platform.Subscribe("$ota/redirected"), 1);
  PlatformSends(DownMessages("prod_a"));
  EXPECT_TRUE(platform_.Publish("$ota/redirected", "direct"));
  EXPECT_EQ(Collect(a, 6).size(), 6u);
  EXPECT_TRUE(other_platform.Receive(std::chrono::milliseconds(300)).empty());
  ExpectPlatformGot();
}

// ---- Control messages: the platform disconnects a device at once ----

class ControlTest : public PresenceTest {
 protected:
  // Whether `c` is still connected: a round trip (QoS 1 publish on its own tree) succeeds.
  static bool StillConnected(MqttTestClient& c, const std::string& device) {
    return c.Publish("$oc/devices/" + device + "/sys/messages/up", "ping");
  }
};

TEST_F(ControlTest, Disconnect_ClosesEveryConnectionOfThatDeviceOnly) {
  MqttTestClient a0(ClientIdOf("prod_a", 0));
  ASSERT_EQ(ConnectDevice(a0, "prod_a", "secret-a"), 0);
  MqttTestClient a1(ClientIdOf("prod_a", 1));  // Huawei's Python SDK: another client ID
  ASSERT_EQ(ConnectDevice(a1, "prod_a", "secret-a"), 0);
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  ASSERT_EQ(Await(3).size(), 3u);
  ASSERT_EQ(platform_.Subscribe("$ota/control/#"), 1);  // would show it if it routed

  ASSERT_TRUE(platform_.Publish(std::string(kDisconnectTopic), "prod_a"));
  EXPECT_TRUE(a0.WaitDisconnected(std::chrono::seconds(3)));
  EXPECT_TRUE(a1.WaitDisconnected(std::chrono::seconds(3)));
  // The broker reports both ends; the control message itself reaches no one.
  const std::vector<Presence> down = Await(2);
  ASSERT_EQ(down.size(), 2u);
  for (const Presence& e : down) {
    EXPECT_EQ(e.topic, "$ota/presence/prod_a");
    EXPECT_EQ(e.event, "disconnected");
  }
  EXPECT_TRUE(StillConnected(b, "prod_b"));
  EXPECT_FALSE(b.WaitDisconnected(std::chrono::milliseconds(300)));
  EXPECT_NE(broker_->Log().find("disconnect device prod_a at the platform's request"),
            std::string::npos);

  // It may log in again (the platform refuses it through the credential store, not here).
  MqttTestClient again(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(again, "prod_a", "secret-a"), 0);
}

TEST_F(ControlTest, Disconnect_OfflineUnknownOrInvalidDevice_NothingHappens) {
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  ASSERT_EQ(Await(1).size(), 1u);
  ASSERT_EQ(platform_.Subscribe("$ota/control/#"), 1);
  // Offline, unknown, malformed, empty, the platform's own name: each acknowledged and dropped.
  for (const char* payload : {"prod_a", "nobody", "prod_b/x", "", "prod_+", "ota-server"}) {
    EXPECT_TRUE(platform_.Publish(std::string(kDisconnectTopic), payload)) << payload;
  }
  EXPECT_TRUE(platform_.Publish("$ota/control/other", "prod_b"));
  EXPECT_TRUE(platform_.Receive(std::chrono::milliseconds(300)).empty());
  EXPECT_TRUE(StillConnected(b, "prod_b"));
  EXPECT_TRUE(platform_.Publish(std::string(kDisconnectTopic), "prod_b"));  // still listening
  EXPECT_TRUE(b.WaitDisconnected(std::chrono::seconds(3)));
}

TEST_F(ControlTest, Device_CannotSubscribeOrPublishControl) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  EXPECT_EQ(a.Subscribe(std::string(kDisconnectTopic)), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/control/#"), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/#"), 0x80);
  // Acknowledged (MQTT 3.1.1 has no negative PUBACK) but dropped: B stays connected.
  EXPECT_TRUE(a.Publish(std::string(kDisconnectTopic), "prod_b"));
  EXPECT_TRUE(a.Publish(std::string(kDisconnectTopic), "prod_a"));
  EXPECT_FALSE(b.WaitDisconnected(std::chrono::milliseconds(500)));
  EXPECT_TRUE(StillConnected(b, "prod_b"));
  EXPECT_TRUE(StillConnected(a, "prod_a"));
  EXPECT_NE(broker_->Log().find("denied device prod_a publish on $ota/control/disconnect"),
            std::string::npos);
  EXPECT_NE(broker_->Log().find("denied device prod_a subscribe on $ota/control/disconnect"),
            std::string::npos);
}

// ---- Login statistics: the plugin's verdicts by reason, published to the platform ----

class LoginStatsTest : public PluginTest {
 protected:
  std::vector<std::string> ExtraConfig() const override {
    return {"plugin_opt_login_stats_interval_s 1"};
  }
  // The last statistics message `c` receives within `timeout` whose logins equal `want` (by
  // reason; absent reasons 0), or the last one seen (or null) when none matched in time.
  static nlohmann::json AwaitLogins(MqttTestClient& c, const std::map<std::string, int>& want,
                                    std::chrono::milliseconds timeout) {
    nlohmann::json last;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : c.Receive(std::chrono::milliseconds(100))) {
        if (m.topic != kLoginStatsTopic) continue;
        last = nlohmann::json::parse(m.payload);
        bool match = true;
        for (size_t i = 0; i < kConnectVerdictCount; ++i) {
          const char* reason = ConnectVerdictReason(static_cast<ConnectVerdict>(i));
          const auto it = want.find(reason);
          match &= last["logins"][reason] == (it == want.end() ? 0 : it->second);
        }
        if (match) return last;
      }
    }
    return last;
  }
};

TEST_F(LoginStatsTest, EveryVerdict_CountedByReason_PublishedToThePlatformOnly) {
  MqttTestClient platform("ota-server-stats");
  ASSERT_EQ(platform.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(platform.Subscribe(std::string(kLoginStatsTopic)), 1);
  const int64_t before = std::time(nullptr);

  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  // A device may not subscribe to the statistics, by name or by wildcard.
  EXPECT_EQ(a.Subscribe(std::string(kLoginStatsTopic)), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/stats/#"), 0x80);
  EXPECT_EQ(a.Subscribe("$ota/#"), 0x80);
  ASSERT_EQ(a.Subscribe("$oc/devices/prod_a/#"), 1);
  // One refusal of each reason, two of bad_password (wrong secret; username not the device).
  MqttTestClient malformed("prod_a_9_9_nothour");
  EXPECT_EQ(ConnectDevice(malformed, "prod_a", "secret-a"), kNotAuthorized);
  MqttTestClient unknown(ClientIdOf("prod_nobody"));
  EXPECT_EQ(ConnectDevice(unknown, "prod_nobody", "whatever"), kNotAuthorized);
  MqttTestClient disabled(ClientIdOf("prod_off"));
  EXPECT_EQ(ConnectDevice(disabled, "prod_off", "secret-off"), kNotAuthorized);
  MqttTestClient wrong(ClientIdOf("prod_b"));
  EXPECT_EQ(ConnectDevice(wrong, "prod_b", "not-the-secret"), kNotAuthorized);
  MqttTestClient other_user(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(other_user, "prod_b", "secret-a"), kNotAuthorized);
  const std::string stale_hour = testing::UtcHour(-5 * 3600);
  MqttTestClient stale(ClientIdOf("prod_a", 1, stale_hour));
  EXPECT_EQ(ConnectDevice(stale, "prod_a", "secret-a", stale_hour), kNotAuthorized);
  // The platform's own logins, accepted or not, are not device logins.
  MqttTestClient platform_bad("platform-x");
  EXPECT_EQ(platform_bad.Connect(broker_->port(), "ota-server", "guess"), kNotAuthorized);

  const std::map<std::string, int> want = {{"accepted", 1},       {"malformed_client_id", 1},
                                           {"unknown_device", 1}, {"disabled", 1},
                                           {"bad_password", 2},   {"stale_timestamp", 1}};
  const nlohmann::json got = AwaitLogins(platform, want, std::chrono::seconds(10));
  ASSERT_TRUE(got.is_object()) << "no statistics message came";
  EXPECT_EQ(got["logins"].size(), kConnectVerdictCount) << got.dump();
  for (const auto& [reason, n] : want)
    EXPECT_EQ(got["logins"][reason], n) << reason << " in " << got.dump();
  const std::string broker = got["broker"];
  EXPECT_EQ(broker.size(), 32u);
  EXPECT_LE(got["started_at"].get<int64_t>(), before);
  EXPECT_GT(got["started_at"].get<int64_t>(), before - 60);

  // Retained: a platform client that subscribes later gets the latest counts at once.
  MqttTestClient later("ota-server-later");
  ASSERT_EQ(later.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(later.Subscribe(std::string(kLoginStatsTopic)), 1);
  const nlohmann::json retained = AwaitLogins(later, want, std::chrono::seconds(3));
  EXPECT_EQ(retained, got);

  // Another login: the next message counts it, under the same instance.
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);
  std::map<std::string, int> want2 = want;
  want2["accepted"] = 2;
  const nlohmann::json next = AwaitLogins(platform, want2, std::chrono::seconds(10));
  ASSERT_TRUE(next.is_object());
  EXPECT_EQ(next["logins"]["accepted"], 2) << next.dump();
  EXPECT_EQ(next["broker"], broker);

  // The device never saw any of it.
  for (const auto& m : a.Receive(std::chrono::milliseconds(300)))
    ADD_FAILURE() << "the device received " << m.topic;
  EXPECT_NE(broker_->Log().find("denied device prod_a subscribe on $ota/stats/logins"),
            std::string::npos);
}

TEST_F(LoginStatsTest, NewBrokerStart_NewInstance_CountsFromZero) {
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  MqttTestClient platform("ota-server-stats");
  ASSERT_EQ(platform.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(platform.Subscribe(std::string(kLoginStatsTopic)), 1);
  const nlohmann::json first = AwaitLogins(platform, {{"accepted", 1}}, std::chrono::seconds(10));
  ASSERT_TRUE(first.is_object());

  broker_->Stop(SIGTERM);
  ASSERT_TRUE(broker_->Start());
  MqttTestClient wrong(ClientIdOf("prod_b"));
  EXPECT_EQ(ConnectDevice(wrong, "prod_b", "nope"), kNotAuthorized);
  MqttTestClient again("ota-server-stats-2");
  ASSERT_EQ(again.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(again.Subscribe(std::string(kLoginStatsTopic)), 1);
  const nlohmann::json second = AwaitLogins(again, {{"bad_password", 1}}, std::chrono::seconds(10));
  ASSERT_TRUE(second.is_object());
  EXPECT_EQ(second["logins"]["bad_password"], 1) << second.dump();
  EXPECT_EQ(second["logins"]["accepted"], 0) << second.dump();
  EXPECT_NE(second["broker"], first["broker"]);
}

TEST_F(PluginTest, LoginStatsInterval_OutOfRange_BrokerRefusesToStart) {
  std::vector<std::string> config = {
      std::string("plugin ") + OTA_AUTH_PLUGIN,
      "plugin_opt_registry " + (dir_ / "registry.db").string(),
      "plugin_opt_secret_key " + (dir_ / "key").string(),
      "plugin_opt_login_stats_interval_s 0",
  };
  testing::TempDir other{"ota-plugin-bad"};
  MosquittoProcess bad(other.path(), config);
  EXPECT_FALSE(bad.running());
  EXPECT_NE(bad.Log().find("login_stats_interval_s must be 1..3600"), std::string::npos)
      << bad.Log();
}

}  // namespace
}  // namespace ota::broker

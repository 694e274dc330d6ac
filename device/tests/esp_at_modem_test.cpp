// The ESP-AT network port against a scripted modem: the exact command lines it sends, and
// how it reads what a modem sends back (binary MQTT payloads, chunked HTTP data, URCs in the
// middle of a command, overlong lines, silence). The port end to end against the simulated
// modem and a real broker and server: tests/ota (EspAtModemPort_*).
#include "ota/port/esp_at_modem.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "ota/agent/ota_agent.hpp"
#include "ota/profile.hpp"
#include "sim/board_flash.hpp"

namespace ota::port {
namespace {

uint64_t g_now_ms = 0;
uint64_t FakeMillis() {
  return g_now_ms;
}

struct Step {
  Step(std::string e, std::string r, size_t raw = 0, std::string after = "")
      : expect(std::move(e)), reply(std::move(r)), raw_len(raw), after_raw(std::move(after)) {}
  std::string expect;  // the command line must start with this
  std::string reply;
  size_t raw_len;         // then this many raw bytes come (AT+MQTTPUBRAW data) ...
  std::string after_raw;  // ... answered with this
};

// A modem that answers each command line with the next scripted reply. Time passes only
// when the port waits for bytes that are not there.
class ScriptedModem final : public SerialPort {
 public:
  ScriptedModem(std::initializer_list<Step> script) : script_(script) {}

  Status Write(ConstByteSpan data) override {
    for (const uint8_t b : data) {
      if (raw_left_ > 0) {
        raw_ += static_cast<char>(b);
        if (--raw_left_ == 0) rx_ += raw_reply_;
        continue;
      }
      line_ += static_cast<char>(b);
      if (line_.size() < 2 || line_.compare(line_.size() - 2, 2, "\r\n") != 0) continue;
      const std::string cmd = line_.substr(0, line_.size() - 2);
      line_.clear();
      sent.push_back(cmd);
      if (script_.empty()) continue;  // a silent modem
      const Step s = script_.front();
      script_.pop_front();
      EXPECT_EQ(cmd.rfind(s.expect, 0), 0u) << "sent: " << cmd << "\nexpected: " << s.expect;
      rx_ += s.reply;
      raw_left_ = s.raw_len;
      raw_reply_ = s.after_raw;
    }
    return Status::Ok();
  }

  Result<size_t> Read(ByteSpan out, uint32_t timeout_ms) override {
    if (lose_at_ != std::string::npos && delivered_ >= lose_at_) {
      // A receive overrun: `lose_` bytes never arrive, and the driver says so once.
      rx_.erase(0, lose_);
      lose_at_ = std::string::npos;
      return StatusCode::kIoError;
    }
    if (rx_.empty()) {
      g_now_ms += timeout_ms == 0 ? 1 : timeout_ms;
      return size_t{0};
    }
    // Small pieces, as a UART delivers them: every parse state meets a buffer boundary.
    const size_t n = std::min({out.size(), rx_.size(), size_t{7}});
    const size_t m = lose_at_ != std::string::npos ? std::min(n, lose_at_ - delivered_) : n;
    std::copy(rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(m), out.begin());
    rx_.erase(0, m);
    delivered_ += m;
    return m;
  }

  void Push(const std::string& unsolicited) { rx_ += unsolicited; }
  // After `at` more bytes were delivered, `n` bytes are lost (a UART overrun).
  void LoseAfter(size_t at, size_t n) {
    lose_at_ = delivered_ + at;
    lose_ = n;
  }
  bool done() const { return script_.empty() && rx_.empty(); }

  std::vector<std::string> sent;
  std::string raw_;

 private:
  std::deque<Step> script_;
  std::string line_, rx_, raw_reply_;
  size_t raw_left_ = 0;
  size_t delivered_ = 0;
  size_t lose_at_ = std::string::npos;
  size_t lose_ = 0;
};

EspAtConfig Config() {
  EspAtConfig c;
  c.broker_host = "iot.example.com";
  c.broker_port = 8883;
  return c;
}

std::string Str(const uint8_t* p, size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

TEST(EspAtModem, Connect_SendsEscapedCredentialsAndConnects) {
  ScriptedModem m(
      {{"AT+MQTTCLEAN=0", "\r\nERROR\r\n"},
       {"AT+MQTTUSERCFG=", "\r\nOK\r\n"},
       {"AT+MQTTCONN=", "+MQTTCONNECTED:0,3,\"iot.example.com\",\"8883\",\"\",0\r\n\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(modem.Connect("dev_0_0_2026112517", "dev", "p,w\"d\\").ok());
  EXPECT_TRUE(modem.connected());
  ASSERT_EQ(m.sent.size(), 3u);
  EXPECT_EQ(m.sent[1], R"(AT+MQTTUSERCFG=0,3,"dev_0_0_2026112517","dev","p\,w\"d\\",0,0,"")");
  EXPECT_EQ(m.sent[2], R"(AT+MQTTCONN=0,"iot.example.com",8883,0)");
}

TEST(EspAtModem, Connect_RefusedByTheBroker_IsAnError) {
  ScriptedModem m({{"AT+MQTTCLEAN=0", "\r\nOK\r\n"},
                   {"AT+MQTTUSERCFG=", "\r\nOK\r\n"},
                   {"AT+MQTTCONN=", "\r\nERROR\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  EXPECT_EQ(modem.Connect("c", "u", "p").code(), StatusCode::kIoError);
  EXPECT_FALSE(modem.connected());
}

TEST(EspAtModem, Publish_WaitsForThePromptThenSendsThePayload) {
  const std::string payload = "{\"a\":1,\r\n\"b\":\"OK\"}";
  ScriptedModem m({{"AT+MQTTPUBRAW=0,\"$oc/devices/d/sys/properties/report\"," +
                        std::to_string(payload.size()) + ",1,0",
                    "\r\nOK\r\n\r\n>", payload.size(), "\r\n+MQTTPUB:OK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(
      modem
          .Publish("$oc/devices/d/sys/properties/report",
                   ConstByteSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()))
          .ok());
  EXPECT_EQ(m.raw_, payload);
}

TEST(EspAtModem, Publish_Fails_MarksTheConnectionDown) {
  ScriptedModem m({{"AT+MQTTCLEAN", "\r\nOK\r\n"},
                   {"AT+MQTTUSERCFG", "\r\nOK\r\n"},
                   {"AT+MQTTCONN", "\r\nOK\r\n"},
                   {"AT+MQTTPUBRAW", "\r\nOK\r\n\r\n>", 2, "\r\n+MQTTPUB:FAIL\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(modem.Connect("c", "u", "p").ok());
  const uint8_t two[2] = {'{', '}'};
  EXPECT_EQ(modem.Publish("t", ConstByteSpan(two)).code(), StatusCode::kIoError);
  EXPECT_FALSE(modem.connected()) << "the agent must reconnect";
}

TEST(EspAtModem, Publish_TopicLongerThanTheModemTakes_Refused) {
  ScriptedModem m({});
  EspAtModem modem(m, Config(), FakeMillis);
  const std::string topic(129, 't');
  const uint8_t one[1] = {'x'};
  EXPECT_EQ(modem.Publish(topic.c_str(), ConstByteSpan(one)).code(), StatusCode::kTooLarge);
  EXPECT_TRUE(m.sent.empty()) << "nothing is sent that the modem would refuse";
}

TEST(EspAtModem, Receive_BinaryPayloadWithLineEndsAndCommas_IsExact) {
  ScriptedModem m({});
  EspAtModem modem(m, Config(), FakeMillis);
  const std::string payload("x,\r\nOK\r\nERROR\r\n+MQTTDISCONNECTED:0\r\n\0end", 41);
  m.Push("+MQTTSUBRECV:0,\"$oc/devices/d/sys/events/down\"," + std::to_string(payload.size()) +
         "," + payload + "\r\n");
  char topic[64];
  uint8_t buf[128];
  const Result<size_t> n = modem.Receive(100, Span<char>(topic), ByteSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status().name();
  EXPECT_STREQ(topic, "$oc/devices/d/sys/events/down");
  EXPECT_EQ(Str(buf, n.value()), payload);
  EXPECT_EQ(modem.Receive(100, Span<char>(topic), ByteSpan(buf)).status().code(),
            StatusCode::kNotFound);
}

TEST(EspAtModem, Receive_MessageArrivingDuringACommand_IsKeptForLater) {
  ScriptedModem m(
      {{"AT+MQTTSUB=0,\"t/down\",1", "+MQTTSUBRECV:0,\"t/down\",5,hello\r\n\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(modem.Subscribe("t/down").ok());
  char topic[16];
  uint8_t buf[16];
  const Result<size_t> n = modem.Receive(0, Span<char>(topic), ByteSpan(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Str(buf, n.value()), "hello");
}

TEST(EspAtModem, Receive_MessageLargerThanTheInbox_IsDroppedAndCounted) {
  ScriptedModem m({});
  EspAtModem modem(m, Config(), FakeMillis);
  const std::string big(kAtInboxMax + 1, 'b');
  m.Push("+MQTTSUBRECV:0,\"t\"," + std::to_string(big.size()) + "," + big + "\r\n");
  m.Push("+MQTTSUBRECV:0,\"t\",2,ok\r\n");
  char topic[16];
  uint8_t buf[kAtInboxMax + 8];
  const Result<size_t> n = modem.Receive(100, Span<char>(topic), ByteSpan(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Str(buf, n.value()), "ok") << "the stream stays in step after a dropped message";
  EXPECT_EQ(modem.dropped_messages(), 1u);
}

TEST(EspAtModem, Receive_CallerBufferTooSmall_IsTooLarge) {
  ScriptedModem m({});
  EspAtModem modem(m, Config(), FakeMillis);
  m.Push("+MQTTSUBRECV:0,\"t\",10,0123456789\r\n");
  char topic[16];
  uint8_t buf[4];
  EXPECT_EQ(modem.Receive(100, Span<char>(topic), ByteSpan(buf)).status().code(),
            StatusCode::kTooLarge);
  EXPECT_EQ(modem.dropped_messages(), 1u) << "a message the caller cannot take is counted";
}

TEST(EspAtModem, DisconnectedUrc_EndsTheConnection) {
  ScriptedModem m({{"AT+MQTTCLEAN", "\r\nOK\r\n"},
                   {"AT+MQTTUSERCFG", "\r\nOK\r\n"},
                   {"AT+MQTTCONN", "\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(modem.Connect("c", "u", "p").ok());
  m.Push("WIFI DISCONNECT\r\n+MQTTDISCONNECTED:0\r\n");
  char topic[16];
  uint8_t buf[16];
  EXPECT_EQ(modem.Receive(50, Span<char>(topic), ByteSpan(buf)).status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(modem.connected());
}

TEST(EspAtModem, GetRange_ChunkedData_AssembledWithRangeAndBearerHeaders) {
  ScriptedModem m({{"AT+HTTPCLIENT=2,0,\"https://h:8443/v1/p/1\",,,2,",
                    "+HTTPCLIENT:3,a\r\n+HTTPCLIENT:4,\r\nOK\r\n\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  uint8_t buf[7];
  uint32_t total = 99;
  const Result<size_t> n =
      modem.GetRange("https://h:8443/v1/p/1", "tok,en", 4096, ByteSpan(buf), &total);
  ASSERT_TRUE(n.ok()) << n.status().name();
  EXPECT_EQ(Str(buf, n.value()), "a\r\n\r\nOK");
  EXPECT_EQ(total, 0u) << "AT+HTTPCLIENT does not tell the size";
  EXPECT_EQ(m.sent[0], R"(AT+HTTPCLIENT=2,0,"https://h:8443/v1/p/1",,,2,)"
                       R"("Authorization: Bearer tok\,en","Range: bytes=4096-4102")");
}

TEST(EspAtModem, GetRange_MoreThanAskedFor_IsCorrupt) {
  ScriptedModem m({{"AT+HTTPCLIENT", "+HTTPCLIENT:6,abcdef\r\n\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  uint8_t buf[4];
  uint32_t total = 0;
  EXPECT_EQ(modem.GetRange("https://h/f", "t", 0, ByteSpan(buf), &total).status().code(),
            StatusCode::kCorrupt);
}

TEST(EspAtModem, GetRange_ErrorAndSilence_AreErrorsNotHangs) {
  ScriptedModem m({{"AT+HTTPCLIENT", "\r\nERROR\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  uint8_t buf[4];
  uint32_t total = 0;
  EXPECT_EQ(modem.GetRange("https://h/f", "t", 0, ByteSpan(buf), &total).status().code(),
            StatusCode::kIoError);
  const uint64_t before = g_now_ms;
  EXPECT_EQ(modem.GetRange("https://h/f", "t", 0, ByteSpan(buf), &total).status().code(),
            StatusCode::kTimedOut);  // the script is over: the modem says nothing
  EXPECT_GE(g_now_ms - before, Config().http_timeout_ms);
}

TEST(EspAtModem, LateAnswerAfterATimeout_IsNotTakenForTheNextCommands) {
  // The first subscribe gets no answer in time; its OK comes late, before the next command.
  ScriptedModem m({{"AT+MQTTSUB=0,\"a\"", ""}, {"AT+MQTTSUB=0,\"b\"", "\r\nERROR\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  EXPECT_EQ(modem.Subscribe("a").code(), StatusCode::kTimedOut);
  m.Push("\r\nOK\r\n");
  EXPECT_EQ(modem.Subscribe("b").code(), StatusCode::kIoError) << "b's own answer is ERROR";
}

TEST(EspAtModem, BytesLostInsideHttpData_TheRestIsNotTakenForTheNextAnswer) {
  // 2 bytes of the data vanish: the port cannot know where the data ends, so the tail
  // ("...\r\nOK\r\n") must not become the answer to the next command.
  ScriptedModem m({{"AT+HTTPCLIENT", "+HTTPCLIENT:12,ab\r\nOK\r\nefgh\r\n\r\nOK\r\n"},
                   {"AT+MQTTSUB", "\r\nERROR\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  m.LoseAfter(18, 2);
  uint8_t buf[12];
  uint32_t total = 0;
  EXPECT_EQ(modem.GetRange("https://h/f", "t", 0, ByteSpan(buf), &total).status().code(),
            StatusCode::kIoError);
  EXPECT_EQ(modem.Subscribe("t").code(), StatusCode::kIoError) << "its own answer is ERROR";
}

TEST(EspAtModem, GetRange_LongUrl_HandedOverByHttpUrlCfg) {
  const std::string url = "https://ota.example.com:8443/api/v1/devices/" + std::string(150, 'd') +
                          "/packages/17/download";
  ScriptedModem m({{"AT+HTTPURLCFG=" + std::to_string(url.size()), "\r\nOK\r\n\r\n>", url.size(),
                    "\r\nSET OK\r\n"},
                   {"AT+HTTPCLIENT=2,0,\"\",,,2,\"Authorization: Bearer tok\",\"Range: bytes=0-3\"",
                    "+HTTPCLIENT:4,abcd\r\n\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  uint8_t buf[4];
  uint32_t total = 0;
  const Result<size_t> n = modem.GetRange(url.c_str(), "tok", 0, ByteSpan(buf), &total);
  ASSERT_TRUE(n.ok()) << n.status().name();
  EXPECT_EQ(Str(buf, n.value()), "abcd");
  EXPECT_EQ(m.raw_, url);
  for (const std::string& line : m.sent)
    EXPECT_LT(line.size() + 2, kAtCommandMax) << line;
}

TEST(EspAtModem, GetRange_UrlOrTokenBeyondTheModemsLimits_RefusedUnsent) {
  ScriptedModem m({});
  EspAtModem modem(m, Config(), FakeMillis);
  uint8_t buf[4];
  uint32_t total = 0;
  const std::string url = "https://h/" + std::string(kAtUrlMax, 'u');
  EXPECT_EQ(modem.GetRange(url.c_str(), "t", 0, ByteSpan(buf), &total).status().code(),
            StatusCode::kTooLarge);
  EXPECT_TRUE(m.sent.empty());
}

TEST(EspAtModem, ModemRestart_NextConnectRunsBeginFirst) {
  ScriptedModem m({{"AT", "\r\nOK\r\n"},
                   {"ATE0", "\r\nOK\r\n"},
                   {"AT+CIPSNTPCFG", "\r\nOK\r\n"},
                   {"AT+MQTTCLEAN", "\r\nERROR\r\n"},
                   {"AT+MQTTUSERCFG", "\r\nOK\r\n"},
                   {"AT+MQTTCONN", "\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  m.Push("\r\nets Jan  8 2013,rst cause:2\r\n\r\nready\r\n");
  char topic[16];
  uint8_t buf[16];
  EXPECT_EQ(modem.Receive(10, Span<char>(topic), ByteSpan(buf)).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(modem.restarted());
  ASSERT_TRUE(modem.Connect("c", "u", "p").ok());
  EXPECT_FALSE(modem.restarted());
  EXPECT_TRUE(m.done());
}

TEST(EspAtModem, OverlongLine_IsSkippedAndTheAnswerStillFound) {
  ScriptedModem m({{"AT+MQTTSUB", std::string(kAtLineMax * 3, 'z') + "\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  EXPECT_TRUE(modem.Subscribe("t").ok());
}

TEST(EspAtModem, Begin_ProbesUntilTheModemAnswers) {
  // The first probe meets a modem still booting (no answer); then echo off, SNTP on.
  ScriptedModem m({{"AT", "garbage\xff\r\nready\r\n"},
                   {"AT", "AT\r\n\r\nOK\r\n"},
                   {"ATE0", "ATE0\r\n\r\nOK\r\n"},
                   {"AT+CIPSNTPCFG=1,0,\"pool.ntp.org\"", "\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  ASSERT_TRUE(modem.Begin().ok());
  EXPECT_TRUE(m.done());
}

TEST(EspAtModem, Begin_JoinsWifiWhenConfigured) {
  ScriptedModem m(
      {{"AT", "\r\nOK\r\n"},
       {"ATE0", "\r\nOK\r\n"},
       {"AT+CWMODE=1", "\r\nOK\r\n"},
       {"AT+CWJAP=\"lab\\,2g\",\"secret\"", "WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n"},
       {"AT+CIPSNTPCFG", "\r\nOK\r\n"}});
  EspAtConfig c = Config();
  c.wifi_ssid = "lab,2g";
  c.wifi_password = "secret";
  EspAtModem modem(m, c, FakeMillis);
  ASSERT_TRUE(modem.Begin().ok());
}

TEST(EspAtModem, UtcHour_FromSntp_AndNotBeforeTheModemIsSynchronised) {
  ScriptedModem m({{"AT+CIPSNTPTIME?", "+CIPSNTPTIME:Wed Nov 25 17:50:26 2026\r\nOK\r\n"},
                   {"AT+CIPSNTPTIME?", "+CIPSNTPTIME:Thu Jan  1 00:00:08 1970\r\nOK\r\n"}});
  EspAtModem modem(m, Config(), FakeMillis);
  char hour[11];
  ASSERT_TRUE(modem.QueryUtcHour(hour).ok());
  EXPECT_STREQ(hour, "2026112517");
  EXPECT_EQ(modem.QueryUtcHour(hour).code(), StatusCode::kFailedPrecondition);
}

TEST(EspAtModem, AgentOverThePort_FirstPublishRefused_BacksOffBeforeReconnecting) {
  // The session comes up, but its first publish (the version report) fails: the agent must
  // wait before the next attempt instead of reconnecting at every turn.
  ScriptedModem m({{"AT+CIPSNTPTIME?", "+CIPSNTPTIME:Wed Nov 25 17:50:26 2026\r\nOK\r\n"},
                   {"AT+MQTTCLEAN", "\r\nERROR\r\n"},
                   {"AT+MQTTUSERCFG=0,3,\"fire_n1_0_0_2026112517\",\"fire_n1\"", "\r\nOK\r\n"},
                   {"AT+MQTTCONN", "\r\nOK\r\n"},
                   {"AT+MQTTSUB", "\r\nOK\r\n"},
                   {"AT+MQTTPUBRAW", "\r\nOK\r\n\r\n>", 0, ""}});
  EspAtModem modem(m, Config(), FakeMillis);
  sim::BoardFlash flash(kStm32f429Fire);
  Flash* const flashes[kFlashCount] = {&flash.internal, &flash.external};
  agent::AgentConfig ac;
  ac.device_id = "fire_n1";
  ac.secret = "s";
  agent::OtaAgent agent(ac, kStm32f429Fire, flashes, modem, modem, modem);
  ASSERT_TRUE(agent.Start("FOTAV1").ok());
  // The payload goes out at the prompt, and the modem never confirms it (a timeout).
  const Result<agent::AgentEvent> first = agent.Step(0);
  EXPECT_TRUE(first.ok()) << first.status().name();
  EXPECT_FALSE(agent.connected());
  const size_t sent = m.sent.size();
  const Result<agent::AgentEvent> second = agent.Step(0);
  EXPECT_TRUE(second.ok());
  EXPECT_EQ(m.sent.size(), sent) << "no reconnect at once: back-off";
}

TEST(EspAtModem, ParseSntpTime_AcceptsOnlyTheModemsFormat) {
  char out[11];
  ASSERT_TRUE(ParseSntpTime("Thu Aug  4 14:48:05 2016", out));
  EXPECT_STREQ(out, "2016080414");
  EXPECT_FALSE(ParseSntpTime("Thu Aug 04 24:48:05 2016", out));
  EXPECT_FALSE(ParseSntpTime("Thu Foo 04 14:48:05 2016", out));
  EXPECT_FALSE(ParseSntpTime("Thu Aug 04 14:48:05 16", out));
  EXPECT_FALSE(ParseSntpTime("", out));
}

}  // namespace
}  // namespace ota::port

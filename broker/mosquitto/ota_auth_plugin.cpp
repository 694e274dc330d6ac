// Mosquitto plugin (plugin API v5): devices log in by the IoTDA rules against the platform's
// credential store and may only use their own `$oc/devices/{id}/...` topics; the platform logs
// in with its own privileged identity. The broker reports each device connection and its end
// on `$ota/presence/{id}`, and stands in for IoTDA's implicit subscriptions: the platform's
// messages on a connected device's system down topics go to that device's connection only. The
// platform's control messages (`$ota/control/...`) are acted on here and delivered to no one.
// Device login verdicts are counted by reason and published to the platform on
// `$ota/stats/logins` from the broker's tick. The narrow boundary: five callbacks, six options
// (docs/spec/broker-auth.md).
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "ota/broker/control.hpp"
#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/broker/implicit_subscriptions.hpp"
#include "ota/broker/login_stats.hpp"
#include "ota/broker/presence.hpp"

namespace {

using ota::broker::ConnectVerdict;
using ota::broker::TopicAccess;

struct Plugin {
  mosquitto_plugin_id_t* id = nullptr;
  std::unique_ptr<ota::broker::CredentialStore> store;
  std::string platform_username = "ota-server";
  std::string platform_password;
  int window_hours = 1;
  ota::broker::PresenceTracker presence;        // accepted device connections, by client pointer
  ota::broker::ImplicitSubscriptions implicit;  // the same connections, by device
  std::unique_ptr<ota::broker::LoginStats> logins;  // device login verdicts, by reason
  int login_stats_interval_s = 10;

  bool IsPlatform(const char* username) const {
    return !platform_password.empty() && username != nullptr && platform_username == username;
  }
};

Plugin* g_plugin = nullptr;

const char* Safe(const char* s) {
  return s != nullptr ? s : "";
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Queues the event for every subscriber (QoS 1, not retained). The broker sends it from its
// main loop, in the order the events were queued. It takes the payload, which must come from
// its allocator, only when it accepts the message.
void PublishPresence(const ota::broker::PresenceEvent& event) {
  const std::string topic = ota::broker::PresenceTopic(event.device_id);
  const std::string payload = ota::broker::PresencePayload(event);
  void* buf = mosquitto_malloc(payload.size());
  if (buf == nullptr) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: out of memory for presence of %s",
                         event.device_id.c_str());
    return;
  }
  std::memcpy(buf, payload.data(), payload.size());
  const int rc = mosquitto_broker_publish(nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                          buf, 1, false, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_free(buf);
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: cannot publish presence of %s: %s",
                         event.device_id.c_str(), mosquitto_strerror(rc));
  }
}

// The end of the connection `client` (if it was an accepted device connection).
void ReportGone(Plugin* p, const mosquitto* client) {
  p->implicit.Disconnected(client);
  const std::optional<ota::broker::PresenceEvent> gone = p->presence.Disconnected(client, NowUs());
  if (gone) PublishPresence(*gone);
}

int OnBasicAuth(int /*event*/, void* event_data, void* user) {
  auto* p = static_cast<Plugin*>(user);
  auto* ed = static_cast<mosquitto_evt_basic_auth*>(event_data);
  const char* client_id = Safe(mosquitto_client_id(ed->client));
  const std::string username = Safe(ed->username);
  const std::string password = Safe(ed->password);
  // A client authenticates once, so no presence entry should exist for it; one that does
  // belonged to a connection that ended unseen and whose memory now holds this one: it has gone.
  ReportGone(p, ed->client);
  if (p->IsPlatform(username.c_str())) {
    if (ota::broker::SafeEqual(password, p->platform_password)) return MOSQ_ERR_SUCCESS;
    mosquitto_log_printf(MOSQ_LOG_WARNING, "ota-auth: refused platform login from %s",
                         Safe(mosquitto_client_address(ed->client)));
    return MOSQ_ERR_AUTH;
  }
  const ConnectVerdict v = ota::broker::CheckDeviceConnect(
      client_id, username, password, std::time(nullptr), p->window_hours,
      [&](const std::string& device) { return p->store->Lookup(device); });
  p->logins->Count(v);
  if (v == ConnectVerdict::kAccepted) {
    // Authentication made the username the device ID.
    p->implicit.Connected(ed->client, username, client_id);
    PublishPresence(p->presence.Connected(ed->client, username, NowUs()));
    return MOSQ_ERR_SUCCESS;
  }
  // The device ID is logged when the client ID names a valid one; never the password.
  const std::optional<ota::broker::ClientId> parsed = ota::broker::ParseClientId(client_id);
  mosquitto_log_printf(MOSQ_LOG_NOTICE, "ota-auth: refused device %s from %s: %s",
                       parsed ? parsed->device_id.c_str() : "(unparsable client id)",
                       Safe(mosquitto_client_address(ed->client)),
                       ota::broker::ConnectVerdictName(v));
  return MOSQ_ERR_AUTH;
}

int OnAclCheck(int /*event*/, void* event_data, void* user) {
  auto* p = static_cast<Plugin*>(user);
  auto* ed = static_cast<mosquitto_evt_acl_check*>(event_data);
  // Originals delivered by OnMessage are re-filed here: nobody, the platform included, gets them.
  if (ed->access == MOSQ_ACL_READ && Safe(ed->topic) == ota::broker::kRedirectSinkTopic) {
    return MOSQ_ERR_ACL_DENIED;
  }
  const char* raw_username = mosquitto_client_username(ed->client);
  if (p->IsPlatform(raw_username)) return MOSQ_ERR_SUCCESS;
  const std::string username = Safe(raw_username);
  TopicAccess access = TopicAccess::kReceive;
  switch (ed->access) {
    case MOSQ_ACL_WRITE:
      access = TopicAccess::kPublish;
      break;
    case MOSQ_ACL_SUBSCRIBE:
      access = TopicAccess::kSubscribe;
      break;
    case MOSQ_ACL_UNSUBSCRIBE:
      return MOSQ_ERR_SUCCESS;  // dropping a subscription never exposes anything
    default:
      break;
  }
  // Authentication made the username the device ID.
  if (ota::broker::DeviceTopicAllowed(username, Safe(ed->topic), access)) return MOSQ_ERR_SUCCESS;
  if (access != TopicAccess::kReceive) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "ota-auth: denied device %s %s on %s", username.c_str(),
                         access == TopicAccess::kPublish ? "publish" : "subscribe",
                         Safe(ed->topic));
  }
  return MOSQ_ERR_ACL_DENIED;
}

// A copy of the sink topic from the broker's allocator, or null when out of memory.
char* NewSinkTopic() {
  return mosquitto_strdup(std::string(ota::broker::kRedirectSinkTopic).c_str());
}

// Re-files the message under `sink` (from NewSinkTopic): Mosquitto still acknowledges it to its
// sender, but no subscription (a device's, the platform's) delivers it.
void Refile(mosquitto_evt_message* ed, char* sink) {
  // Mosquitto 2.0.11 takes a replaced topic without freeing the old one (plugin.c).
  mosquitto_free(ed->topic);
  ed->topic = sink;
  ed->retain = false;
}

// A control message from the platform (docs/spec/broker-auth.md, "Control messages"): acted on
// here and delivered to no one. A disconnect closes every connection logged in as the device
// (authentication made the username the device ID), without its will.
void OnControl(Plugin* p, mosquitto_evt_message* ed) {
  const std::string topic = Safe(ed->topic);
  const std::string_view payload(static_cast<const char*>(ed->payload),
                                 ed->payload != nullptr ? ed->payloadlen : 0);
  if (char* sink = NewSinkTopic()) {
    Refile(ed, sink);
  } else {
    mosquitto_log_printf(MOSQ_LOG_ERR,
                         "ota-auth: cannot sink the control message on %s (it routes normally)",
                         topic.c_str());
  }
  if (topic != ota::broker::kDisconnectTopic) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "ota-auth: unknown control topic %s", topic.c_str());
    return;
  }
  const std::optional<std::string> device =
      ota::broker::DisconnectTarget(payload, p->platform_username);
  if (!device) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "ota-auth: disconnect request for no valid device");
    return;
  }
  const int rc = mosquitto_kick_client_by_username(device->c_str(), false);
  mosquitto_log_printf(rc == MOSQ_ERR_SUCCESS ? MOSQ_LOG_NOTICE : MOSQ_LOG_ERR,
                       "ota-auth: disconnect device %s at the platform's request: %s",
                       device->c_str(), mosquitto_strerror(rc));
}

// Every PUBLISH a client sends, after its write ACL check. A platform message on a control topic
// is the broker's to act on (OnControl). A platform message on a connected device's implicit
// topic is queued for that device's connection alone (Mosquitto sends it from its main loop, by
// client ID, with no subscription and no ACL check), and the original is re-filed under the
// sink topic: Mosquitto still acknowledges it to the platform, but no subscription (the device's
// own, another connection's, the platform's) delivers it again. If the copy cannot be queued,
// the original routes normally.
int OnMessage(int /*event*/, void* event_data, void* user) {
  auto* p = static_cast<Plugin*>(user);
  auto* ed = static_cast<mosquitto_evt_message*>(event_data);
  const bool from_platform = p->IsPlatform(mosquitto_client_username(ed->client));
  // Only the platform may publish there (the ACL refuses devices before this event).
  if (from_platform && ota::broker::IsControlTopic(Safe(ed->topic))) {
    OnControl(p, ed);
    return MOSQ_ERR_SUCCESS;
  }
  const std::optional<ota::broker::Redirect> redirect =
      p->implicit.Route(from_platform, Safe(ed->topic), ed->retain);
  if (!redirect) return MOSQ_ERR_SUCCESS;
  void* copy = nullptr;
  if (ed->payloadlen > 0) {
    copy = mosquitto_malloc(ed->payloadlen);
    if (copy == nullptr) return MOSQ_ERR_SUCCESS;
    std::memcpy(copy, ed->payload, ed->payloadlen);
  }
  // Allocated before the copy is queued: once queued, the original must not route too.
  char* sink = NewSinkTopic();
  if (sink == nullptr) {
    mosquitto_free(copy);
    return MOSQ_ERR_SUCCESS;
  }
  // The implicit subscription is QoS 1: the copy goes at the lower of that and the message's.
  const int rc = mosquitto_broker_publish(redirect->client_id.c_str(), ed->topic,
                                          static_cast<int>(ed->payloadlen), copy,
                                          std::min<int>(ed->qos, 1), false, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_free(copy);
    mosquitto_free(sink);
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: cannot deliver %s to %s: %s", ed->topic,
                         redirect->client_id.c_str(), mosquitto_strerror(rc));
    return MOSQ_ERR_SUCCESS;
  }
  Refile(ed, sink);  // not retained: Route() redirects only messages that are not
  return MOSQ_ERR_SUCCESS;
}

// Fires for every connection that ends, accepted or not, including the old connection of a
// client ID another connection takes over (after the new login was accepted), and again for a
// persistent session's context when a new connection takes its session over.
int OnDisconnect(int /*event*/, void* event_data, void* user) {
  auto* p = static_cast<Plugin*>(user);
  auto* ed = static_cast<mosquitto_evt_disconnect*>(event_data);
  ReportGone(p, ed->client);
  return MOSQ_ERR_SUCCESS;
}

// The broker's main loop calls this on every pass (at least about once a second in 2.0.11). The
// cumulative login counts go out when they changed, at most every login_stats_interval_s,
// retained (a platform that subscribes later gets the latest at once), QoS 1.
int OnTick(int /*event*/, void* /*event_data*/, void* user) {
  auto* p = static_cast<Plugin*>(user);
  const int64_t now = std::time(nullptr);
  const std::optional<std::string> payload = p->logins->Due(now, p->login_stats_interval_s);
  if (!payload) return MOSQ_ERR_SUCCESS;
  void* buf = mosquitto_malloc(payload->size());
  if (buf == nullptr) return MOSQ_ERR_SUCCESS;  // tried again at the next tick
  std::memcpy(buf, payload->data(), payload->size());
  const std::string topic(ota::broker::kLoginStatsTopic);
  const int rc = mosquitto_broker_publish(nullptr, topic.c_str(), static_cast<int>(payload->size()),
                                          buf, 1, true, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_free(buf);
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: cannot publish login statistics: %s",
                         mosquitto_strerror(rc));
    return MOSQ_ERR_SUCCESS;
  }
  p->logins->Published(now);
  return MOSQ_ERR_SUCCESS;
}

bool ReadFirstLine(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, *out);
  while (!out->empty() && (out->back() == '\r' || out->back() == ' '))
    out->pop_back();
  return !out->empty();
}

}  // namespace

extern "C" {

int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                          struct mosquitto_opt* options, int option_count) {
  auto plugin = std::make_unique<Plugin>();
  plugin->id = identifier;
  std::string registry, key_file, error;
  for (int i = 0; i < option_count; ++i) {
    const std::string k = Safe(options[i].key);
    const std::string v = Safe(options[i].value);
    if (k == "registry") {
      registry = v;
    } else if (k == "secret_key") {
      key_file = v;
    } else if (k == "platform_username") {
      plugin->platform_username = v;
    } else if (k == "platform_password_file") {
      if (!ReadFirstLine(v, &plugin->platform_password)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: cannot read platform_password_file %s",
                             v.c_str());
        return MOSQ_ERR_INVAL;
      }
    } else if (k == "time_window_hours") {
      plugin->window_hours = std::atoi(v.c_str());
    } else if (k == "login_stats_interval_s") {
      plugin->login_stats_interval_s = std::atoi(v.c_str());
      if (plugin->login_stats_interval_s < 1 || plugin->login_stats_interval_s > 3600) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "ota-auth: login_stats_interval_s must be 1..3600 seconds, not %s",
                             v.c_str());
        return MOSQ_ERR_INVAL;
      }
    } else {
      mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: unknown option %s", k.c_str());
      return MOSQ_ERR_INVAL;
    }
  }
  if (registry.empty() || key_file.empty()) {
    mosquitto_log_printf(MOSQ_LOG_ERR,
                         "ota-auth: plugin_opt_registry and plugin_opt_secret_key "
                         "are required");
    return MOSQ_ERR_INVAL;
  }
  const std::optional<ota::broker::SecretBox> box =
      ota::broker::SecretBox::FromKeyFile(key_file, &error);
  if (!box) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: %s", error.c_str());
    return MOSQ_ERR_INVAL;
  }
  plugin->store = ota::broker::CredentialStore::Open(registry, false, *box, &error);
  if (!plugin->store) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: %s", error.c_str());
    return MOSQ_ERR_INVAL;
  }
  try {
    plugin->logins = std::make_unique<ota::broker::LoginStats>(ota::broker::NewBrokerInstanceId(),
                                                               std::time(nullptr));
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "ota-auth: %s", e.what());
    return MOSQ_ERR_UNKNOWN;
  }
  if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, OnMessage, nullptr, plugin.get()) !=
          MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_TICK, OnTick, nullptr, plugin.get()) !=
          MOSQ_ERR_SUCCESS) {
    return MOSQ_ERR_UNKNOWN;
  }
  mosquitto_log_printf(MOSQ_LOG_INFO, "ota-auth: devices from %s, platform user %s, instance %s",
                       registry.c_str(), plugin->platform_username.c_str(),
                       plugin->logins->instance_id().c_str());
  g_plugin = plugin.get();
  *userdata = plugin.release();
  return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt* /*options*/,
                             int /*option_count*/) {
  auto* plugin = static_cast<Plugin*>(userdata);
  if (plugin != nullptr) {
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr);
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr);
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr);
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_MESSAGE, OnMessage, nullptr);
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_TICK, OnTick, nullptr);
  }
  delete plugin;
  g_plugin = nullptr;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"

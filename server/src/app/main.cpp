// `ota-server`: the IoT platform (docs/server.md). `serve` runs it; `token`, `user` and
// `broker-config` work on its data directory; the other subcommands are REST clients.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "cli_client.hpp"
#include "ota/server/audit_log.hpp"
#include "ota/server/log.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/service.hpp"

namespace {

using nlohmann::json;
using ota::server::cli::Client;
using ota::server::cli::ClientOptions;
namespace cli = ota::server::cli;

struct TlsOptions {
  std::string cert, key, ca;
  std::vector<std::string> names;
  void Add(CLI::App* app) {
    app->add_option("--tls-cert", cert, "server certificate PEM (default: made in DATA/tls)");
    app->add_option("--tls-key", key, "its private key PEM");
    app->add_option("--tls-ca", ca, "the CA devices and tools check the certificate with");
    app->add_option("--tls-name", names,
                    "a DNS name or IP address the certificate made in DATA/tls must name besides "
                    "localhost and 127.0.0.1 (repeatable; it is made again if it lacks one)");
  }
  // Null when none is given; all three or none.
  const ota::server::TlsFiles* Files() {
    if (cert.empty() && key.empty() && ca.empty()) return nullptr;
    if (cert.empty() || key.empty() || ca.empty()) {
      throw std::runtime_error("--tls-cert, --tls-key and --tls-ca go together");
    }
    if (!names.empty()) {
      throw std::runtime_error(
          "--tls-name is for the certificate made in DATA/tls; with --tls-cert, that "
          "certificate must name the hosts itself");
    }
    files_ = {ca, cert, key};
    return &files_;
  }
  ota::server::TlsFiles files_;
};

// An audit row for a command run on this machine, by whoever may write DATA (actor cli), in the
// caller's transaction.
void RecordCliAudit(ota::server::Database& db, const std::string& route, const json& summary,
                    int status) {
  ota::server::AuditEntry e;
  e.at = std::time(nullptr);
  e.actor = "cli";
  e.method = "CLI";
  e.route = route;
  e.summary = summary;
  e.remote_addr = "local";
  e.status = status;
  ota::server::RecordAudit(db, e);
}

// `ota-server user create|list|delete|reset-password` on DATA's database (docs/server.md, "Users,
// roles and sessions"). A new password is printed once, alone on its line.
int UserCommand(const std::string& data, const std::string& verb, const std::string& name,
                const std::string& role) {
  using ota::server::Accounts;
  ota::server::Platform platform(data);
  Accounts& accounts = platform.accounts();
  if (verb == "list") {
    json out = json::array();
    for (const ota::server::UserRecord& u : accounts.ListUsers())
      out.push_back(u.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  ota::server::Transaction tx(platform.db());  // the change and its audit row, or neither
  std::string password;
  json summary = {{"username", name}};
  int status = 200;
  if (verb == "create") {
    password = Accounts::GeneratePassword();
    accounts.CreateUser(name, role, password);
    summary["role"] = role;
    status = 201;
  } else if (verb == "delete") {
    accounts.DeleteUser(name);
  } else {  // reset-password: every session of the user ends
    password = Accounts::GeneratePassword();
    accounts.SetPasswordHash(accounts.GetUser(name).user_id, Accounts::HashPassword(password));
  }
  RecordCliAudit(platform.db(), "ota-server user " + verb, summary, status);
  tx.Commit();
  if (!password.empty()) std::printf("%s\n", password.c_str());
  return 0;
}

int Serve(const std::string& data, ota::server::ServiceOptions options,
          std::string mqtt_password_file, TlsOptions& tls) {
  const std::string bad_url = ota::server::CheckPublicDownload(options);
  if (!bad_url.empty()) {
    ota::server::Log(ota::server::LogLevel::kError, bad_url);
    return cli::kExitUsage;
  }
  // The certificate made in DATA/tls also names the host in the download URL.
  const ota::server::TlsFiles* files = tls.Files();
  std::vector<std::string> names = tls.names;
  if (!ota::server::DownloadUrlHost(options).empty())
    names.push_back(ota::server::DownloadUrlHost(options));
  ota::server::Platform platform(data, files,
                                 files != nullptr ? std::vector<std::string>{} : names);
  if (options.mqtt_enabled) {
    if (mqtt_password_file.empty()) mqtt_password_file = platform.platform_password_path();
    std::ifstream in(mqtt_password_file);
    if (!std::getline(in, options.mqtt.password) || options.mqtt.password.empty()) {
      ota::server::Log(ota::server::LogLevel::kError, "no password in " + mqtt_password_file);
      return cli::kExitInput;
    }
  }
  // SIGINT/SIGTERM are taken by sigwait below, so no thread dies of them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ota::server::Service service(platform, options);
  std::string error;
  if (!service.Start(&error)) {
    ota::server::Log(ota::server::LogLevel::kError, error);
    return 1;
  }
  std::printf("ota-server: api=%s/api/v1 downloads=%s mqtt=%s ca=%s admin_token_file=%s\n",
              service.api().base_url().c_str(), service.api().download_base_url().c_str(),
              options.mqtt_enabled
                  ? (options.mqtt.host + ":" + std::to_string(options.mqtt.port)).c_str()
                  : "off",
              platform.tls().ca_cert.c_str(), (platform.data_dir() / "admin.token").c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("ota-server: stopping (signal %d)\n", sig);
  service.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ota-server: products, devices, packages and upgrade tasks for OTA fleets"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success; 1 the server refused (the reason follows); 2 bad command line; "
      "3 an input or the connection failed.");

  // serve
  std::string data = "ota-data";
  ota::server::ServiceOptions sopt;
  std::string mqtt_password_file;
  bool no_mqtt = false;
  CLI::App* serve = app.add_subcommand("serve", "Run the platform (HTTPS API, downloads, MQTT)");
  serve->add_option("--data", data, "data directory (database, blobs, keys, TLS files)");
  serve->add_option("--bind", sopt.http_host, "address the HTTPS API listens on");
  serve->add_option("--http-port", sopt.http_port, "operator API HTTPS port (0: any free port)");
  sopt.download_port = 8444;
  serve->add_option("--download-port", sopt.download_port,
                    "device download HTTPS port (0: any free port)");
  serve
      ->add_option("--download-workers", sopt.download_workers,
                   "threads serving downloads (each slow device holds one)")
      ->check(CLI::Range(1, 4096));
  serve->add_option("--public-host", sopt.public_host,
                    "host (name or address) devices reach the platform at: download URLs are "
                    "https://HOST:DOWNLOAD_PORT (needed with --bind 0.0.0.0 or ::)");
  serve->add_option("--public-download-url", sopt.public_download_url,
                    "base URL devices download from, https://HOST:PORT[/PATH] with the port "
                    "written out (default https://PUBLIC_HOST or BIND:DOWNLOAD_PORT)");
  serve->add_option("--mqtt-client-id", sopt.mqtt.client_id,
                    "the platform's persistent MQTT session (distinct per instance)");
  serve->add_option("--mqtt-host", sopt.mqtt.host, "broker address");
  serve->add_option("--mqtt-port", sopt.mqtt.port, "broker port");
  serve->add_option("--mqtt-username", sopt.mqtt.username, "the platform's broker identity");
  serve->add_option("--mqtt-password-file", mqtt_password_file,
                    "that identity's password (default DATA/platform.pw)");
  serve->add_option("--mqtt-ca", sopt.mqtt.ca_file, "CA file: TLS to the broker");
  serve->add_option("--share-group", sopt.mqtt.share_group,
                    "shared-subscription group of all instances (brokers that share "
                    "$-topics; not Mosquitto 2.0)");
  serve->add_flag("--no-mqtt", no_mqtt, "HTTPS only (no device protocol)");
  serve->add_flag("--metrics-public", sopt.metrics_public,
                  "serve GET /metrics without the operator token");
  std::string log_format = "text";
  serve->add_option("--log-format", log_format, "text (default) or json: one object per line")
      ->check(CLI::IsMember({"text", "json"}));
  TlsOptions tls;
  tls.Add(serve);

  std::string token_name;
  CLI::App* token = app.add_subcommand("token", "Create an operator API token (printed once)");
  token->add_option("--data", data, "data directory");
  token->add_option("name", token_name, "what the token is for (an admin token, local)");
  // The same over the API (an admin token): scoped, expiring tokens.
  std::string token_scope = "read";
  int64_t token_expires = 0, token_id = 0;
  CLI::App* tk_create = nullptr;
  CLI::App* tk_list = nullptr;
  CLI::App* tk_revoke = nullptr;

  // user: accounts for the web console, on this machine's data directory.
  std::string user_name, user_role = "admin";
  CLI::App* user = app.add_subcommand("user", "Operator user accounts (on the data directory)")
                       ->require_subcommand(1);
  CLI::App* u_create =
      user->add_subcommand("create", "Create a user with a random password (printed once)");
  u_create->add_option("name", user_name, "username: 1-64 of A-Z a-z 0-9 . _ @ -")->required();
  u_create->add_option("--role", user_role, "admin (default), operator or viewer")
      ->check(CLI::IsMember({"admin", "operator", "viewer"}));
  CLI::App* u_list = user->add_subcommand("list", "List users (never their passwords)");
  CLI::App* u_delete =
      user->add_subcommand("delete", "Delete a user and its sessions (not the last admin)");
  u_delete->add_option("name", user_name)->required();
  CLI::App* u_reset = user->add_subcommand(
      "reset-password", "Give a user a new random password (printed once; its sessions end)");
  u_reset->add_option("name", user_name)->required();
  for (CLI::App* c : {u_create, u_list, u_delete, u_reset})
    c->add_option("--data", data, "data directory");

  std::string plugin, bind = "127.0.0.1";
  // Huawei's device SDKs pick TLS by the port: 8883 with TLS, 1883 without.
  int mqtts_port = 8883, mqtt_port = 1883;
  CLI::App* bconf = app.add_subcommand(
      "broker-config", "Print a Mosquitto configuration for this platform's devices");
  bconf->add_option("--data", data, "data directory");
  bconf->add_option("--plugin", plugin, "path of ota_auth_plugin.so")->required();
  bconf->add_option("--mqtts-port", mqtts_port, "MQTT over TLS port for devices")
      ->capture_default_str();
  bconf->add_option("--mqtt-port", mqtt_port, "also plain MQTT on this port (0: none)")
      ->capture_default_str();
  bconf->add_option("--bind", bind, "address the listeners bind");
  tls.Add(bconf);

  // REST clients
  ClientOptions copt;
  auto client_cmd = [&](CLI::App* parent, const char* name, const char* what) {
    CLI::App* c = parent->add_subcommand(name, what);
    copt.Add(c);
    return c;
  };
  CLI::App* product = app.add_subcommand("product", "Products")->require_subcommand(1);
  std::string id, name, manufacturer, model_file, pem_file, node, secret, group, file;
  CLI::App* p_create = client_cmd(product, "create", "Create a product");
  p_create->add_option("--id", id, "product id (default: generated)");
  p_create->add_option("--name", name, "name")->required();
  p_create->add_option("--manufacturer", manufacturer, "manufacturer");
  p_create->add_option("--model", model_file, "product model JSON file");
  CLI::App* p_list = client_cmd(product, "list", "List products");
  CLI::App* p_show = client_cmd(product, "show", "Show a product");
  p_show->add_option("id", id)->required();
  bool may_downgrade = false;
  CLI::App* p_key = client_cmd(product, "add-key", "Allow a public key to sign its packages");
  p_key->add_option("id", id, "product id")->required();
  p_key->add_option("pub", pem_file, "PEM public key (ota keygen --pub)")->required();
  p_key->add_flag("--may-downgrade", may_downgrade, "the key may sign downgrades");
  std::string key_id;
  CLI::App* p_unkey = client_cmd(product, "remove-key", "The key no longer signs its packages");
  p_unkey->add_option("id", id, "product id")->required();
  p_unkey->add_option("key_id", key_id, "key id (hex, as product show lists it)")->required();

  CLI::App* device = app.add_subcommand("device", "Devices")->require_subcommand(1);
  CLI::App* d_create = client_cmd(device, "create", "Register a device (prints its secret)");
  d_create->add_option("product", id, "product id")->required();
  d_create->add_option("node", node, "node id")->required();
  std::string device_id;
  d_create->add_option("--id", device_id, "device id (default PRODUCT_NODE)");
  d_create->add_option("--secret", secret, "secret (default: generated)");
  std::string gateway;
  d_create->add_option("--gateway", gateway,
                       "register a sub-device of this gateway (no secret, never logs in)");
  CLI::App* d_subs = client_cmd(device, "sub-devices", "List a gateway's sub-devices");
  d_subs->add_option("id", device_id)->required();
  CLI::App* d_list = client_cmd(device, "list", "List devices");
  d_list->add_option("--product", id, "only this product");
  d_list->add_option("--group", group, "only this group");
  CLI::App* d_show = client_cmd(device, "show", "Show a device");
  d_show->add_option("id", device_id)->required();
  CLI::App* d_enable = client_cmd(device, "enable", "Enable a device");
  d_enable->add_option("id", device_id)->required();
  CLI::App* d_disable = client_cmd(device, "disable", "Disable a device (refused at login)");
  d_disable->add_option("id", device_id)->required();
  CLI::App* d_group = client_cmd(device, "add-group", "Put a device in a group");
  d_group->add_option("id", device_id)->required();
  d_group->add_option("group", group)->required();
  CLI::App* d_ungroup = client_cmd(device, "remove-group", "Take a device out of a group");
  d_ungroup->add_option("id", device_id)->required();
  d_ungroup->add_option("group", group)->required();
  CLI::App* d_delete = client_cmd(device, "delete", "Delete a device (refused in an open task)");
  d_delete->add_option("id", device_id)->required();
  CLI::App* d_rotate =
      client_cmd(device, "rotate-secret", "Give a device a new secret (prints it; the old fails)");
  d_rotate->add_option("id", device_id)->required();
  d_rotate->add_option("--secret", secret, "secret (default: generated)");
  CLI::App* d_props = client_cmd(device, "properties", "Latest reported properties");
  d_props->add_option("id", device_id)->required();
  CLI::App* d_logs = client_cmd(device, "logs", "The device's newest log lines ($log)");
  d_logs->add_option("id", device_id)->required();

  // Requests to devices (docs/server.md, "Requests to devices").
  std::string service, command_name, json_arg, request_id, request_kind;
  int req_timeout = 20;
  int64_t limit = 50, offset = 0;
  bool content_json = false;
  CLI::App* d_command =
      client_cmd(device, "command", "Send a command and wait for the answer (exit 0: answered)");
  d_command->add_option("id", device_id)->required();
  d_command->add_option("--service", service, "service_id")->required();
  d_command->add_option("--name", command_name, "command_name")->required();
  d_command->add_option("--paras", json_arg, "paras, a JSON object");
  d_command->add_option("--timeout", req_timeout, "seconds to wait (1..30, default 20)");
  CLI::App* d_set =
      client_cmd(device, "set-properties", "Set properties of one service and wait for the answer");
  d_set->add_option("id", device_id)->required();
  d_set->add_option("--service", service, "service_id")->required();
  d_set->add_option("--properties", json_arg, "a JSON object: name -> value")->required();
  d_set->add_option("--timeout", req_timeout, "seconds to wait (1..30, default 20)");
  CLI::App* d_get = client_cmd(device, "get-properties",
                               "Ask a device for its properties now (stored as a report)");
  d_get->add_option("id", device_id)->required();
  d_get->add_option("--service", service, "only this service");
  d_get->add_option("--timeout", req_timeout, "seconds to wait (1..30, default 20)");
  CLI::App* d_message = client_cmd(device, "message", "Send a message down (asynchronous)");
  d_message->add_option("id", device_id)->required();
  d_message->add_option("content", json_arg, "the content (text)")->required();
  d_message->add_flag("--json", content_json, "the content is JSON, sent as such");
  d_message->add_option("--name", command_name, "the message's name");
  CLI::App* d_requests =
      client_cmd(device, "requests", "Requests sent to a device and their results, latest first");
  d_requests->add_option("id", device_id)->required();
  d_requests->add_option("--kind", request_kind,
                         "command, properties_set, properties_get or message");
  d_requests->add_option("--limit", limit, "at most this many (1..500)");
  d_requests->add_option("--offset", offset, "skip this many");
  CLI::App* d_commands = client_cmd(device, "commands", "Commands sent and their results");
  d_commands->add_option("id", device_id)->required();
  d_commands->add_option("--limit", limit, "at most this many (1..500)");
  d_commands->add_option("--offset", offset, "skip this many");
  CLI::App* d_messages = client_cmd(device, "messages", "Messages sent down and their status");
  d_messages->add_option("id", device_id)->required();
  d_messages->add_option("--limit", limit, "at most this many (1..500)");
  d_messages->add_option("--offset", offset, "skip this many");
  CLI::App* d_request = client_cmd(device, "request", "One request and its result");
  d_request->add_option("id", device_id)->required();
  d_request->add_option("request_id", request_id)->required();

  CLI::App* package = app.add_subcommand("package", "Packages")->require_subcommand(1);
  CLI::App* k_upload = client_cmd(package, "upload", "Upload a signed package");
  k_upload->add_option("product", id, "product id")->required();
  k_upload->add_option("file", file, "package file (ota pack)")->required();
  std::string sw_version, signature_file;
  k_upload->add_option("--software", sw_version,
                       "a software (SOTA) package of this version: any file, with --signature");
  k_upload->add_option("--signature", signature_file,
                       "DER signature of the file (openssl dgst -sha256 -sign KEY.pem)");
  CLI::App* k_list = client_cmd(package, "list", "List packages");
  k_list->add_option("--product", id, "only this product");
  int64_t delete_package = 0;
  CLI::App* k_delete = client_cmd(package, "delete", "Delete a package (refused in an open task)");
  k_delete->add_option("id", delete_package)->required();
  tk_create = client_cmd(token, "create", "Create a scoped API token (prints it once)");
  tk_create->add_option("name", token_name, "what the token is for")->required();
  tk_create
      ->add_option("--scope", token_scope,
                   "read (default), write, admin or broker (only POST /broker/v1/*)")
      ->check(CLI::IsMember({"read", "write", "admin", "broker"}));
  tk_create->add_option("--expires-in", token_expires, "seconds (default: never)");
  tk_list = client_cmd(token, "list", "List API tokens (never the tokens themselves)");
  tk_revoke = client_cmd(token, "revoke", "Revoke an API token at once");
  tk_revoke->add_option("id", token_id)->required();

  CLI::App* task = app.add_subcommand("task", "Upgrade tasks")->require_subcommand(1);
  std::string version;
  int64_t package_id = 0, task_id = 0;
  std::vector<std::string> devices, groups;
  bool all = false;
  int retries = 0, retry_interval = 300, timeout_s = 600, rate = 0, threshold = 100,
      resend_interval = 60;
  int64_t deadline_s = 0;
  std::vector<std::string> waves;
  bool supersede = false;
  std::string reason, kind = "firmware";
  CLI::App* t_create = client_cmd(task, "create", "Create an upgrade task");
  t_create->add_option("--kind", kind, "firmware (default) or software (SOTA)")
      ->check(CLI::IsMember({"firmware", "software"}));
  t_create->add_option("product", id, "product id")->required();
  t_create->add_option("--version", version, "target version");
  t_create->add_option("--package", package_id, "exactly this package");
  t_create->add_option("--device", devices, "target device (repeatable)");
  t_create->add_option("--group", groups, "target group (repeatable)");
  t_create->add_flag("--all", all, "every device of the product");
  t_create->add_option("--retries", retries, "retries after a failure (0..5)");
  t_create->add_option("--retry-interval", retry_interval, "seconds between retries");
  t_create->add_option("--deadline", deadline_s, "seconds from now (default a day)");
  t_create->add_option("--wave", waves,
                       "a rollout wave, in order (repeatable): group:NAME, PERCENT% or "
                       "devices:ID,ID; the devices left form a last wave");
  t_create->add_option("--rate", rate, "firmware_upgrade commands per minute (0: no limit)");
  t_create->add_option("--resend-interval", resend_interval,
                       "seconds without news from an upgrading device before its command is "
                       "sent again (default 60)");
  t_create->add_option("--failure-threshold", threshold,
                       "percent of a wave that may fail before the task pauses (default 100)");
  t_create->add_flag("--supersede", supersede,
                     "take devices from other open tasks (default: refuse them)");
  CLI::App* t_list = client_cmd(task, "list", "List tasks");
  CLI::App* t_show = client_cmd(task, "show", "Show a task and its devices");
  t_show->add_option("id", task_id)->required();
  CLI::App* t_stop = client_cmd(task, "stop", "Cancel a task (its open devices are Stopped)");
  t_stop->add_option("id", task_id)->required();
  CLI::App* t_cancel = client_cmd(task, "cancel", "The same as stop");
  t_cancel->add_option("id", task_id)->required();
  CLI::App* t_pause = client_cmd(task, "pause", "Pause a task: no new upgrade commands");
  t_pause->add_option("id", task_id)->required();
  t_pause->add_option("--reason", reason, "shown with the task");
  CLI::App* t_resume = client_cmd(task, "resume", "Resume a paused task");
  t_resume->add_option("id", task_id)->required();
  CLI::App* t_wait = client_cmd(task, "wait", "Wait until a task ends (exit 0 on Success)");
  t_wait->add_option("id", task_id)->required();
  t_wait->add_option("--timeout", timeout_s, "seconds");

  int64_t audit_limit = 100, audit_since = 0;
  CLI::App* audit = client_cmd(&app, "audit", "Operator actions recorded, latest first");
  audit->add_option("--limit", audit_limit, "at most this many (1..1000, default 100)");
  audit->add_option("--since", audit_since, "only from this time on (epoch seconds)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : cli::kExitUsage;
  }

  try {
    if (serve->parsed()) {
      sopt.mqtt_enabled = !no_mqtt;
      if (log_format == "json") ota::server::SetLogFormat(ota::server::LogFormat::kJson);
      return Serve(data, sopt, mqtt_password_file, tls);
    }
    if (token->parsed() && token->get_subcommands().empty()) {
      if (token_name.empty()) throw std::runtime_error("token: a name, or create|list|revoke");
      ota::server::Platform platform(data);
      ota::server::Transaction tx(platform.db());  // the token and its audit row, or neither
      const std::string created = platform.CreateApiToken(token_name);
      RecordCliAudit(platform.db(), "ota-server token", {{"name", token_name}}, 201);
      tx.Commit();
      std::printf("%s\n", created.c_str());
      return 0;
    }
    for (CLI::App* c : {u_create, u_list, u_delete, u_reset}) {
      if (c->parsed()) return UserCommand(data, c->get_name(), user_name, user_role);
    }
    if (bconf->parsed()) {
      ota::server::Platform platform(data, tls.Files(), tls.names);
      std::printf(
          "%s",
          platform.MosquittoConfig(std::filesystem::absolute(plugin), mqtts_port, mqtt_port, bind)
              .c_str());
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-server: %s\n", e.what());
    return 1;
  }

  const Client c(copt);
  std::string error;
  if (p_create->parsed()) {
    json body = {{"name", name}, {"manufacturer", manufacturer}};
    if (!id.empty()) body["product_id"] = id;
    if (!model_file.empty()) {
      std::optional<json> m = cli::ReadJsonFile(model_file, &error);
      if (!m) return c.Fail(cli::kExitInput, error);
      body["model"] = *m;
    }
    return c.Print("POST", "/api/v1/products", body);
  }
  if (p_list->parsed()) return c.Print("GET", "/api/v1/products", nullptr);
  if (p_unkey->parsed()) {
    return c.Print("DELETE", "/api/v1/products/" + id + "/keys/" + key_id, nullptr);
  }
  if (d_delete->parsed()) return c.Print("DELETE", "/api/v1/devices/" + device_id, nullptr);
  if (d_ungroup->parsed()) {
    return c.Print("DELETE", "/api/v1/devices/" + device_id + "/groups/" + group, nullptr);
  }
  if (d_rotate->parsed()) {
    json body = json::object();
    if (!secret.empty()) body["secret"] = secret;
    return c.Print("POST", "/api/v1/devices/" + device_id + "/secret", body);
  }
  if (k_delete->parsed()) {
    return c.Print("DELETE", "/api/v1/packages/" + std::to_string(delete_package), nullptr);
  }
  if (tk_create->parsed()) {
    return c.Print("POST", "/api/v1/tokens",
                   {{"name", token_name}, {"scope", token_scope}, {"expires_in_s", token_expires}});
  }
  if (tk_list->parsed()) return c.Print("GET", "/api/v1/tokens", nullptr);
  if (tk_revoke->parsed()) {
    return c.Print("DELETE", "/api/v1/tokens/" + std::to_string(token_id), nullptr);
  }
  if (p_show->parsed()) return c.Print("GET", "/api/v1/products/" + id, nullptr);
  if (p_key->parsed()) {
    std::optional<std::string> pem = cli::ReadTextFile(pem_file, &error);
    if (!pem) return c.Fail(cli::kExitInput, error);
    return c.Print("POST", "/api/v1/products/" + id + "/keys",
                   {{"public_pem", *pem}, {"may_downgrade", may_downgrade}});
  }
  if (d_create->parsed()) {
    json body = {{"product_id", id}, {"node_id", node}};
    if (!device_id.empty()) body["device_id"] = device_id;
    if (!secret.empty()) body["secret"] = secret;
    if (!gateway.empty()) body["gateway_id"] = gateway;
    return c.Print("POST", "/api/v1/devices", body);
  }
  if (d_subs->parsed()) {
    return c.Print("GET", "/api/v1/devices/" + device_id + "/sub-devices", nullptr);
  }
  if (d_list->parsed()) {
    return c.Print("GET", "/api/v1/devices?product_id=" + id + "&group=" + group, nullptr);
  }
  if (d_show->parsed()) return c.Print("GET", "/api/v1/devices/" + device_id, nullptr);
  if (d_enable->parsed() || d_disable->parsed()) {
    return c.Print("PATCH", "/api/v1/devices/" + device_id, {{"enabled", d_enable->parsed()}});
  }
  if (d_group->parsed()) {
    return c.Print("POST", "/api/v1/devices/" + device_id + "/groups", {{"group", group}});
  }
  if (d_props->parsed()) {
    return c.Print("GET", "/api/v1/devices/" + device_id + "/properties", nullptr);
  }
  if (d_logs->parsed()) return c.Print("GET", "/api/v1/devices/" + device_id + "/logs", nullptr);
  if (d_command->parsed() || d_set->parsed() || (d_message->parsed() && content_json)) {
    std::optional<json> v = json_arg.empty() ? json::object()
                                             : cli::ParseJsonArg(d_command->parsed() ? "--paras"
                                                                 : d_set->parsed() ? "--properties"
                                                                                   : "content",
                                                                 json_arg, &error);
    if (!v) return c.Fail(cli::kExitUsage, error);
    const std::string path = "/api/v1/devices/" + device_id;
    if (d_command->parsed()) {
      return c.DeviceRequest("POST", path + "/commands",
                             {{"service_id", service},
                              {"command_name", command_name},
                              {"paras", *v},
                              {"timeout_s", req_timeout}});
    }
    if (d_set->parsed()) {
      return c.DeviceRequest("PUT", path + "/properties",
                             {{"services", {{{"service_id", service}, {"properties", *v}}}},
                              {"timeout_s", req_timeout}});
    }
    json body = {{"content", *v}};
    if (!command_name.empty()) body["name"] = command_name;
    return c.DeviceRequest("POST", path + "/messages", body);
  }
  if (d_message->parsed()) {
    json body = {{"content", json_arg}};
    if (!command_name.empty()) body["name"] = command_name;
    return c.DeviceRequest("POST", "/api/v1/devices/" + device_id + "/messages", body);
  }
  if (d_get->parsed()) {
    json body = {{"timeout_s", req_timeout}};
    if (!service.empty()) body["service_id"] = service;
    return c.DeviceRequest("POST", "/api/v1/devices/" + device_id + "/properties/get", body);
  }
  if (d_requests->parsed() || d_commands->parsed() || d_messages->parsed()) {
    const std::string what = d_commands->parsed()   ? "commands?"
                             : d_messages->parsed() ? "messages?"
                                                    : "requests?kind=" + request_kind + "&";
    return c.Print("GET",
                   "/api/v1/devices/" + device_id + "/" + what + "limit=" + std::to_string(limit) +
                       "&offset=" + std::to_string(offset),
                   nullptr);
  }
  if (d_request->parsed()) {
    return c.Print("GET", "/api/v1/devices/" + device_id + "/requests/" + request_id, nullptr);
  }
  if (k_upload->parsed()) {
    if (sw_version.empty() != signature_file.empty()) {
      return c.Fail(cli::kExitUsage, "--software and --signature go together");
    }
    return c.Upload(id, file, sw_version, signature_file);
  }
  if (k_list->parsed()) return c.Print("GET", "/api/v1/packages?product_id=" + id, nullptr);
  if (t_create->parsed()) {
    json body = {
        {"product_id", id},     {"devices", devices},     {"groups", groups},
        {"whole_product", all}, {"retry_count", retries}, {"retry_interval", retry_interval},
        {"kind", kind}};
    if (!version.empty()) body["target_version"] = version;
    if (package_id != 0) body["package_id"] = package_id;
    if (deadline_s != 0) body["deadline"] = static_cast<int64_t>(std::time(nullptr)) + deadline_s;
    if (supersede) body["supersede"] = true;
    body["resend_interval"] = resend_interval;
    if (!waves.empty() || rate != 0 || threshold != 100) {
      json ro = {{"rate_per_minute", rate}, {"failure_threshold_percent", threshold}};
      json list = json::array();
      for (const std::string& w : waves) {
        const std::optional<json> wave = cli::ParseWave(w, &error);
        if (!wave) return c.Fail(cli::kExitUsage, error);
        list.push_back(*wave);
      }
      ro["waves"] = list;
      body["rollout"] = ro;
    }
    return c.Print("POST", "/api/v1/tasks", body);
  }
  if (t_list->parsed()) return c.Print("GET", "/api/v1/tasks", nullptr);
  if (t_show->parsed()) return c.Print("GET", "/api/v1/tasks/" + std::to_string(task_id), nullptr);
  if (t_stop->parsed() || t_cancel->parsed()) {
    return c.Print("POST", "/api/v1/tasks/" + std::to_string(task_id) + "/cancel", nullptr);
  }
  if (t_pause->parsed()) {
    return c.Print("POST", "/api/v1/tasks/" + std::to_string(task_id) + "/pause",
                   {{"reason", reason}});
  }
  if (t_resume->parsed()) {
    return c.Print("POST", "/api/v1/tasks/" + std::to_string(task_id) + "/resume", nullptr);
  }
  if (t_wait->parsed()) return c.WaitTask(task_id, timeout_s);
  if (audit->parsed()) {
    return c.Print("GET",
                   "/api/v1/audit?limit=" + std::to_string(audit_limit) +
                       "&since=" + std::to_string(audit_since),
                   nullptr);
  }
  return cli::kExitUsage;
}

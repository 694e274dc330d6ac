// `ota-server`: the IoT platform (docs/server.md).
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "ota/server/platform.hpp"
#include "ota/server/service.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ota-server: products, devices, packages and upgrade tasks for OTA fleets"};
  app.require_subcommand(1);
  std::string data = "ota-data";
  ota::server::ServiceOptions options;
  std::string mqtt_password_file;
  bool no_mqtt = false;
  CLI::App* serve = app.add_subcommand("serve", "Run the platform (HTTPS API, downloads, MQTT)");
  serve->add_option("--data", data, "data directory (database, blobs, keys, TLS files)");
  serve->add_option("--bind", options.http_host, "address the HTTPS API listens on");
  serve->add_option("--http-port", options.http_port, "HTTPS port (0: any free port)");
  serve->add_option("--mqtt-host", options.mqtt.host, "broker address");
  serve->add_option("--mqtt-port", options.mqtt.port, "broker port");
  serve->add_option("--mqtt-username", options.mqtt.username, "the platform's broker identity");
  serve->add_option("--mqtt-password-file", mqtt_password_file,
                    "file whose first line is that identity's password");
  serve->add_option("--mqtt-ca", options.mqtt.ca_file, "CA file: TLS to the broker");
  serve->add_option("--share-group", options.mqtt.share_group,
                    "shared-subscription group of all instances (brokers that share "
                    "$-topics; not Mosquitto 2.0)");
  serve->add_flag("--no-mqtt", no_mqtt, "HTTPS only (no device protocol)");

  std::string token_name;
  CLI::App* token = app.add_subcommand("token", "Create an operator API token (printed once)");
  token->add_option("--data", data, "data directory");
  token->add_option("name", token_name, "what the token is for")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    ota::server::Platform platform(data);
    if (token->parsed()) {
      std::printf("%s\n", platform.CreateApiToken(token_name).c_str());
      return 0;
    }
    options.mqtt_enabled = !no_mqtt;
    if (options.mqtt_enabled) {
      std::ifstream in(mqtt_password_file);
      if (mqtt_password_file.empty() || !std::getline(in, options.mqtt.password) ||
          options.mqtt.password.empty()) {
        std::fprintf(stderr,
                     "ota-server: --mqtt-password-file (first line: the password) is "
                     "required unless --no-mqtt\n");
        return 2;
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
      std::fprintf(stderr, "ota-server: %s\n", error.c_str());
      return 1;
    }
    std::printf("ota-server: api=%s/api/v1 mqtt=%s ca=%s admin_token_file=%s\n",
                service.api().base_url().c_str(),
                options.mqtt_enabled
                    ? (options.mqtt.host + ":" + std::to_string(options.mqtt.port)).c_str()
                    : "off",
                platform.tls().ca_cert.c_str(), (platform.data_dir() / "admin.token").c_str());
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    std::printf("ota-server: stopping (signal %d)\n", sig);
    service.Stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-server: %s\n", e.what());
    return 1;
  }
  return 0;
}

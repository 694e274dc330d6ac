// `ota-server`: the IoT platform (docs/server.md).
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <thread>

#include "ota/server/http_api.hpp"
#include "ota/server/platform.hpp"

namespace {

ota::server::HttpApi* g_api = nullptr;

void OnSignal(int) {
  if (g_api != nullptr) g_api->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ota-server: products, devices, packages and upgrade tasks for OTA fleets"};
  app.require_subcommand(1);
  std::string data = "ota-data";
  std::string host = "127.0.0.1";
  int http_port = 8443;
  CLI::App* serve = app.add_subcommand("serve", "Run the platform (HTTPS API and downloads)");
  serve->add_option("--data", data, "data directory (database, blobs, keys, TLS files)");
  serve->add_option("--bind", host, "address to listen on");
  serve->add_option("--http-port", http_port, "HTTPS port (0: any free port)");

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
    ota::server::HttpApi api(platform);
    const int port = api.Bind(host, http_port);
    if (port < 0) {
      std::fprintf(stderr, "ota-server: cannot listen on %s:%d\n", host.c_str(), http_port);
      return 1;
    }
    g_api = &api;
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::printf("ota-server: api=%s/api/v1 ca=%s admin_token_file=%s\n", api.base_url().c_str(),
                platform.tls().ca_cert.c_str(), (platform.data_dir() / "admin.token").c_str());
    std::fflush(stdout);
    api.Serve();
    g_api = nullptr;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-server: %s\n", e.what());
    return 1;
  }
  return 0;
}

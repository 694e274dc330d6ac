// Platform figures on this machine, each against a peer measured in the same run:
// - connect rate: devices logging in through Mosquitto with the ota auth plugin, vs the same
//   broker with its own password_file (sequential connects, one client at a time);
// - property reports the server ingests into SQLite per second (QoS 1, one device);
// - HTTPS download throughput of a 512 KB package with a download token, vs plain HTTP of the
//   same bytes from the same library.
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "mosquitto_process.hpp"
#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/service.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Fail(const char* what) {
  std::fprintf(stderr, "platform-bench: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ota;  // NOLINT: a benchmark's main
  const int devices = argc > 1 ? std::atoi(argv[1]) : 500;
  char tmpl[] = "/tmp/ota-platform-bench.XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(tmpl);
  int rc = 0;
  {
    server::Platform platform(dir / "data");
    platform.registry().CreateProduct("fire", "FIRE", "", "MQTT",
                                      json::parse(R"({"services":[{"service_id":"DeviceStatus",)"
                                                  R"("properties":[{"name":"radioValue",)"
                                                  R"("type":"int"}]}]})"));
    std::ofstream plain(dir / "passwd");
    for (int i = 0; i < devices; ++i) {
      const std::string node = "n" + std::to_string(i);
      platform.registry().CreateDevice("fire", node, "", "secret-" + node);
      plain << "fire_" << node << ":" << broker::IotdaPassword("secret-" + node, testing::UtcHour())
            << "\n";
    }
    plain.close();
    if (std::system(("mosquitto_passwd -U " + (dir / "passwd").string()).c_str()) != 0) {
      return Fail("mosquitto_passwd failed");
    }

    std::filesystem::create_directories(dir / "plugin");
    std::filesystem::create_directories(dir / "peer");
    testing::MosquittoProcess with_plugin(
        dir / "plugin",
        {std::string("plugin ") + OTA_AUTH_PLUGIN,
         "plugin_opt_registry " + platform.database_path().string(),
         "plugin_opt_secret_key " + platform.secret_key_path().string(),
         "plugin_opt_platform_password_file " + platform.platform_password_path().string(),
         "max_queued_messages 100000"});
    testing::MosquittoProcess peer(
        dir / "peer", {"password_file " + (dir / "passwd").string(), "max_queued_messages 100000"});
    if (!with_plugin.running() || !peer.running()) return Fail("mosquitto did not start");

    auto connect_all = [&](int port) {
      const auto start = Clock::now();
      int ok = 0;
      for (int i = 0; i < devices; ++i) {
        const std::string id = "fire_n" + std::to_string(i);
        testing::MqttTestClient c(id + "_0_1_" + testing::UtcHour());
        ok += c.Connect(
                  port, id,
                  broker::IotdaPassword("secret-n" + std::to_string(i), testing::UtcHour())) == 0;
      }
      return std::make_pair(ok, static_cast<double>(devices) / Seconds(start));
    };
    const auto [ok_plugin, rate_plugin] = connect_all(with_plugin.port());
    const auto [ok_peer, rate_peer] = connect_all(peer.port());
    if (ok_plugin != devices || ok_peer != devices) return Fail("a device could not connect");
    std::printf(
        "platform: connect devices=%d plugin_per_s=%.0f password_file_per_s=%.0f ratio=%.2f\n",
        devices, rate_plugin, rate_peer, rate_plugin / rate_peer);

    // Property reports through the running server.
    std::string password;
    std::ifstream(platform.platform_password_path()) >> password;
    server::ServiceOptions o;
    o.http_port = 0;
    o.mqtt.port = with_plugin.port();
    o.mqtt.password = password;
    server::Service service(platform, o);
    std::string error;
    if (!service.Start(&error)) return Fail(error.c_str());
    constexpr int kReports = 2000;
    testing::MqttTestClient dev("fire_n0_0_0_" + testing::UtcHour());
    if (dev.Connect(with_plugin.port(), "fire_n0",
                    broker::IotdaPassword("secret-n0", testing::UtcHour())) != 0) {
      return Fail("device connect");
    }
    const auto start = Clock::now();
    int failed = 0;
    for (int i = 0; i < kReports; ++i) {
      failed +=
          !dev.Publish("$oc/devices/fire_n0/sys/properties/report",
                       R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":)" +
                           std::to_string(i) + "}}]}");
    }
    if (failed != 0) return Fail("a device publish was not acknowledged");
    // Until the count stops growing for a second (a report the broker dropped never comes).
    int64_t stored = 0;
    double last_change = 0;
    while (Seconds(start) < 60 && stored < kReports && Seconds(start) - last_change < 1.0) {
      int64_t now_stored = 0;
      {
        std::lock_guard<std::mutex> g(platform.lock());
        now_stored = platform.registry().Counter("property_reports");
      }
      if (now_stored != stored) {
        stored = now_stored;
        last_change = Seconds(start);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::printf("platform: property_reports sent=%d stored=%lld stored_per_s=%.0f\n", kReports,
                static_cast<long long>(stored), static_cast<double>(stored) / last_change);

    // Downloads: a 512 KB package over HTTPS with a token, vs plain HTTP of the same bytes.
    testing::TestKey key;
    platform.registry().AddProductKey("fire", host::PublicKeyPem(key.pkey()), false);
    const uint32_t load =
        kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset;
    host::PackageSpec spec;
    spec.version = "FOTAV2";
    spec.codec = CodecId::kStored;
    spec.image = testing::MakeTestImage("FOTAV2", 512 * 1024 - 1024, load, 9);
    const std::vector<uint8_t> pkg = testing::MakePackage(spec, &key);
    server::PackageRecord rec;
    {
      std::lock_guard<std::mutex> g(platform.lock());
      rec = platform.packages().Upload("fire", pkg, "big.bin");
    }
    const json grant = server::DownloadGrant(platform, service.api().base_url(), "fire_n0", rec,
                                             std::time(nullptr) + 600);
    httplib::SSLClient https("127.0.0.1", service.http_port());
    https.set_ca_cert_path(platform.tls().ca_cert.c_str());
    https.enable_server_certificate_verification(true);
    https.set_bearer_token_auth(grant["access_token"].get<std::string>().c_str());
    const std::string path = "/download/packages/" + std::to_string(rec.package_id);
    constexpr int kDownloads = 40;
    auto t0 = Clock::now();
    for (int i = 0; i < kDownloads; ++i) {
      auto r = https.Get(path.c_str());
      if (!r || r->status != 200 || r->body.size() != pkg.size()) return Fail("download");
    }
    const double https_mb = kDownloads * static_cast<double>(pkg.size()) / 1e6 / Seconds(t0);

    httplib::Server plain_server;
    const std::string body(pkg.begin(), pkg.end());
    plain_server.Get("/f", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/octet-stream");
    });
    const int plain_port = plain_server.bind_to_any_port("127.0.0.1");
    std::thread plain_thread([&] { plain_server.listen_after_bind(); });
    httplib::Client http("127.0.0.1", plain_port);
    t0 = Clock::now();
    for (int i = 0; i < kDownloads; ++i) {
      auto r = http.Get("/f");
      if (!r || r->body.size() != pkg.size()) return Fail("plain download");
    }
    const double http_mb = kDownloads * static_cast<double>(pkg.size()) / 1e6 / Seconds(t0);
    plain_server.stop();
    plain_thread.join();
    std::printf(
        "platform: download package=%zu https_token_mb_s=%.1f plain_http_mb_s=%.1f ratio=%.2f\n",
        pkg.size(), https_mb, http_mb, https_mb / http_mb);
    service.Stop();
  }
  std::filesystem::remove_all(dir);
  return rc;
}

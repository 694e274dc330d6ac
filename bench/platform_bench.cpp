// Platform figures on this machine, each against a peer measured in the same run, with many
// clients at once (docs/server.md, "Figures"):
// - logins: DEVICES devices log in over MQTTS with N concurrent clients through Mosquitto with
//   the ota auth plugin (the broker configuration `ota-server broker-config` prints, the
//   platform running and taking the presence events), vs the same broker configuration with
//   Mosquitto's own password_file;
// - property reports: every device publishes a burst of QoS 1 reports at once; stored/s is
//   counted from the platform's database (the registry counter) until all arrived, vs the same
//   burst through the password_file broker to a subscriber that only counts;
// - downloads: C concurrent clients fetch a ~33 KB package in 4 KB Range requests (as the agent
//   does, keep-alive) and a 512 KB package whole, from the platform's HTTPS download listener
//   with URLs and tokens from POST /api/v1/packages/{id}/download-tokens, vs the same bytes
//   from cpp-httplib's default server over plain HTTP;
// - operator API latency (GET /api/v1/tasks) while the heaviest download load runs, vs idle.
// Every figure is one `platform: NAME ...` line. Exits 1 on any error: a refused login, a lost
// report, a failed or wrong download, a failed API call.
//
//   platform_bench [DEVICES=1000] [LOGIN_CLIENTS=8] [DOWNLOAD_SECONDS=2]
#include <httplib.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
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

// Errors from any thread: counted, the first few printed; main exits 1 if there were any.
std::atomic<int> g_errors{0};
std::mutex g_error_mutex;

void Error(const std::string& what) {
  if (g_errors.fetch_add(1) < 10) {
    std::lock_guard<std::mutex> g(g_error_mutex);
    std::fprintf(stderr, "platform-bench: %s\n", what.c_str());
  }
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "platform-bench: %s\n", what.c_str());
  return 1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// A Mosquitto process on a given configuration, stopped with the object.
class Broker {
 public:
  Broker(const std::filesystem::path& dir, const std::string& config, int wait_port) {
    std::filesystem::create_directories(dir);
    const std::filesystem::path conf = dir / "mosquitto.conf";
    std::ofstream(conf) << config;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), nullptr);
      ::_exit(127);
    }
    if (!ota::testing::WaitForPort(wait_port, 5000)) Stop();
  }
  ~Broker() { Stop(); }
  bool running() const { return pid_ > 0; }

 private:
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid_ = -1;
};

// One device's MQTTS connection (libmosquitto, driven by the thread that owns it).
struct Device {
  mosquitto* m = nullptr;
  bool connack_seen = false;
  int connack = -1;
  int acked = 0;
};

void OnConnect(mosquitto*, void* self, int rc) {
  auto* d = static_cast<Device*>(self);
  d->connack = rc;
  d->connack_seen = true;
}

void OnPublish(mosquitto*, void* self, int) {
  ++static_cast<Device*>(self)->acked;
}

// Drives the connections devices[first..last) (one thread's share) until `done` or the deadline.
bool Pump(std::vector<Device>& devices, size_t first, size_t last,
          const std::function<bool()>& done, double timeout_s) {
  const auto start = Clock::now();
  auto misc_at = Clock::now();
  std::vector<pollfd> fds(last - first);
  while (!done()) {
    if (Seconds(start) > timeout_s) return false;
    for (size_t i = first; i < last; ++i) {
      pollfd& p = fds[i - first];
      p.fd = mosquitto_socket(devices[i].m);
      if (p.fd < 0) return false;  // the broker hung up
      p.events = static_cast<short>(POLLIN | (mosquitto_want_write(devices[i].m) ? POLLOUT : 0));
      p.revents = 0;
    }
    ::poll(fds.data(), fds.size(), 10);
    for (size_t i = first; i < last; ++i) {
      const short ev = fds[i - first].revents;
      if ((ev & (POLLIN | POLLERR | POLLHUP)) != 0 &&
          mosquitto_loop_read(devices[i].m, 1) != MOSQ_ERR_SUCCESS) {
        return false;
      }
      if ((ev & POLLOUT) != 0 && mosquitto_loop_write(devices[i].m, 1) != MOSQ_ERR_SUCCESS) {
        return false;
      }
    }
    if (Clock::now() > misc_at) {
      for (size_t i = first; i < last; ++i)
        mosquitto_loop_misc(devices[i].m);
      misc_at = Clock::now() + std::chrono::milliseconds(100);
    }
  }
  return true;
}

// Logs device `i` in over MQTTS; on success the connection stays open in devices[i].
// (libmosquitto's own mosquitto_loop uses select(): no good beyond 1024 descriptors, and each
// client holds three.)
bool Login(std::vector<Device>& devices, size_t i, int port, const std::string& ca,
           const std::string& hour) {
  Device& d = devices[i];
  const std::string id = "fire_n" + std::to_string(i);
  d.m = mosquitto_new((id + "_0_1_" + hour).c_str(), true, &d);
  if (d.m == nullptr) return false;
  mosquitto_connect_callback_set(d.m, OnConnect);
  mosquitto_publish_callback_set(d.m, OnPublish);
  mosquitto_username_pw_set(
      d.m, id.c_str(), ota::broker::IotdaPassword("secret-n" + std::to_string(i), hour).c_str());
  if (mosquitto_tls_set(d.m, ca.c_str(), nullptr, nullptr, nullptr, nullptr) != MOSQ_ERR_SUCCESS) {
    return false;
  }
  // A long keep-alive: the connection idles while the other devices log in.
  if (mosquitto_connect(d.m, "127.0.0.1", port, 600) != MOSQ_ERR_SUCCESS) return false;
  Pump(
      devices, i, i + 1, [&d] { return d.connack_seen; }, 10);
  return d.connack_seen && d.connack == 0;
}

struct LoginResult {
  double per_s = 0;
  double wall_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// `clients` threads log devices 0..n-1 in, each one device at a time; all stay connected.
LoginResult LoginAll(std::vector<Device>& devices, int clients, int port, const std::string& ca,
                     const std::string& hour) {
  const int n = static_cast<int>(devices.size());
  std::vector<double> latency(static_cast<size_t>(n));
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        const auto t0 = Clock::now();
        if (!Login(devices, static_cast<size_t>(i), port, ca, hour)) {
          Error("login of fire_n" + std::to_string(i) + " on port " + std::to_string(port) +
                " failed (CONNACK " + std::to_string(devices[static_cast<size_t>(i)].connack) +
                ")");
        }
        latency[static_cast<size_t>(i)] = Seconds(t0) * 1e3;
      }
    });
  }
  for (std::thread& t : threads)
    t.join();
  LoginResult r;
  r.wall_s = Seconds(start);
  r.per_s = n / r.wall_s;
  r.p50_ms = Percentile(latency, 0.50);
  r.p99_ms = Percentile(latency, 0.99);
  return r;
}

std::string Report(int value) {
  return R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":)" +
         std::to_string(value) + "}}]}";
}

// Every device publishes `per_device` reports at once (QoS 1), `clients` threads each driving
// its share of the connections until every PUBACK came. Returns the start time.
Clock::time_point PublishAll(std::vector<Device>& devices, int clients, int per_device) {
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  const size_t n = devices.size();
  for (int t = 0; t < clients; ++t) {
    const size_t first = n * static_cast<size_t>(t) / static_cast<size_t>(clients);
    const size_t last = n * static_cast<size_t>(t + 1) / static_cast<size_t>(clients);
    threads.emplace_back([&devices, first, last, per_device] {
      for (size_t i = first; i < last; ++i) {
        devices[i].acked = 0;
        const std::string topic =
            "$oc/devices/fire_n" + std::to_string(i) + "/sys/properties/report";
        for (int k = 0; k < per_device; ++k) {
          const std::string payload = Report(k);
          if (mosquitto_publish(devices[i].m, nullptr, topic.c_str(),
                                static_cast<int>(payload.size()), payload.data(), 1,
                                false) != MOSQ_ERR_SUCCESS) {
            Error("publish of fire_n" + std::to_string(i) + " refused by libmosquitto");
          }
        }
      }
      const bool ok = Pump(
          devices, first, last,
          [&] {
            for (size_t i = first; i < last; ++i)
              if (devices[i].acked < per_device) return false;
            return true;
          },
          60);
      if (!ok) Error("a device's reports were not all acknowledged by the broker");
    });
  }
  for (std::thread& t : threads)
    t.join();
  return start;
}

void DisconnectAll(std::vector<Device>& devices) {
  for (Device& d : devices) {
    if (d.m == nullptr) continue;
    mosquitto_disconnect(d.m);
    mosquitto_destroy(d.m);
    d.m = nullptr;
  }
}

// Waits until `count()` reaches `target`; returns the time of the last increase after `start`,
// or a negative value when it stopped short (nothing new for 5 s, or 60 s in all).
double WaitForCount(const std::function<int64_t()>& count, int64_t target,
                    Clock::time_point start) {
  int64_t seen = -1;
  double last_change = 0;
  while (true) {
    const int64_t now = count();
    if (now != seen) {
      seen = now;
      last_change = Seconds(start);
    }
    if (seen >= target) return last_change;
    if (Seconds(start) - last_change > 5 || Seconds(start) > 60) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Counts what a plain subscriber receives (the peer of the platform's ingestion).
struct CountingSubscriber {
  std::atomic<int64_t> received{0};
  std::atomic<bool> subscribed{false};
  mosquitto* m = nullptr;

  bool Start(int port, const std::string& password) {
    m = mosquitto_new("bench-counter", false, this);
    mosquitto_username_pw_set(m, "bench-counter", password.c_str());
    mosquitto_connect_callback_set(m, [](mosquitto* mm, void*, int rc) {
      if (rc == 0) mosquitto_subscribe(mm, nullptr, "$oc/devices/+/sys/properties/report", 1);
    });
    mosquitto_subscribe_callback_set(m, [](mosquitto*, void* self, int, int, const int*) {
      static_cast<CountingSubscriber*>(self)->subscribed = true;
    });
    mosquitto_message_callback_set(m, [](mosquitto*, void* self, const mosquitto_message*) {
      ++static_cast<CountingSubscriber*>(self)->received;
    });
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) return false;
    if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) return false;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!subscribed && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return subscribed;
  }
  ~CountingSubscriber() {
    if (m == nullptr) return;
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
  }
};

// scheme://host:port/path, as the platform hands it out.
struct Url {
  std::string scheme, host, path;
  int port = 0;
};

Url ParseUrl(const std::string& url) {
  Url u;
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return u;
  u.scheme = url.substr(0, scheme_end);
  const size_t host_start = scheme_end + 3;
  const size_t path_start = url.find('/', host_start);
  const std::string authority = url.substr(host_start, path_start - host_start);
  u.path = path_start == std::string::npos ? "/" : url.substr(path_start);
  const size_t colon = authority.rfind(':');
  u.host = authority.substr(0, colon);
  u.port = colon == std::string::npos ? 443 : std::atoi(authority.c_str() + colon + 1);
  return u;
}

// What one download client needs: where, with which token (empty for the plain peer).
struct Target {
  Url url;
  std::string token;
};

struct LoadResult {
  double req_per_s = 0;
  double mb_per_s = 0;
};

std::unique_ptr<httplib::ClientImpl> MakeClient(const Target& t, const std::string& ca) {
  std::unique_ptr<httplib::ClientImpl> c;
  if (t.url.scheme == "https") {
    auto s = std::make_unique<httplib::SSLClient>(t.url.host, t.url.port);
    s->set_ca_cert_path(ca.c_str());
    s->enable_server_certificate_verification(true);
    c = std::move(s);
  } else {
    c = std::make_unique<httplib::ClientImpl>(t.url.host, t.url.port);
  }
  c->set_keep_alive(true);
  c->set_connection_timeout(5);
  c->set_read_timeout(30);
  if (!t.token.empty()) c->set_bearer_token_auth(t.token.c_str());
  return c;
}

// `targets.size()` clients at once fetch `package` until `seconds` passed (whole packages
// only: one started before the deadline is finished), in `block`-byte ranges (0: whole).
LoadResult DownloadLoad(const std::vector<Target>& targets, const std::vector<uint8_t>& package,
                        size_t block, double seconds, const std::string& ca) {
  std::atomic<int64_t> requests{0}, bytes{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (const Target& target : targets) {
    threads.emplace_back([&, target] {
      auto c = MakeClient(target, ca);
      const auto check = [&](const httplib::Result& r, int status, size_t offset, size_t length) {
        if (!r) {
          Error("download " + target.url.path + ": " + httplib::to_string(r.error()));
          return false;
        }
        if (r->status != status || r->body.size() != length ||
            std::memcmp(r->body.data(), package.data() + offset, length) != 0) {
          Error("download " + target.url.path + ": status " + std::to_string(r->status) + ", " +
                std::to_string(r->body.size()) + " bytes at " + std::to_string(offset) +
                ", wanted " + std::to_string(status) + " with " + std::to_string(length));
          return false;
        }
        ++requests;
        bytes += static_cast<int64_t>(length);
        return true;
      };
      while (Seconds(start) < seconds && g_errors == 0) {
        if (block == 0) {
          if (!check(c->Get(target.url.path.c_str()), 200, 0, package.size())) return;
          continue;
        }
        for (size_t off = 0; off < package.size(); off += block) {
          const size_t len = std::min(block, package.size() - off);
          const httplib::Headers range = {httplib::make_range_header(
              {{static_cast<ssize_t>(off), static_cast<ssize_t>(off + len - 1)}})};
          if (!check(c->Get(target.url.path.c_str(), range), 206, off, len)) return;
        }
      }
    });
  }
  for (std::thread& t : threads)
    t.join();
  const double wall = Seconds(start);
  return {static_cast<double>(requests) / wall, static_cast<double>(bytes) / 1e6 / wall};
}

// The operator API, as a tool would reach it (keep-alive).
std::unique_ptr<httplib::SSLClient> ApiClient(int port, const std::string& ca,
                                              const std::string& token) {
  auto api = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  api->set_ca_cert_path(ca.c_str());
  api->enable_server_certificate_verification(true);
  api->set_bearer_token_auth(token.c_str());
  api->set_keep_alive(true);
  return api;
}

// Operator API latency: GET `path` every `interval` until `stop`, in milliseconds, on a new
// connection (cpp-httplib's client takes a TLS connection the server closed while it idled
// for alive, and fails the next request on it).
std::vector<double> ProbeApi(int port, const std::string& ca, const std::string& token,
                             const std::string& path, const std::atomic<bool>& stop, int max_probes,
                             std::chrono::milliseconds interval) {
  const auto client = ApiClient(port, ca, token);
  httplib::SSLClient& api = *client;
  std::vector<double> ms;
  while (!stop && static_cast<int>(ms.size()) < max_probes) {
    const auto t0 = Clock::now();
    auto r = api.Get(path.c_str());
    if (!r || r->status != 200) {
      Error("GET " + path + ": " + (r ? std::to_string(r->status) : httplib::to_string(r.error())));
      break;
    }
    ms.push_back(Seconds(t0) * 1e3);
    std::this_thread::sleep_for(interval);
  }
  return ms;
}

}  // namespace

int Bench(const std::filesystem::path& dir, int devices, int login_clients,
          double download_seconds);

int main(int argc, char** argv) {
  const int devices = argc > 1 && std::atoi(argv[1]) > 0 ? std::atoi(argv[1]) : 1000;
  const int login_clients = argc > 2 && std::atoi(argv[2]) > 0 ? std::atoi(argv[2]) : 8;
  const double download_seconds = argc > 3 && std::atof(argv[3]) > 0 ? std::atof(argv[3]) : 2.0;
  const int reports_per_device = std::max(5, (5000 + devices - 1) / devices);
  const std::vector<int> download_clients = {1, 8, 32};
  if (devices < download_clients.back()) return Fail("DEVICES must be at least 32");
  std::printf(
      "platform: run cores=%u devices=%d login_clients=%d reports_per_device=%d "
      "download_clients=1,8,32 download_seconds=%.1f mosquitto=%s\n",
      std::thread::hardware_concurrency(), devices, login_clients, reports_per_device,
      download_seconds, "/usr/sbin/mosquitto");
  std::fflush(stdout);
  mosquitto_lib_init();
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/ota-platform-bench.XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(tmpl);
  const int rc = Bench(dir, devices, login_clients, download_seconds);
  std::filesystem::remove_all(dir);
  mosquitto_lib_cleanup();
  return rc;
}

int Bench(const std::filesystem::path& dir, int devices, int login_clients,
          double download_seconds) {
  using namespace ota;  // NOLINT: a benchmark's driver
  const int reports_per_device = std::max(5, (5000 + devices - 1) / devices);
  const std::vector<int> download_clients = {1, 8, 32};
  int rc = 0;
  {
    server::Platform platform(dir / "data");
    const std::string ca = platform.tls().ca_cert.string();
    const std::string hour = testing::UtcHour();
    platform.registry().CreateProduct("fire", "FIRE", "", "MQTT",
                                      json::parse(R"({"services":[{"service_id":"DeviceStatus",)"
                                                  R"("properties":[{"name":"radioValue",)"
                                                  R"("type":"int"}]}]})"));
    const std::string counter_password = "bench-counter-password";
    {
      std::ofstream plain(dir / "passwd");
      for (int i = 0; i < devices; ++i) {
        const std::string node = "n" + std::to_string(i);
        platform.registry().CreateDevice("fire", node, "", "secret-" + node);
        plain << "fire_" << node << ":" << broker::IotdaPassword("secret-" + node, hour) << "\n";
      }
      plain << "bench-counter:" << counter_password << "\n";
    }
    if (std::system(("mosquitto_passwd -U " + (dir / "passwd").string()).c_str()) != 0) {
      return Fail("mosquitto_passwd failed");
    }

    // Ours: exactly what `ota-server broker-config` prints (MQTTS for devices, plain MQTT for
    // the platform), without persistence. The peer: the same lines, Mosquitto's password_file
    // instead of the plugin.
    const std::string common = "persistence false\nuser root\n";
    const int ours_tls = testing::FreeLoopbackPort();
    const int ours_plain = testing::FreeLoopbackPort();
    const int peer_tls = testing::FreeLoopbackPort();
    const int peer_plain = testing::FreeLoopbackPort();
    const std::string ours_config =
        platform.MosquittoConfig(OTA_AUTH_PLUGIN, ours_tls, ours_plain, "127.0.0.1") + common +
        "log_dest file " + (dir / "ours.log").string() + "\n";
    std::string peer_config;
    {
      std::istringstream in(
          platform.MosquittoConfig(OTA_AUTH_PLUGIN, peer_tls, peer_plain, "127.0.0.1"));
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("plugin", 0) != 0) peer_config += line + "\n";
      }
      peer_config += "password_file " + (dir / "passwd").string() + "\n" + common +
                     "log_dest file " + (dir / "peer.log").string() + "\n";
    }
    Broker ours_broker(dir / "ours", ours_config, ours_tls);
    Broker peer_broker(dir / "peer", peer_config, peer_tls);
    if (!ours_broker.running() || !peer_broker.running()) return Fail("mosquitto did not start");
    if (!testing::WaitForPort(ours_plain, 5000) || !testing::WaitForPort(peer_plain, 5000)) {
      return Fail("mosquitto's plain listener did not open");
    }

    // The peer's subscriber and the platform connect first: libmosquitto's network thread uses
    // select(), which takes no descriptor beyond 1024 (the devices below hold thousands).
    CountingSubscriber counter;
    if (!counter.Start(peer_plain, counter_password)) return Fail("counting subscriber");

    // The platform, on the plugin broker: it takes the presence events of the logins below.
    std::string password;
    std::ifstream(platform.platform_password_path()) >> password;
    server::ServiceOptions o;
    o.http_port = 0;
    o.download_port = 0;
    o.mqtt.port = ours_plain;
    o.mqtt.password = password;
    server::Service service(platform, o);
    std::string error;
    if (!service.Start(&error)) return Fail(error);

    // 1. Logins over MQTTS, `login_clients` at a time; every device stays connected.
    std::vector<Device> ours_devices(static_cast<size_t>(devices));
    std::vector<Device> peer_devices(static_cast<size_t>(devices));
    const LoginResult ours_login = LoginAll(ours_devices, login_clients, ours_tls, ca, hour);
    const auto online_start = Clock::now();
    const auto online = [&] {
      std::lock_guard<std::mutex> g(platform.lock());
      auto s = platform.db().Prepare("SELECT COUNT(*) FROM devices WHERE online = 1");
      return s.Step() ? s.Int(0) : int64_t{0};
    };
    const double presence_s = WaitForCount(online, devices, online_start);
    const LoginResult peer_login = LoginAll(peer_devices, login_clients, peer_tls, ca, hour);
    if (g_errors != 0) return Fail("logins failed");
    if (presence_s < 0) Error("the platform did not mark every device online (presence events)");
    std::printf(
        "platform: logins_per_s ours=%.0f peer=%.0f ratio=%.2f devices=%d clients=%d "
        "transport=mqtts wall_s ours=%.2f peer=%.2f login_p50_ms ours=%.1f peer=%.1f "
        "login_p99_ms ours=%.1f peer=%.1f presence_in_db_after_logins_s=%.2f\n",
        ours_login.per_s, peer_login.per_s, ours_login.per_s / peer_login.per_s, devices,
        login_clients, ours_login.wall_s, peer_login.wall_s, ours_login.p50_ms, peer_login.p50_ms,
        ours_login.p99_ms, peer_login.p99_ms, presence_s);
    std::fflush(stdout);

    // 2. Property reports: every device at once, QoS 1; ours counted from the database.
    const int64_t total = static_cast<int64_t>(devices) * reports_per_device;
    const auto stored = [&] {
      std::lock_guard<std::mutex> g(platform.lock());
      return platform.registry().Counter("property_reports");
    };
    const int64_t stored_before = stored();
    const auto ours_start = PublishAll(ours_devices, login_clients, reports_per_device);
    const double ours_puback_s = Seconds(ours_start);
    const double ours_s = WaitForCount([&] { return stored() - stored_before; }, total, ours_start);
    const int64_t ours_stored = stored() - stored_before;
    int64_t rejected = 0;
    {
      std::lock_guard<std::mutex> g(platform.lock());
      rejected = platform.registry().Counter("rejected_property_reports");
    }

    const auto peer_start = PublishAll(peer_devices, login_clients, reports_per_device);
    const double peer_puback_s = Seconds(peer_start);
    const double peer_s = WaitForCount([&] { return counter.received.load(); }, total, peer_start);
    const int64_t peer_received = counter.received;
    DisconnectAll(ours_devices);
    DisconnectAll(peer_devices);
    // The disconnects' presence events, applied before the downloads start.
    if (WaitForCount([&] { return devices - online(); }, devices, Clock::now()) < 0) {
      std::printf(
          "platform: note: %lld devices still online in the database after "
          "disconnecting\n",
          static_cast<long long>(online()));
    }
    if (ours_stored != total || rejected != 0) {
      Error("property reports: sent " + std::to_string(total) + ", stored " +
            std::to_string(ours_stored) + ", rejected " + std::to_string(rejected));
    }
    if (peer_received != total) {
      Error("property reports (peer): sent " + std::to_string(total) + ", received " +
            std::to_string(peer_received));
    }
    const double ours_rate = ours_s > 0 ? static_cast<double>(ours_stored) / ours_s : 0.0;
    const double peer_rate = peer_s > 0 ? static_cast<double>(peer_received) / peer_s : 0.0;
    std::printf(
        "platform: reports_stored_per_s ours=%.0f peer=%.0f ratio=%.2f sent=%lld stored=%lld "
        "lost=%lld publishers=%d qos=1 all_puback_s ours=%.2f peer=%.2f "
        "(peer: password_file broker to a subscriber that only counts)\n",
        ours_rate, peer_rate, peer_rate > 0 ? ours_rate / peer_rate : 0.0,
        static_cast<long long>(total), static_cast<long long>(ours_stored),
        static_cast<long long>(total - ours_stored), devices, ours_puback_s, peer_puback_s);
    std::fflush(stdout);
    if (g_errors != 0) {
      service.Stop();
      return Fail("property reports failed");
    }

    // 3. Downloads. Packages uploaded, tokens and URLs from the operator API.
    testing::TestKey key;
    platform.registry().AddProductKey("fire", host::PublicKeyPem(key.pkey()), false);
    const uint32_t load =
        kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset;
    const auto make_package = [&](const std::string& version, uint32_t image_size) {
      host::PackageSpec spec;
      spec.version = version;
      spec.codec = CodecId::kStored;
      spec.image = testing::MakeTestImage(version, image_size, load, 9);
      return testing::MakePackage(spec, &key);
    };
    const std::vector<uint8_t> small = make_package("FOTAV2", 32 * 1024);
    const std::vector<uint8_t> big = make_package("FOTAV3", 511 * 1024);
    server::PackageRecord small_rec, big_rec;
    {
      std::lock_guard<std::mutex> g(platform.lock());
      small_rec = platform.packages().Upload("fire", small, "small.bin");
      big_rec = platform.packages().Upload("fire", big, "big.bin");
    }
    std::string admin_token;
    std::ifstream(dir / "data" / "admin.token") >> admin_token;
    const auto api_client = ApiClient(service.http_port(), ca, admin_token);
    httplib::SSLClient& api = *api_client;
    const int max_clients = download_clients.back();
    const auto grants = [&](int64_t package_id) {
      std::vector<Target> out;
      for (int i = 0; i < max_clients; ++i) {
        const json body = {{"device_id", "fire_n" + std::to_string(i)}, {"expires", 3600}};
        auto r = api.Post(
            ("/api/v1/packages/" + std::to_string(package_id) + "/download-tokens").c_str(),
            body.dump(), "application/json");
        if (!r || r->status != 201) {
          Error("download-tokens: " +
                (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error())));
          return out;
        }
        const json g = json::parse(r->body);
        out.push_back({ParseUrl(g["url"].get<std::string>()), g["access_token"]});
      }
      return out;
    };
    const std::vector<Target> small_targets = grants(small_rec.package_id);
    const std::vector<Target> big_targets = grants(big_rec.package_id);
    if (g_errors != 0 || small_targets.empty() || big_targets.empty()) {
      service.Stop();
      return Fail("no download grants");
    }
    if (small_targets[0].url.port != service.download_port()) {
      Error("download URL " + small_targets[0].url.path + " is not on the download listener");
    }

    // cpp-httplib's default server, but with TCP_NODELAY as ours has: without it every small
    // response waits for the client's delayed ACK (~40 ms), and the peer measures only that.
    httplib::Server peer_http;
    peer_http.set_tcp_nodelay(true);
    const std::string small_body(small.begin(), small.end());
    const std::string big_body(big.begin(), big.end());
    peer_http.Get("/small", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(small_body, "application/octet-stream");
    });
    peer_http.Get("/big", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(big_body, "application/octet-stream");
    });
    const int peer_http_port = peer_http.bind_to_any_port("127.0.0.1");
    std::thread peer_http_thread([&] { peer_http.listen_after_bind(); });
    const auto peer_targets = [&](const std::string& path, int n) {
      std::vector<Target> out(static_cast<size_t>(n));
      for (Target& t : out)
        t.url = {"http", "127.0.0.1", path, peer_http_port};
      return out;
    };

    // 4. Operator API latency: idle first, then while the heaviest download loads run.
    const std::string probe_path = "/api/v1/tasks";
    std::atomic<bool> never{false};
    const std::vector<double> idle_ms = ProbeApi(service.http_port(), ca, admin_token, probe_path,
                                                 never, 200, std::chrono::milliseconds(2));
    std::vector<double> loaded_ms;

    struct Load {
      const char* kind;
      const std::vector<uint8_t>* package;
      size_t block;
      const std::vector<Target>* ours;
      const char* peer_path;
    };
    const Load loads[] = {{"range4k", &small, 4096, &small_targets, "/small"},
                          {"whole", &big, 0, &big_targets, "/big"}};
    for (const Load& l : loads) {
      for (const int c : download_clients) {
        std::vector<Target> ours_targets(l.ours->begin(), l.ours->begin() + c);
        std::atomic<bool> stop_probe{false};
        std::vector<double> probe;
        std::thread prober;
        if (c == max_clients) {
          prober = std::thread([&] {
            probe = ProbeApi(service.http_port(), ca, admin_token, probe_path, stop_probe, 1 << 20,
                             std::chrono::milliseconds(10));
          });
        }
        const LoadResult ours =
            DownloadLoad(ours_targets, *l.package, l.block, download_seconds, ca);
        stop_probe = true;
        if (prober.joinable()) prober.join();
        loaded_ms.insert(loaded_ms.end(), probe.begin(), probe.end());
        const LoadResult peer =
            DownloadLoad(peer_targets(l.peer_path, c), *l.package, l.block, download_seconds, ca);
        std::printf(
            "platform: download_req_per_s kind=%s package=%zu clients=%d ours=%.0f peer=%.0f "
            "ratio=%.2f (ours: https download listener, token; peer: plain http, cpp-httplib "
            "defaults + TCP_NODELAY)\n",
            l.kind, l.package->size(), c, ours.req_per_s, peer.req_per_s,
            ours.req_per_s / peer.req_per_s);
        std::printf(
            "platform: download_mb_per_s kind=%s package=%zu clients=%d ours=%.1f "
            "peer=%.1f ratio=%.2f\n",
            l.kind, l.package->size(), c, ours.mb_per_s, peer.mb_per_s,
            ours.mb_per_s / peer.mb_per_s);
        std::fflush(stdout);
        if (g_errors != 0) break;
      }
      if (g_errors != 0) break;
    }
    peer_http.stop();
    peer_http_thread.join();

    std::printf(
        "platform: api_p50_ms loaded=%.2f idle=%.2f path=%s probes loaded=%zu idle=%zu "
        "(loaded: during the %d-client download runs)\n",
        Percentile(loaded_ms, 0.50), Percentile(idle_ms, 0.50), probe_path.c_str(),
        loaded_ms.size(), idle_ms.size(), max_clients);
    std::printf("platform: api_p99_ms loaded=%.2f idle=%.2f max_ms loaded=%.2f idle=%.2f\n",
                Percentile(loaded_ms, 0.99), Percentile(idle_ms, 0.99), Percentile(loaded_ms, 1.0),
                Percentile(idle_ms, 1.0));
    if (loaded_ms.empty()) Error("no API probe ran during the download load");
    service.Stop();
    if (g_errors != 0) rc = Fail(std::to_string(g_errors.load()) + " error(s)");
  }
  return rc;
}

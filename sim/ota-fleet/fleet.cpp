#include "fleet.hpp"

#include <openssl/ec.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "host_transport.hpp"
#include "ota/agent/ota_agent.hpp"
#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/package_builder.hpp"
#include "ota/image.hpp"
#include "ota/sha256.hpp"

namespace ota::fleet {

namespace {

using nlohmann::json;

constexpr const char* kTarget = "FOTAV2";
constexpr const char* kKeyPassword = "ota-fleet-test-key";
const std::set<std::string> kOpen = {"Waiting", "Processing", "FailWaitRetry"};
const std::set<std::string> kFinal = {"Success", "Fail", "PartialSuccess", "Stopped"};

uint32_t LoadAddress() {
  return kSimSmall.internal_base + kSimSmall.partition(PartitionId::kRunning).offset;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out)
    b = static_cast<uint8_t>(rng());
  return out;
}

// An app image for sim-small's running slot: a vector table (stack top, Thumb reset handler
// in the slot), the header stamped by the host library, `code` around it.
std::vector<uint8_t> Stamp(std::vector<uint8_t> code, const std::string& version) {
  StoreLe32(code.data(), 0x20008000);
  StoreLe32(code.data() + 4, LoadAddress() | 0x401);
  std::fill(code.begin() + kImageHeaderOffset, code.begin() + kImageHeaderOffset + kImageHeaderSize,
            0);
  host::StampResult r = host::StampImage(std::move(code), version, LoadAddress());
  if (!r.error.empty()) throw std::runtime_error("stamping " + version + ": " + r.error);
  return r.image;
}

std::vector<uint8_t> Signed(const host::PackageSpec& spec, EVP_PKEY* key) {
  host::PackResult packed = host::BuildPackage(spec);
  if (!packed.error.empty())
    throw std::runtime_error("package " + spec.version + ": " + packed.error);
  host::SignResult s = host::SignPackage(packed.package, key);
  if (!s.error.empty()) throw std::runtime_error("signing " + spec.version + ": " + s.error);
  return s.package;
}

std::string DeviceSecret(const std::string& product, const std::string& node) {
  Sha256 sha;
  Sha256Digest d;
  const std::string text = "ota-fleet/" + product + "/" + node;
  if (!sha.Update(ConstByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size())).ok() ||
      !sha.Finish(d).ok()) {
    throw std::runtime_error("sha256");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out = "fs";
  for (int i = 0; i < 12; ++i) {
    out += kHex[d[i] >> 4];
    out += kHex[d[i] & 15];
  }
  return out;
}

int64_t Count(double pct, int n) {
  return std::clamp<int64_t>(std::llround(pct * n / 100.0), 0, n);
}

json Seconds(int64_t ms) {
  return ms < 0 ? json(nullptr) : json(std::round(static_cast<double>(ms) / 10.0) / 100.0);
}

}  // namespace

std::vector<std::pair<std::string, double>> ParseStartMix(const std::string& text) {
  std::vector<std::pair<std::string, double>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("start mix: " + item + ": no =");
    const std::string version = item.substr(0, eq);
    if (version != "FOTAV0" && version != "FOTAV1" && version != "FOTAV2") {
      throw std::invalid_argument("start mix: " + version + ": FOTAV0, FOTAV1 or FOTAV2");
    }
    const double share = std::stod(item.substr(eq + 1));
    if (share < 0) throw std::invalid_argument("start mix: negative share");
    out.emplace_back(version, share);
    pos = comma + 1;
  }
  if (out.empty()) throw std::invalid_argument("start mix: empty");
  return out;
}

uint64_t RaiseFileLimit(uint64_t wanted) {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
  if (l.rlim_max != RLIM_INFINITY && l.rlim_max < wanted) {
    rlimit more{wanted, wanted};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) return wanted;  // allowed (CAP_SYS_RESOURCE)
  }
  l.rlim_cur = l.rlim_max;
  setrlimit(RLIMIT_NOFILE, &l);
  getrlimit(RLIMIT_NOFILE, &l);
  return l.rlim_cur;
}

Fleet::Fleet(FleetConfig config) : config_(std::move(config)) {
  shared_.mqtt_host = config_.mqtt_host;
  shared_.mqtt_port = config_.mqtt_port;
  shared_.ca_file = config_.ca_file;
  shared_.target_version = kTarget;
  shared_.report_interval_ms = config_.report_interval_ms;
  shared_.step_wait_ms = config_.step_wait_ms;
  shared_.tls = std::make_unique<SharedTls>(config_.ca_file, config_.mqtt_host);
  // No API for a connect storm against a peer broker.
  if (!config_.api_url.empty()) {
    api_ = std::make_unique<PlatformApi>(config_.api_url, config_.token, config_.ca_file);
  }
}

Fleet::~Fleet() {
  StopBoards();
}

void Fleet::MakeImages() {
  // 20 KB images (the running slot is 32 KB, so is the download region); FOTAV2 is FOTAV1 with
  // a changed stretch and a little more code, so the diff is small. Fixed seeds: the same
  // images every run, so packages uploaded by an earlier run are the same files.
  std::vector<uint8_t> v1 = RandomBytes(20000 - kImageTrailerSize, 101);
  std::vector<uint8_t> v2 = v1;
  const std::vector<uint8_t> change = RandomBytes(1500, 102);
  std::copy(change.begin(), change.end(), v2.begin() + 8000);
  const std::vector<uint8_t> more = RandomBytes(480, 103);
  v2.insert(v2.end(), more.begin(), more.end());
  images_["FOTAV0"] = Stamp(RandomBytes(19000 - kImageTrailerSize, 100), "FOTAV0");
  images_["FOTAV1"] = Stamp(std::move(v1), "FOTAV1");
  images_["FOTAV2"] = Stamp(std::move(v2), "FOTAV2");
}

void Fleet::PlanBoards() {
  const int n = config_.boards;
  std::mt19937_64 rng(config_.seed);
  auto shuffled = [&](const std::vector<int>& from) {
    std::vector<int> v = from;
    std::shuffle(v.begin(), v.end(), rng);
    return v;
  };
  std::vector<int> all(n);
  std::iota(all.begin(), all.end(), 0);
  devices_.assign(n, {});
  for (int i = 0; i < n; ++i) {
    char node[16];
    std::snprintf(node, sizeof(node), "n%05d", i);
    devices_[i].node_id = node;
    devices_[i].device_id = config_.product_id + "_" + node;
    devices_[i].secret = DeviceSecret(config_.product_id, node);
  }
  // Start versions: exact shares over a shuffled order.
  double total = 0;
  for (const auto& [v, share] : config_.start_mix)
    total += share;
  if (total <= 0) throw std::invalid_argument("start mix: shares add up to 0");
  {
    const std::vector<int> order = shuffled(all);
    size_t k = 0;
    double cumulative = 0;
    for (const auto& [version, share] : config_.start_mix) {
      cumulative += share;
      const auto until = static_cast<size_t>(std::llround(cumulative / total * n));
      for (; k < until && k < order.size(); ++k)
        devices_[order[k]].start_version = version;
    }
    for (; k < order.size(); ++k)
      devices_[order[k]].start_version = config_.start_mix.back().first;
  }
  // Outcome-changing traits are disjoint: offline, refusing, failing verification.
  const std::vector<int> order = shuffled(all);
  size_t k = 0;
  auto take = [&](double pct, auto set) {
    for (int64_t c = Count(pct, n); c > 0 && k < order.size(); --c)
      set(devices_[order[k++]].traits);
  };
  take(config_.offline_pct, [](BoardTraits& t) { t.offline = true; });
  take(config_.refuse_pct, [](BoardTraits& t) { t.refuse = true; });
  take(config_.fail_verify_pct, [](BoardTraits& t) { t.fail_verify = true; });
  // Path-changing traits, each among the boards that come online (power cuts among those
  // that download).
  std::vector<int> online, downloading;
  for (int i = 0; i < n; ++i) {
    if (devices_[i].traits.offline) continue;
    online.push_back(i);
    if (!devices_[i].traits.refuse && devices_[i].start_version != kTarget) {
      downloading.push_back(i);
    }
  }
  auto choose = [&](const std::vector<int>& from, double pct, auto set) {
    const std::vector<int> o = shuffled(from);
    for (int64_t c = 0; c < Count(pct, n) && c < static_cast<int64_t>(o.size()); ++c)
      set(devices_[o[c]].traits);
  };
  choose(online, config_.late_pct, [](BoardTraits& t) { t.late = true; });
  choose(online, config_.drop_pct, [](BoardTraits& t) { t.drop = true; });
  choose(online, config_.slow_pct, [&](BoardTraits& t) {
    t.slow = true;
    t.slow_ms = config_.slow_ms;
  });
  choose(downloading, config_.powercut_pct, [](BoardTraits& t) { t.power_cut_after = 0; });
  std::uniform_int_distribution<int64_t> ramp(
      0, std::max<int64_t>(0, static_cast<int64_t>(config_.ramp_s * 1000)));
  for (DeviceSpec& d : devices_) {
    d.traits.drop_mean_ms = config_.drop_mean_ms;
    d.traits.start_delay_ms = config_.ramp_s > 0 ? ramp(rng) : 0;
    if (d.traits.late) d.traits.start_delay_ms += static_cast<int64_t>(config_.late_after_s * 1000);
    if (d.traits.power_cut_after == 0) {
      // Somewhere in the package this board will get (the diff from FOTAV1, else the full).
      const uint64_t size = d.start_version == "FOTAV1" ? diff_size_ : full_size_;
      d.traits.power_cut_after = std::uniform_int_distribution<int64_t>(
          1, static_cast<int64_t>(std::max<uint64_t>(size, 2)) - 1)(rng);
    }
  }
}

void Fleet::CreateDevices() {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string error;
  auto worker = [&] {
    try {
      PlatformApi api(config_.api_url, config_.token, config_.ca_file);
      for (size_t i = next++; i < devices_.size(); i = next++) {
        const DeviceSpec& d = devices_[i];
        Expect(api.Post("/api/v1/devices", {{"product_id", config_.product_id},
                                            {"node_id", d.node_id},
                                            {"device_id", d.device_id},
                                            {"secret", d.secret}}),
               {201, 409}, "device " + d.device_id);
        if (static_cast<int>(i) < config_.canary && !config_.canary_group.empty()) {
          Expect(api.Post("/api/v1/devices/" + d.device_id + "/groups",
                          {{"group", config_.canary_group}}),
                 {200, 201, 409}, "group of " + d.device_id);
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g(mu);
      if (error.empty()) error = e.what();
      next = devices_.size();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, config_.setup_connections); ++t)
    threads.emplace_back(worker);
  for (std::thread& t : threads)
    t.join();
  if (!error.empty()) throw std::runtime_error(error);
}

void Fleet::Setup() {
  if (!api_) throw std::runtime_error("no platform API configured");
  const int64_t t0 = NowMs();
  const std::string& p = config_.product_id;
  const bool upload = !config_.skip_setup;
  if (config_.skip_setup && !std::filesystem::exists(config_.key_file)) {
    throw std::runtime_error("--skip-setup needs the --key-file the setup run made");
  }
  if (upload) {
    Expect(api_->Post(
               "/api/v1/products",
               {{"product_id", p},
                {"name", "ota-fleet " + p},
                {"manufacturer", "ota-fleet"},
                {"protocol", "MQTT"},
                {"model", json::parse(R"({"services":[{"service_id":"DeviceStatus",)"
                                      R"("properties":[{"name":"radioValue","type":"int"}]}]})")}}),
           {201, 409}, "product " + p);
  }
  // The signing key; the boards' loaders hold it (or, failing verification, another).
  bool key_from_file = false;
  if (!config_.key_file.empty() && std::filesystem::exists(config_.key_file)) {
    host::PrivateKeyResult k = host::LoadPrivateKey(config_.key_file, kKeyPassword);
    if (!k.error.empty()) throw std::runtime_error(config_.key_file + ": " + k.error);
    signing_key_ = std::move(k.key);
    key_from_file = true;
  } else if (!config_.key_file.empty()) {
    const std::string error = host::GenerateKeyFiles(config_.key_file, "", kKeyPassword);
    if (!error.empty()) throw std::runtime_error(config_.key_file + ": " + error);
    host::PrivateKeyResult k = host::LoadPrivateKey(config_.key_file, kKeyPassword);
    if (!k.error.empty()) throw std::runtime_error(config_.key_file + ": " + k.error);
    signing_key_ = std::move(k.key);
  } else {
    signing_key_.reset(EVP_EC_gen("P-256"));
  }
  host::Pkey foreign(EVP_EC_gen("P-256"));
  if (!signing_key_ || !foreign) throw std::runtime_error("cannot make a P-256 key");
  const host::PublicPoint point = host::PublicPointOf(signing_key_.get());
  std::copy(point.begin(), point.end(), trusted_.point);
  const host::PublicPoint other = host::PublicPointOf(foreign.get());
  std::copy(other.begin(), other.end(), foreign_.point);
  if (upload) {
    Expect(api_->Post("/api/v1/products/" + p + "/keys",
                      {{"public_pem", host::PublicKeyPem(signing_key_.get())}}),
           {200, 201, 409}, "signing key");
  }

  MakeImages();
  host::PackageSpec full;
  full.profile = &kSimSmall;
  full.version = kTarget;
  full.image = images_[kTarget];
  host::PackageSpec diff = full;
  diff.kind = PackageKind::kDiff;
  diff.from_version = "FOTAV1";
  diff.source = images_["FOTAV1"];
  const std::vector<uint8_t> full_pkg = Signed(full, signing_key_.get());
  const std::vector<uint8_t> diff_pkg = Signed(diff, signing_key_.get());
  full_size_ = full_pkg.size();
  diff_size_ = diff_pkg.size();
  if (!key_from_file && upload) {
    // The platform picks the first FOTAV2 package it holds: one signed by another run's key
    // would be refused by every board.
    const PlatformApi::Reply list = api_->Get("/api/v1/packages?product_id=" + p);
    Expect(list, {200}, "packages of " + p);
    for (const json& pkg : list.body.is_array() ? list.body : json::array()) {
      if (pkg.value("version", "") == kTarget) {
        throw std::runtime_error("product " + p +
                                 " already has FOTAV2 packages signed by another key: pass the "
                                 "earlier run's --key-file, or use another --product");
      }
    }
  }
  if (!config_.packages_out.empty()) {
    for (const auto& [name, bytes] : {std::make_pair("fleet-fotav2-full.bin", &full_pkg),
                                      std::make_pair("fleet-fotav1-fotav2.bin", &diff_pkg)}) {
      const std::string path = config_.packages_out + "/" + name;
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes->data()),
                static_cast<std::streamsize>(bytes->size()));
      if (!out.flush()) throw std::runtime_error("cannot write " + path);
    }
  } else if (upload) {
    Expect(api_->PostBytes("/api/v1/products/" + p + "/packages?file_name=fleet-fotav2-full.bin",
                           full_pkg),
           {200, 201, 409}, "full package");
    Expect(api_->PostBytes("/api/v1/products/" + p + "/packages?file_name=fleet-fotav1-fotav2.bin",
                           diff_pkg),
           {200, 201, 409}, "diff package");
  }
  PlanBoards();
  if (upload) CreateDevices();  // every board's device, whatever the shard
  KeepShard();
  setup_ms_ = NowMs() - t0;
}

void Fleet::KeepShard() {
  offline_all_ = 0;
  for (const DeviceSpec& d : devices_)
    offline_all_ += d.traits.offline ? 1 : 0;
  if (config_.shards <= 1) return;
  std::vector<DeviceSpec> mine;
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(config_.shards)) == config_.shard) {
      mine.push_back(devices_[i]);
    }
  }
  devices_ = std::move(mine);
}

int Fleet::online_boards() const {
  int n = 0;
  for (const DeviceSpec& d : devices_)
    n += d.traits.offline ? 0 : 1;
  return n;
}

void Fleet::StartBoards() {
  RaiseFileLimit(static_cast<uint64_t>(config_.boards) * 5 + 1024);
  start_ms_ = NowMs();
  uint32_t seed = static_cast<uint32_t>(config_.seed * 2654435761u);
  for (const DeviceSpec& d : devices_) {
    ++seed;
    if (d.traits.offline) {
      boards_.push_back(nullptr);
      continue;
    }
    boards_.push_back(
        std::make_unique<FleetBoard>(shared_, d.device_id, d.secret, images_.at(d.start_version),
                                     d.traits.fail_verify ? foreign_ : trusted_, d.traits, seed));
    if (!boards_.back()->Start(config_.stack_bytes)) ++threads_failed_;
  }
  if (threads_failed_ > 0) {
    std::fprintf(stderr, "ota-fleet: %d board threads did not start\n", threads_failed_);
  }
  if (!config_.timeline_file.empty() && !sampling_) {
    std::FILE* out = std::fopen(config_.timeline_file.c_str(), "w");
    if (out == nullptr) throw std::runtime_error(config_.timeline_file + ": cannot write");
    sampling_ = true;
    sampler_ = std::thread([this, out] {
      std::unique_lock<std::mutex> lock(shared_.mu);
      while (!shared_.stop) {
        lock.unlock();
        Sample(out);
        lock.lock();
        shared_.cv.wait_for(lock, std::chrono::milliseconds(500));
      }
      lock.unlock();
      Sample(out);
      std::fclose(out);
    });
  }
}

namespace {

// CPU seconds (user + system) and resident MB of a process, from /proc; false if it is gone.
bool ProcStat(int pid, double* cpu_s, double* rss_mb) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  // Fields after the command name (which may hold spaces) in parentheses.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  long long rss_pages = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
    if (i == 24) {
      rss_pages = std::stoll(field);
      break;
    }
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  *cpu_s = static_cast<double>(utime + stime) / ticks;
  *rss_mb = static_cast<double>(rss_pages) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
  return true;
}

}  // namespace

void Fleet::Sample(std::FILE* out) {
  const FleetCounters& c = shared_.counters;
  json procs = json::object();
  std::vector<std::pair<std::string, int>> all = config_.watch;
  all.emplace_back("fleet", static_cast<int>(getpid()));
  for (const auto& [name, pid] : all) {
    double cpu = 0, rss = 0;
    if (ProcStat(pid, &cpu, &rss)) procs[name] = {{"cpu_s", cpu}, {"rss_mb", rss}};
  }
  const json line = {{"t_ms", NowMs()},
                     {"published", c.published.load()},
                     {"received", c.received.load()},
                     {"connects", c.connects.load()},
                     {"connected", c.connected.load()},
                     {"http_requests", c.http_requests.load()},
                     {"bytes", c.bytes_downloaded.load()},
                     {"procs", procs}};
  std::fprintf(out, "%s\n", line.dump().c_str());
  std::fflush(out);
}

void Fleet::ConnectStorm(double timeout_s) {
  PlanBoards();
  KeepShard();
  MakeImages();
  StartBoards();
  int expected = 0;
  for (const DeviceSpec& d : devices_)
    expected += !d.traits.offline && !d.traits.late;
  const int64_t deadline = NowMs() + static_cast<int64_t>(timeout_s * 1000);
  while (NowMs() < deadline) {
    int once = 0;
    int64_t last = 0;
    for (size_t i = 0; i < boards_.size(); ++i) {
      if (!boards_[i] || devices_[i].traits.late) continue;
      const int64_t first = boards_[i]->trace().first_connect_ms.load();
      if (first >= 0) {
        ++once;
        last = std::max(last, first);
      }
    }
    if (once >= expected) {
      storm_ms_ = last - start_ms_;
      break;
    }
    if (config_.progress) Progress(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (config_.progress) Progress(true);
}

void Fleet::WritePasswordFile(const std::string& path) {
  if (devices_.empty()) PlanBoards();  // every shard's boards
  char hour[11];
  device_sim::SystemClock clock;
  clock.UtcHour(hour);
  std::ofstream out(path);
  for (const DeviceSpec& d : devices_) {
    char password[65];
    if (!agent::IotdaPassword(d.secret.c_str(), hour, password).ok()) {
      throw std::runtime_error("cannot compute a password");
    }
    out << d.device_id << ":" << password << "\n";
  }
  if (!out) throw std::runtime_error(path + ": cannot write");
}

int64_t Fleet::CreateTask() {
  if (!api_) throw std::runtime_error("no platform API configured");
  json body = {{"product_id", config_.product_id},
               {"target_version", kTarget},
               {"whole_product", true},
               {"retry_count", config_.retry_count},
               {"retry_interval", config_.retry_interval_s}};
  body.merge_patch(config_.task_extra);
  shared_.task_ms.store(NowMs());
  const PlatformApi::Reply r = api_->Post("/api/v1/tasks", body);
  Expect(r, {200, 201}, "task");
  if (!r.body.is_object() || !r.body.contains("task_id") || !r.body["task_id"].is_number()) {
    throw std::runtime_error("task: no task_id in " + r.body.dump());
  }
  SetTask(r.body["task_id"].get<int64_t>());
  return task_id_;
}

void Fleet::SetTask(int64_t task_id) {
  task_id_ = task_id;
  if (shared_.task_ms.load() == 0) shared_.task_ms.store(NowMs());
}

bool Fleet::WaitTask(double timeout_s) {
  const int64_t deadline = NowMs() + static_cast<int64_t>(timeout_s * 1000);
  task_finished_ = false;
  while (NowMs() < deadline) {
    if (task_id_ != 0 && api_) {
      // The counts each second (cheap for the platform and for us); the per-device list only
      // when the counts say every board that came online may have ended.
      const std::string path = "/api/v1/tasks/" + std::to_string(task_id_);
      const PlatformApi::Reply c = api_->Get(path + "?devices=false");
      if (c.status == 200 && c.body.is_object()) {
        task_ = c.body;
        const std::string status = task_.value("status", "");
        int64_t open = 0;
        const json counts = task_.value("counts", json::object());
        for (const char* s : {"Waiting", "Processing", "FailWaitRetry"})
          open += counts.value(s, int64_t{0});
        bool settled = kFinal.count(status) != 0;
        if (!settled && open <= offline_all_) {
          const PlatformApi::Reply r = api_->Get(path);
          if (r.status == 200 && r.body.is_object()) {
            task_ = r.body;
            std::map<std::string, std::string> by_device;
            for (const json& d : task_.value("devices", json::array()))
              by_device[d.value("device_id", "")] = d.value("status", "");
            bool all_closed = true;
            int rows = 0;
            for (const DeviceSpec& d : devices_) {
              auto it = by_device.find(d.device_id);
              if (d.traits.offline || it == by_device.end()) continue;
              ++rows;
              if (kOpen.count(it->second) != 0) all_closed = false;
            }
            // Offline boards keep their rows open until the deadline: the campaign is over
            // when every board that came online is settled.
            settled = rows > 0 && all_closed;
          }
        }
        if (settled) {
          task_finished_ = true;
          task_done_ms_ = NowMs();
          break;
        }
      }
    }
    if (config_.progress) Progress(false);
    std::unique_lock<std::mutex> lock(shared_.mu);
    shared_.cv.wait_for(lock, std::chrono::seconds(1));
  }
  if (config_.progress) Progress(true);
  return task_finished_;
}

void Fleet::Progress(bool final_line) {
  const FleetCounters& c = shared_.counters;
  char line[512];
  int n = std::snprintf(line, sizeof(line),
                        "ota-fleet %4llds: connected %d/%d downloading %d rebooting %d done %d",
                        static_cast<long long>((NowMs() - start_ms_) / 1000), c.connected.load(),
                        online_boards(), c.downloading.load(), c.rebooting.load(), c.done.load());
  if (task_.is_object()) {
    n += std::snprintf(line + n, sizeof(line) - n, " | task %lld %s",
                       static_cast<long long>(task_id_), task_.value("status", "?").c_str());
    if (task_.value("state", "") == "paused") {
      n += std::snprintf(line + n, sizeof(line) - n, " PAUSED");
    }
    const json counts = task_.value("counts", json::object());  // kept: items() refers to it
    for (const auto& [status, count] : counts.items()) {
      if (n >= static_cast<int>(sizeof(line)) - 40) break;
      n += std::snprintf(line + n, sizeof(line) - n, " %s=%d", status.c_str(),
                         count.is_number() ? count.get<int>() : 0);
    }
  }
  static const bool tty = isatty(STDERR_FILENO) != 0;
  static int64_t last_line_ms = 0;
  if (tty) {
    std::fprintf(stderr, "\r%s\x1b[K%s", line, final_line ? "\n" : "");
  } else if (final_line || NowMs() - last_line_ms >= 10000) {
    std::fprintf(stderr, "%s\n", line);
    last_line_ms = NowMs();
  }
  std::fflush(stderr);
}

void Fleet::StopBoards() {
  if (stop_ms_ == 0 && !boards_.empty()) stop_ms_ = NowMs();
  {
    std::lock_guard<std::mutex> g(shared_.mu);
    shared_.stop = true;
  }
  shared_.cv.notify_all();
  for (auto& b : boards_) {
    if (b) b->Wake();
  }
  for (auto& b : boards_) {
    if (b) b->Join();
  }
  if (sampler_.joinable()) sampler_.join();
}

void Fleet::Evaluate() {
  if (task_id_ != 0) {
    const PlatformApi::Reply r = api_->Get("/api/v1/tasks/" + std::to_string(task_id_));
    if (r.status == 200 && r.body.is_object()) task_ = r.body;
  }
  std::map<std::string, std::string> by_device;
  if (task_.is_object()) {
    for (const json& d : task_.value("devices", json::array()))
      by_device[d.value("device_id", "")] = d.value("status", "");
  }
  success_ = failed_ = stuck_ = lost_ = offline_ = 0;
  by_status_.clear();
  lost_devices_.clear();
  stuck_devices_.clear();
  for (size_t i = 0; i < devices_.size(); ++i) {
    const DeviceSpec& d = devices_[i];
    auto it = by_device.find(d.device_id);
    const std::string status = it == by_device.end() ? "none" : it->second;
    ++by_status_[status];
    if (d.traits.offline) {
      ++offline_;
      continue;
    }
    if (status == "Success") ++success_;
    if (status == "Fail") ++failed_;
    if (kOpen.count(status) != 0) {
      ++stuck_;
      if (stuck_devices_.size() < 20) stuck_devices_.push_back(d.device_id);
    }
    const BoardTrace& t = boards_[i]->trace();
    const bool lost = (t.last == LastReport::kSuccess && status != "Success") ||
                      (t.last == LastReport::kFailure && status == "Processing" &&
                       t.last_final_ms >= t.last_command_ms);
    if (lost) {
      ++lost_;
      if (lost_devices_.size() < 20) lost_devices_.push_back(d.device_id);
    }
  }
}

json Fleet::Summary() {
  Evaluate();
  const int64_t task_ms = shared_.task_ms.load();
  const int64_t end_ms = task_done_ms_ != 0 ? task_done_ms_ : (stop_ms_ != 0 ? stop_ms_ : NowMs());
  wall_s_ = static_cast<double>(end_ms - start_ms_) / 1000.0;
  int64_t storm = -1, late = -1, vround = -1, fanout = -1, dl_first = -1, dl_last = -1,
          rep_first = -1, rep_last = -1;
  int never_connected = 0, bricked = 0;
  json errors = json::array();
  auto later = [](int64_t& acc, int64_t v) { acc = std::max(acc, v); };
  auto earlier = [](int64_t& acc, int64_t v) {
    if (v >= 0 && (acc < 0 || v < acc)) acc = v;
  };
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (!boards_[i]) continue;
    const BoardTrace& t = boards_[i]->trace();
    const int64_t first = t.first_connect_ms.load();
    if (first < 0) {
      ++never_connected;
    } else if (devices_[i].traits.late) {
      later(late, first - start_ms_);
    } else {
      later(storm, first - start_ms_);
    }
    if (!t.error.empty()) {
      ++bricked;
      if (errors.size() < 10) errors.push_back(devices_[i].device_id + ": " + t.error);
    }
    if (task_ms == 0) continue;
    if (t.version_report_ms >= 0) later(vround, t.version_report_ms - task_ms);
    if (t.command_ms >= 0) later(fanout, t.command_ms - task_ms);
    if (t.download_start_ms >= 0) earlier(dl_first, t.download_start_ms - task_ms);
    if (t.download_end_ms >= 0) later(dl_last, t.download_end_ms - task_ms);
    if (t.first_final_ms >= 0) earlier(rep_first, t.first_final_ms - task_ms);
    if (t.last_final_ms >= 0) later(rep_last, t.last_final_ms - task_ms);
  }
  const FleetCounters& c = shared_.counters;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  json mix = {{"offline", 0},     {"late", 0}, {"drop", 0},    {"refuse", 0},
              {"fail_verify", 0}, {"slow", 0}, {"powercut", 0}};
  json start = json::object();
  for (const DeviceSpec& d : devices_) {
    start[d.start_version] = start.value(d.start_version, 0) + 1;
    mix["offline"] = mix["offline"].get<int>() + d.traits.offline;
    mix["late"] = mix["late"].get<int>() + d.traits.late;
    mix["drop"] = mix["drop"].get<int>() + d.traits.drop;
    mix["refuse"] = mix["refuse"].get<int>() + d.traits.refuse;
    mix["fail_verify"] = mix["fail_verify"].get<int>() + d.traits.fail_verify;
    mix["slow"] = mix["slow"].get<int>() + d.traits.slow;
    mix["powercut"] = mix["powercut"].get<int>() + (d.traits.power_cut_after >= 0);
  }
  json s;
  s["boards"] = static_cast<int>(devices_.size());
  s["shard"] = {{"index", config_.shard}, {"of", config_.shards}, {"fleet_boards", config_.boards}};
  s["product_id"] = config_.product_id;
  s["start_versions"] = start;
  s["mix"] = mix;
  s["packages"] = {{"full_bytes", full_size_}, {"diff_bytes", diff_size_}};
  s["setup_s"] = Seconds(setup_ms_);
  // The timeline's clock: where the run and the task started, and the task was done.
  s["clock"] = {{"start_ms", start_ms_},
                {"task_ms", task_ms != 0 ? json(task_ms) : json(nullptr)},
                {"task_done_ms", task_done_ms_ != 0 ? json(task_done_ms_) : json(nullptr)},
                {"stop_ms", stop_ms_}};
  if (storm_ms_ >= 0) s["connect_only_storm_s"] = Seconds(storm_ms_);
  s["stages"] = {
      {"connect_storm_s", Seconds(storm)},
      {"late_connected_s", Seconds(late)},
      {"version_round_s", Seconds(vround)},
      {"command_fanout_s", Seconds(fanout)},
      {"downloads_s", {{"first_start", Seconds(dl_first)}, {"last_end", Seconds(dl_last)}}},
      {"reports_s", {{"first", Seconds(rep_first)}, {"last", Seconds(rep_last)}}},
      {"completion_s", Seconds(task_done_ms_ != 0 && task_ms != 0 ? task_done_ms_ - task_ms : -1)},
      {"note", "stages after the connect storm are counted from the task's creation"}};
  s["messages"] = {{"published", c.published.load()},
                   {"publish_failures", c.publish_failures.load()},
                   {"received", c.received.load()},
                   {"connects", c.connects.load()},
                   {"connect_failures", c.connect_failures.load()},
                   {"dropped_on_purpose", c.drops.load()}};
  s["http"] = {{"requests", c.http_requests.load()},
               {"failures", c.http_failures.load()},
               {"connections", c.http_connections.load()},
               {"bytes_downloaded", c.bytes_downloaded.load()}};
  s["boots"] = c.boots.load();
  s["power_cuts"] = c.power_cuts.load();
  s["never_connected"] = never_connected;
  s["bricked"] = bricked;
  if (!errors.empty()) s["board_errors"] = errors;
  s["platform"] = {{"task_id", task_id_ != 0 ? json(task_id_) : json(nullptr)},
                   {"task_status", task_.is_object() ? task_.value("status", "") : ""},
                   {"task_finished", task_finished_},
                   {"by_status", by_status_}};
  if (task_.is_object() && task_.contains("state")) s["platform"]["state"] = task_["state"];
  s["result"] = {{"success", success_},
                 {"failed", failed_},
                 {"stuck", stuck_},
                 {"lost", lost_},
                 {"offline", offline_}};
  if (!stuck_devices_.empty()) s["result"]["stuck_devices"] = stuck_devices_;
  if (!lost_devices_.empty()) s["result"]["lost_devices"] = lost_devices_;
  s["process"] = {{"peak_rss_mb", static_cast<double>(ru.ru_maxrss) / 1024.0},
                  {"cpu_s", std::round(cpu * 100) / 100},
                  {"threads", static_cast<int>(boards_.size()) - offline_ - threads_failed_},
                  {"threads_failed", threads_failed_},
                  {"stack_kb", config_.stack_bytes / 1024}};
  s["wall_s"] = std::round(wall_s_ * 100) / 100;
  return s;
}

std::string Fleet::SummaryLine() {
  char line[256];
  std::snprintf(line, sizeof(line),
                "fleet: boards=%d success=%d failed=%d stuck=%d lost=%d offline=%d wall_s=%.1f",
                static_cast<int>(devices_.size()), success_, failed_, stuck_, lost_, offline_,
                wall_s_);
  return line;
}

int Fleet::ExitCode() {
  const bool finished = task_finished_ || (!config_.create_task && task_id_ == 0);
  return stuck_ == 0 && lost_ == 0 && finished ? 0 : 1;
}

void Fleet::FollowNextTask(double timeout_s) {
  const int64_t deadline = NowMs() + static_cast<int64_t>(timeout_s * 1000);
  while (NowMs() < deadline && task_id_ == 0) {
    const PlatformApi::Reply r = api_->Get("/api/v1/tasks");
    if (r.status == 200 && r.body.is_array()) {
      for (const json& t : r.body) {
        if (t.value("product_id", "") == config_.product_id &&
            t.value("task_id", int64_t{0}) > known_task_ && t.value("status", "") != "Stopped") {
          SetTask(t["task_id"].get<int64_t>());
        }
      }
    }
    if (task_id_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void Fleet::Run() {
  if (config_.follow_task) {
    // Tasks made before this run are not the one to follow.
    const PlatformApi::Reply r = api_->Get("/api/v1/tasks");
    if (r.status == 200 && r.body.is_array()) {
      for (const json& t : r.body)
        known_task_ = std::max(known_task_, t.value("task_id", int64_t{0}));
    }
  }
  Setup();
  StartBoards();
  // The connect storm first (bounded), so the task's rounds are measured on their own.
  int expected = 0;
  for (const DeviceSpec& d : devices_)
    expected += !d.traits.offline && !d.traits.late;
  const int64_t storm_deadline = NowMs() + static_cast<int64_t>(config_.ramp_s * 1000) + 60000;
  int connected_once = 0;
  while (NowMs() < storm_deadline) {
    connected_once = 0;
    for (size_t i = 0; i < boards_.size(); ++i) {
      if (boards_[i] && !devices_[i].traits.late &&
          boards_[i]->trace().first_connect_ms.load() >= 0) {
        ++connected_once;
      }
    }
    if (connected_once >= expected) break;
    if (config_.progress) Progress(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!config_.ready_file.empty()) {
    std::ofstream(config_.ready_file) << connected_once << "\n";
  }
  if (config_.follow_task) FollowNextTask(config_.timeout_s);
  if (config_.create_task) CreateTask();
  if (task_id_ != 0 || config_.create_task) {
    WaitTask(config_.timeout_s);
  } else {
    // No task to follow: the boards run for the timeout.
    std::unique_lock<std::mutex> lock(shared_.mu);
    shared_.cv.wait_for(lock,
                        std::chrono::milliseconds(static_cast<int64_t>(config_.timeout_s * 1000)));
  }
  StopBoards();
}

}  // namespace ota::fleet

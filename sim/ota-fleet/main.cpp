// `ota-fleet`: a campaign against a running platform with thousands of simulated boards in
// this one process (docs/agent.md, "ota-fleet").
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "fleet.hpp"

namespace {

std::string ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read");
  std::string token;
  in >> token;
  if (token.empty()) throw std::runtime_error(path + ": empty");
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ota-fleet: many simulated sim-small boards (loader + OTA agent) in one process"};
  ota::fleet::FleetConfig c;
  std::string token_file, start_mix = "FOTAV1=100", task_json, summary_file;
  bool no_task = false, quiet = false;
  int64_t task_id = 0;
  double stack_kb = 256;
  app.add_option("--api", c.api_url,
                 "operator API, https://127.0.0.1:PORT (not with --connect-only)");
  app.add_option("--token-file", token_file, "file holding an operator token");
  app.add_option("--ca", c.ca_file, "the platform's CA (DATA/tls/ca.pem)")->required();
  app.add_option("--mqtt-host", c.mqtt_host, "broker host (MQTTS)")->capture_default_str();
  app.add_option("--mqtt-port", c.mqtt_port, "broker MQTTS port")->capture_default_str();
  app.add_option("--boards", c.boards, "number of boards")->capture_default_str();
  app.add_option("--product", c.product_id, "product ID (created if missing)")
      ->capture_default_str();
  app.add_option(
      "--key-file", c.key_file,
      "signing key PEM: used if it exists, else made here (password ota-fleet-test-key)");
  app.add_option("--seed", c.seed, "seed of the behaviour mix")->capture_default_str();
  app.add_option("--start-mix", start_mix, "start versions, e.g. FOTAV1=90,FOTAV0=10")
      ->capture_default_str();
  app.add_option("--offline", c.offline_pct, "% of boards that never connect");
  app.add_option("--late", c.late_pct, "% of boards that come online only after --late-after");
  app.add_option("--late-after", c.late_after_s, "seconds")->capture_default_str();
  app.add_option("--drop", c.drop_pct, "% of boards whose sessions drop and requests fail");
  app.add_option("--drop-mean-s", c.drop_mean_ms, "mean ms between their drops")
      ->capture_default_str();
  app.add_option("--refuse", c.refuse_pct, "% of boards refusing upgrades (result 4)");
  app.add_option("--fail-verify", c.fail_verify_pct,
                 "% of boards whose loader lacks the signing key (result 7)");
  app.add_option("--slow", c.slow_pct, "% of slow boards (each publish waits --slow-ms)");
  app.add_option("--slow-ms", c.slow_ms, "ms")->capture_default_str();
  app.add_option("--powercut", c.powercut_pct, "% of boards losing power mid-download");
  app.add_option("--ramp-seconds", c.ramp_s, "boards start within this many seconds")
      ->capture_default_str();
  app.add_option("--canary-group", c.canary_group, "put the first --canary boards in this group");
  app.add_option("--canary", c.canary, "how many boards go into --canary-group");
  app.add_option("--retry-count", c.retry_count, "task retries")->capture_default_str();
  app.add_option("--retry-interval", c.retry_interval_s, "seconds")->capture_default_str();
  app.add_option("--task-json", task_json, "JSON object merged into POST /api/v1/tasks");
  app.add_flag("--no-task", no_task, "do not create a task");
  app.add_option("--task-id", task_id, "follow this task (with --no-task)");
  app.add_option("--timeout", c.timeout_s, "seconds to wait for the task")->capture_default_str();
  app.add_option("--report-interval-ms", c.report_interval_ms, "property reports")
      ->capture_default_str();
  app.add_option("--stack-kb", stack_kb, "stack of each board's thread")->capture_default_str();
  app.add_option("--setup-connections", c.setup_connections, "parallel API connections")
      ->capture_default_str();
  app.add_option("--summary", summary_file, "write the JSON summary here instead of stdout");
  app.add_flag("--quiet", quiet, "no progress line on stderr");
  std::vector<std::string> watch;
  app.add_option("--timeline", c.timeline_file,
                 "every 500 ms a JSON line: counters, CPU and RSS of this process and --watch");
  app.add_option("--watch", watch, "NAME=PID: a process to sample into --timeline (repeatable)");
  std::string shard;
  app.add_option("--shard", shard, "K/N: this process runs boards i with i % N == K");
  bool setup_only = false;
  app.add_flag("--setup-only", setup_only, "make product, key, packages and devices, then exit");
  app.add_flag("--skip-setup", c.skip_setup, "another run made them (needs its --key-file)");
  app.add_flag("--follow-task", c.follow_task,
               "follow the product's next new task (with --no-task)");
  app.add_option("--ready-file", c.ready_file, "written once this process's boards connected");
  app.add_option("--packages-out", c.packages_out,
                 "write the FOTAV2 full and diff packages here instead of uploading them");
  bool connect_only = false;
  std::string password_file;
  app.add_flag("--connect-only", connect_only,
               "only the connect storm, against any broker that knows the logins (no platform)");
  app.add_option("--write-password-file", password_file,
                 "write device_id:password (this UTC hour) for every board, for a peer broker's "
                 "password_file, and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (!connect_only && password_file.empty()) {
      if (c.api_url.empty() || token_file.empty()) {
        throw std::runtime_error("--api and --token-file are required (but with --connect-only)");
      }
      c.token = ReadToken(token_file);
    }
    c.start_mix = ota::fleet::ParseStartMix(start_mix);
    if (!task_json.empty()) {
      c.task_extra = nlohmann::json::parse(task_json);
      if (!c.task_extra.is_object()) throw std::runtime_error("--task-json: not an object");
    }
    c.create_task = !no_task;
    c.stack_bytes = static_cast<size_t>(stack_kb * 1024);
    c.progress = !quiet;
    if (c.boards <= 0) throw std::runtime_error("--boards must be positive");
    for (const std::string& w : watch) {
      const size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) throw std::runtime_error("--watch NAME=PID");
      c.watch.emplace_back(w.substr(0, eq), std::stoi(w.substr(eq + 1)));
    }
    if (!shard.empty()) {
      const size_t slash = shard.find('/');
      if (slash == std::string::npos) throw std::runtime_error("--shard K/N");
      c.shard = std::stoi(shard.substr(0, slash));
      c.shards = std::stoi(shard.substr(slash + 1));
      if (c.shards < 1 || c.shard < 0 || c.shard >= c.shards)
        throw std::runtime_error("--shard K/N");
    }
    ota::fleet::Fleet fleet(c);
    if (setup_only) {
      fleet.Setup();
      std::printf("ota-fleet: set up %d boards of product %s\n", c.boards, c.product_id.c_str());
      return 0;
    }
    if (!password_file.empty()) {
      fleet.WritePasswordFile(password_file);
      return 0;
    }
    if (connect_only) {
      fleet.ConnectStorm(c.timeout_s);
      fleet.StopBoards();
    } else if (no_task && task_id != 0) {
      fleet.Setup();
      fleet.StartBoards();
      fleet.SetTask(task_id);
      fleet.WaitTask(c.timeout_s);
      fleet.StopBoards();
    } else {
      fleet.Run();
    }
    const nlohmann::json summary = fleet.Summary();
    if (summary_file.empty()) {
      std::cout << summary.dump(2) << "\n";
    } else {
      std::ofstream(summary_file) << summary.dump(2) << "\n";
    }
    std::cout << fleet.SummaryLine() << std::endl;
    return fleet.ExitCode();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-fleet: %s\n", e.what());
    return 1;
  }
}

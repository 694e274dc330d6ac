// `ota-server serve` as a child process for tests that kill it: started on given loopback
// ports and a data directory, killed with any signal (SIGKILL: no cleanup at all), started
// again on the same ports and data. Its output goes to DIR/server.log (appended).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ota::testing {

class ServerProcess {
 public:
  // `binary`: the ota-server executable; `args`: what follows `serve` (ports, data, broker).
  // `wait_port`: a port to wait for after each start.
  ServerProcess(std::filesystem::path binary, std::vector<std::string> args,
                std::filesystem::path log, int wait_port);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool Start();        // true once it accepts on the port
  void Kill(int sig);  // and reaps it
  bool running() const { return pid_ > 0; }
  std::string Log() const;

 private:
  std::filesystem::path binary_, log_;
  std::vector<std::string> args_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace ota::testing

// A real Mosquitto broker for integration tests: started on a free loopback port with the
// given config lines, stopped (and its log kept for assertions) when the object goes.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ota::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();
// Waits until something accepts on 127.0.0.1:port.
bool WaitForPort(int port, int timeout_ms);

class MosquittoProcess {
 public:
  // `extra` lines go into the config after the listener. The broker runs in `dir`.
  MosquittoProcess(const std::filesystem::path& dir, const std::vector<std::string>& extra);
  ~MosquittoProcess();
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  // Stops the broker with `sig` (SIGTERM: it saves its persistence file; SIGKILL: nothing).
  void Stop(int sig);
  // Starts it again with the same configuration and port; true once it accepts.
  bool Start();
  std::string Log() const;  // everything the broker logged so far

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ota::testing

#include "server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "mosquitto_process.hpp"

namespace ota::testing {

ServerProcess::ServerProcess(std::filesystem::path binary, std::vector<std::string> args,
                             std::filesystem::path log, int wait_port)
    : binary_(std::move(binary)), log_(std::move(log)), args_(std::move(args)), port_(wait_port) {}

ServerProcess::~ServerProcess() {
  Kill(SIGTERM);
}

bool ServerProcess::Start() {
  if (pid_ > 0) return true;
  std::vector<std::string> argv = {binary_.string(), "serve"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> raw;
    for (std::string& a : argv)
      raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  if (pid_ < 0 || !WaitForPort(port_, 10000)) {
    Kill(SIGKILL);
    return false;
  }
  return true;
}

void ServerProcess::Kill(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace ota::testing

#include "mosquitto_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace ota::testing {

int FreeLoopbackPort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(s);
  return port;
}

bool WaitForPort(int port, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(s);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

MosquittoProcess::MosquittoProcess(const std::filesystem::path& dir,
                                   const std::vector<std::string>& extra)
    : dir_(dir), port_(FreeLoopbackPort()) {
  const std::filesystem::path conf = dir_ / "mosquitto.conf";
  {
    std::ofstream out(conf);
    out << "listener " << port_ << " 127.0.0.1\n"
        << "allow_anonymous false\n"
        << "persistence false\n"
        << "user root\n"  // only matters when run as root: keep access to the test's files
        << "log_dest file " << (dir_ / "mosquitto.log").string() << "\n"
        << "log_type all\n";
    for (const std::string& line : extra)
      out << line << "\n";
  }
  Start();
}

bool MosquittoProcess::Start() {
  if (pid_ > 0) return true;
  const std::filesystem::path conf = dir_ / "mosquitto.conf";
  pid_ = ::fork();
  if (pid_ == 0) {
    ::execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), nullptr);
    ::_exit(127);
  }
  if (!WaitForPort(port_, 5000)) {
    Stop(SIGKILL);
    return false;
  }
  return true;
}

void MosquittoProcess::Stop(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

MosquittoProcess::~MosquittoProcess() {
  Stop(SIGTERM);
}

std::string MosquittoProcess::Log() const {
  std::ifstream in(dir_ / "mosquitto.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace ota::testing

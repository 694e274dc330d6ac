// The device download listener's TLS front (docs/server.md, "Downloads"). Huawei's C device
// SDK ends its request and header lines with a bare LF, which cpp-httplib 0.11.4 refuses (400);
// RFC 9112 §2.2 lets a server accept it. The front terminates TLS, reads each request's header
// block (at most kMaxHeaderBlock bytes, within a deadline), rewrites every lone LF in it to CRLF
// and relays the bytes both ways to the httplib download server on 127.0.0.1, which does all
// the HTTP: routes, tokens, Range, 429, keep-alive, timeouts. One front worker per connection,
// from a fixed pool; a connection reaches the backend only once its first header block is in.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace ota::server {

inline constexpr size_t kMaxHeaderBlock = 8192;
// SO_RCVBUF of the front's backend connections and SO_SNDBUF of the backend's (the kernel
// doubles both), and SO_SNDBUF of device connections.
inline constexpr int kBackendSocketBuffer = 16384;
inline constexpr int kClientSendBuffer = 65536;

struct DownloadFrontOptions {
  int workers = 64;
  // The TLS handshake and a header block must be in within this (a slow client is cut).
  std::chrono::milliseconds header_timeout{10000};
  // A connection that moves no byte either way this long is closed.
  std::chrono::milliseconds idle_timeout{30000};
};

// Where the header block that starts `data` ends (just past its empty line, LF or CRLF), or
// std::string_view::npos while it is incomplete.
size_t HeaderBlockEnd(std::string_view data);
// The header block with each LF not preceded by CR written as CRLF; nothing else changes.
std::string NormaliseHeaderBlock(std::string_view block);

class DownloadFront {
 public:
  // Throws std::runtime_error when the certificate or key cannot be loaded.
  DownloadFront(const std::filesystem::path& cert, const std::filesystem::path& key,
                DownloadFrontOptions options);
  ~DownloadFront();
  DownloadFront(const DownloadFront&) = delete;
  DownloadFront& operator=(const DownloadFront&) = delete;

  // Listens on host:port (0: any free port); returns the port, or -1.
  int Bind(const std::string& host, int port);
  void set_backend_port(int port) { backend_port_ = port; }
  void set_header_timeout(std::chrono::milliseconds t) { options_.header_timeout = t; }
  // Accepts until Stop() (blocking); open connections are closed within a fraction of a second.
  bool Serve();
  void Stop();
  // Whether a backend connection from 127.0.0.1:local_port is one of the front's.
  bool OwnsBackendConnection(int local_port) const;

 private:
  struct Tls;
  void Handle(int fd);
  bool stopping() const { return stopping_.load(); }

  std::unique_ptr<Tls> tls_;
  DownloadFrontOptions options_;
  int listen_fd_ = -1;
  int backend_port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex ports_mutex_;
  std::set<int> backend_ports_;
};

}  // namespace ota::server

#include "ota/server/download_front.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>  // its ThreadPool
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace ota::server {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 16384;        // at most one TLS record's plaintext per write
constexpr size_t kMaxBuffered = 32768;  // per direction; then the reading side waits
constexpr int kTickMs = 100;            // how often a waiting worker looks at Stop()

// Said by the front itself: the only answer it writes (the backend never sees the request).
std::string TooLargeResponse() {
  const std::string body = R"({"error":"request header block over 8192 bytes"})";
  return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

void NoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Whether a (normalised) header block announces a body. Download requests carry none, so the
// front frames requests by their header blocks alone; one that does carry a body turns the
// connection into a plain pipe (httplib frames, or refuses, the rest).
bool DeclaresBody(std::string_view block) {
  size_t pos = block.find("\r\n");  // past the request line
  while (pos != std::string_view::npos) {
    const size_t start = pos + 2;
    const size_t end = block.find("\r\n", start);
    if (end == std::string_view::npos || end == start) break;
    const std::string_view line = block.substr(start, end - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = Trim(line.substr(0, colon));
      if (EqualsNoCase(name, "transfer-encoding")) return true;
      if (EqualsNoCase(name, "content-length") && Trim(line.substr(colon + 1)) != "0") return true;
    }
    pos = end;
  }
  return false;
}

// Waits until `fd` is ready for `events`; false at the deadline or on Stop().
bool WaitFd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, kTickMs)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

}  // namespace

size_t HeaderBlockEnd(std::string_view data) {
  for (size_t i = data.find('\n'); i != std::string_view::npos; i = data.find('\n', i + 1)) {
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

std::string NormaliseHeaderBlock(std::string_view block) {
  std::string out;
  out.reserve(block.size() + 32);
  for (size_t i = 0; i < block.size(); ++i) {
    if (block[i] == '\n' && (i == 0 || block[i - 1] != '\r')) out += '\r';
    out += block[i];
  }
  return out;
}

struct DownloadFront::Tls {
  SSL_CTX* ctx = nullptr;
  ~Tls() { SSL_CTX_free(ctx); }
};

DownloadFront::DownloadFront(const std::filesystem::path& cert, const std::filesystem::path& key,
                             DownloadFrontOptions options)
    : tls_(std::make_unique<Tls>()), options_(options) {
  tls_->ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* ctx = tls_->ctx;
  // TLS 1.2 and 1.3 (Huawei's SDKs offer 1.2); no SNI needed: one certificate.
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    throw std::runtime_error("https: cannot load the TLS files");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

DownloadFront::~DownloadFront() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

int DownloadFront::Bind(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return -1;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int bound =
      ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = fd;
  return bound;
}

bool DownloadFront::Serve() {
  if (listen_fd_ < 0) return false;
  {
    httplib::ThreadPool pool(static_cast<size_t>(std::max(1, options_.workers)));
    while (!stopping()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, kTickMs) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        // Out of descriptors: wait for connections to end rather than spin.
        if (errno == EMFILE || errno == ENFILE)
          std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        continue;
      }
      pool.enqueue([this, fd] { Handle(fd); });
    }
    pool.shutdown();  // what is still queued sees stopping() and closes at once
  }
  ::close(listen_fd_);
  listen_fd_ = -1;
  return true;
}

void DownloadFront::Stop() {
  stopping_ = true;
}

bool DownloadFront::OwnsBackendConnection(int local_port) const {
  std::lock_guard<std::mutex> g(ports_mutex_);
  return backend_ports_.count(local_port) != 0;
}

void DownloadFront::Handle(int client_fd) {
  using std::chrono::milliseconds;
  const Fd client(client_fd);
  if (stopping()) return;
  NoDelay(client.fd);
  // Fixed, not autotuned (which grows to megabytes): what a device has not read yet stays
  // bounded, and a device that stops reading holds its download slot.
  const int sndbuf = kClientSendBuffer;
  ::setsockopt(client.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(tls_->ctx));
  if (!ssl || SSL_set_fd(ssl.get(), client.fd) != 1) return;
  SSL_set_accept_state(ssl.get());

  // The handshake and the first header block share one deadline: a slow client is cut.
  Clock::time_point header_deadline = Clock::now() + options_.header_timeout;
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl.get());
    if (r == 1) break;
    const int e = SSL_get_error(ssl.get(), r);
    const short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (want == 0 || !WaitFd(client.fd, want, header_deadline, stopping_)) {
      ERR_clear_error();
      return;
    }
  }

  Fd backend;
  int backend_port = -1;  // its local port, known to the backend's ownership check
  struct Unregister {
    DownloadFront* front;
    int* port;
    ~Unregister() {
      if (*port < 0) return;
      std::lock_guard<std::mutex> g(front->ports_mutex_);
      front->backend_ports_.erase(*port);
    }
  } unregister{this, &backend_port};
  auto connect_backend = [&]() {
    backend.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (backend.fd < 0) return false;
    // A small fixed buffer: the backend must feel a slow device, so that its download slot
    // and the 60 s cut hold.
    const int rcvbuf = kBackendSocketBuffer;
    ::setsockopt(backend.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(backend_port_));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(backend.fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return false;
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(backend.fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return false;
    {
      std::lock_guard<std::mutex> g(ports_mutex_);
      backend_port = ntohs(local.sin_port);
      backend_ports_.insert(backend_port);
    }
    NoDelay(backend.fd);
    return ::fcntl(backend.fd, F_SETFL, ::fcntl(backend.fd, F_GETFL) | O_NONBLOCK) == 0;
  };

  std::string in;          // from the client, not yet framed
  std::string to_backend;  // normalised, not yet sent
  std::string to_client;   // from the backend, not yet written
  size_t retry_len = 0;    // an SSL_write to repeat with the same length
  bool raw = false;        // a plain pipe from here on (a request announced a body)
  bool waiting_header = true, client_eof = false, backend_eof = false, closing = false;
  bool backend_shut = false;
  Clock::time_point last_progress = Clock::now();
  char buf[kChunk];

  while (!stopping()) {
    bool progress = false;
    short client_events = 0, backend_events = 0;
    const Clock::time_point now = Clock::now();

    if (!client_eof && !closing && in.size() <= kMaxHeaderBlock &&
        to_backend.size() < kMaxBuffered) {
      ERR_clear_error();
      const int n = SSL_read(ssl.get(), buf, sizeof(buf));
      if (n > 0) {
        if (in.empty() && !raw && !waiting_header) {
          waiting_header = true;
          header_deadline = now + options_.header_timeout;
        }
        in.append(buf, static_cast<size_t>(n));
        progress = true;
      } else {
        const int e = SSL_get_error(ssl.get(), n);
        if (e == SSL_ERROR_WANT_READ) {
          client_events |= POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
          client_events |= POLLOUT;
        } else {
          client_eof = true;
          ERR_clear_error();
        }
      }
    }

    // Frame: each complete header block goes out normalised.
    while (!raw && !closing && !in.empty()) {
      // RFC 9112 §2.2: empty lines before a request line are ignored (Huawei's C SDK ends a
      // request without a token with one too many).
      size_t skip = 0;
      while (skip < in.size() && (in[skip] == '\n' || (in[skip] == '\r' && skip + 1 < in.size() &&
                                                       in[skip + 1] == '\n'))) {
        skip += in[skip] == '\r' ? 2 : 1;
      }
      in.erase(0, skip);
      const size_t end = HeaderBlockEnd(in);
      if (end == std::string::npos && in.size() <= kMaxHeaderBlock) break;
      if (end == std::string::npos || end > kMaxHeaderBlock) {
        if (backend.fd >= 0) return;  // mid-connection: the backend may be answering
        to_client = TooLargeResponse();
        retry_len = 0;
        closing = true;
        in.clear();
        break;
      }
      const std::string block = NormaliseHeaderBlock(std::string_view(in).substr(0, end));
      in.erase(0, end);
      to_backend += block;
      raw = DeclaresBody(block);
      waiting_header = !in.empty() && !raw;
      header_deadline = now + options_.header_timeout;
      if (backend.fd < 0 && !connect_backend()) return;
    }
    if (raw && !in.empty()) {
      to_backend += in;
      in.clear();
    }
    if (in.empty() && !raw) waiting_header = waiting_header && backend.fd < 0;

    if (backend.fd >= 0 && !to_backend.empty()) {
      const ssize_t n = ::send(backend.fd, to_backend.data(), to_backend.size(), MSG_NOSIGNAL);
      if (n > 0) {
        to_backend.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        backend_events |= POLLOUT;
      } else {
        return;
      }
    }
    if (client_eof && backend.fd < 0) return;
    if (client_eof && to_backend.empty() && !backend_shut) {
      // The client is done sending: the backend answers what it has, then closes.
      ::shutdown(backend.fd, SHUT_WR);
      backend_shut = true;
    }

    if (backend.fd >= 0 && !backend_eof && to_client.size() < kMaxBuffered) {
      const ssize_t n = ::recv(backend.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        to_client.append(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        backend_events |= POLLIN;
      } else {
        backend_eof = true;  // keep-alive over, the 60 s cut, or an error: the backend decides
      }
    }

    // What the backend wrote in one go (its header block, then body chunks) goes out in one
    // TLS record each, up to 16 KB.
    if (!to_client.empty()) {
      const size_t len = retry_len != 0 ? retry_len : std::min(to_client.size(), kChunk);
      ERR_clear_error();
      const int n = SSL_write(ssl.get(), to_client.data(), static_cast<int>(len));
      if (n > 0) {
        to_client.erase(0, static_cast<size_t>(n));
        retry_len = 0;
        progress = true;
      } else {
        const int e = SSL_get_error(ssl.get(), n);
        retry_len = len;
        if (e == SSL_ERROR_WANT_WRITE) {
          client_events |= POLLOUT;
        } else if (e == SSL_ERROR_WANT_READ) {
          client_events |= POLLIN;
        } else {
          ERR_clear_error();
          return;
        }
      }
    }

    if (to_client.empty() && (closing || backend_eof)) break;
    if (waiting_header && now > header_deadline) return;  // slow client: cut
    if (progress) {
      last_progress = now;
      continue;
    }
    if (now - last_progress > options_.idle_timeout) return;
    pollfd fds[2] = {{client.fd, client_events, 0}, {backend.fd, backend_events, 0}};
    ::poll(fds, backend.fd >= 0 ? 2 : 1, kTickMs);
  }

  ERR_clear_error();
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  if (!closing) return;
  // After the front's own refusal, read what the client still sends for a moment: closing with
  // unread bytes would reset the connection before the client reads the answer.
  ::shutdown(client.fd, SHUT_WR);
  const Clock::time_point linger = Clock::now() + milliseconds(500);
  size_t drained = 0;
  while (drained < kMaxBuffered && WaitFd(client.fd, POLLIN, linger, stopping_)) {
    const ssize_t n = ::recv(client.fd, buf, sizeof(buf), 0);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) break;
    if (n > 0) drained += static_cast<size_t>(n);
  }
}

}  // namespace ota::server

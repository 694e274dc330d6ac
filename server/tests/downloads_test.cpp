// Device downloads as Huawei's device SDKs make them (docs/notes/iotda-sdk-behaviour.md §5),
// against the real download listener (TLS front + httplib backend) on loopback: the C SDK's
// bare-LF request sent byte for byte by a raw OpenSSL client (TLS 1.2, no SNI, no
// verification, as the SDK does), Range, 429, keep-alive, the header cap and slow clients;
// the public download URL, the certificate's names, and broker-config's default ports.
#include <gtest/gtest.h>

#include <httplib.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mosquitto_process.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/service.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using Clock = std::chrono::steady_clock;

const BoardProfile& kBoard = kStm32f429Fire;

uint32_t LoadAddress() {
  return kBoard.internal_base + kBoard.partition(PartitionId::kRunning).offset;
}

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A TLS client that sends exactly the bytes it is given: TLS 1.2 at most, no SNI, no
// certificate check (Huawei's C SDK: a bare SSL_CTX, SSL_connect).
class RawTls {
 public:
  explicit RawTls(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~RawTls() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  std::string version() const { return SSL_get_version(ssl_); }
  bool Write(const std::string& bytes) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  // One SSL_read (what the C SDK parses its response headers from); "" on EOF or timeout.
  std::string ReadOnce() {
    char buf[4095];
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  // A whole response: the header block, then Content-Length bytes.
  struct Response {
    std::string first_read, head, body;
    int status = 0;
    long content_length = -1;
  };
  Response ReadResponse() {
    Response r;
    std::string data = ReadOnce();
    r.first_read = data;
    size_t end;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
      const std::string more = ReadOnce();
      if (more.empty()) return r;
      data += more;
    }
    r.head = data.substr(0, end + 4);
    r.body = data.substr(end + 4);
    if (r.head.size() > 12) r.status = std::atoi(r.head.c_str() + 9);
    const size_t cl = r.head.find("Content-Length: ");
    if (cl != std::string::npos) r.content_length = std::atol(r.head.c_str() + cl + 16);
    while (r.content_length >= 0 && static_cast<long>(r.body.size()) < r.content_length) {
      const std::string more = ReadOnce();
      if (more.empty()) break;
      r.body += more;
    }
    return r;
  }
  // Whether the server closes the connection within `ms` (reading and dropping what comes).
  bool ClosedWithin(int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < until) {
      char buf[4096];
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) continue;
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SSL) return true;
      if (e == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EWOULDBLOCK) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

class Downloads : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::make_unique<Platform>(dir_.path());
    api_ = std::make_unique<HttpApi>(*platform_, nullptr, 16);
    api_->set_download_header_timeout(std::chrono::milliseconds(1000));
    ASSERT_GT(api_->Bind("127.0.0.1", 0), 0);
    port_ = api_->BindDownloads("127.0.0.1", 0);
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { api_->Serve(); });
    download_thread_ = std::thread([this] { api_->ServeDownloads(); });

    Registry& reg = platform_->registry();
    reg.CreateProduct("fire", "FIRE", "embedfire", "MQTT", nlohmann::json());
    reg.AddProductKey("fire", host::PublicKeyPem(key_.pkey()), false);
    reg.CreateDevice("fire", "n1", "", "");
    package_ = Package("FOTAV2", 20000, "fw-v2.bin");
  }
  void TearDown() override {
    api_->Stop();
    thread_.join();
    download_thread_.join();
  }

  // A signed package of about `size` bytes, stored under `file_name`; its bytes in `bytes_`.
  PackageRecord Package(const char* version, uint32_t size, const std::string& file_name) {
    host::PackageSpec spec;
    spec.version = version;
    spec.image = testing::MakeTestImage(version, size, LoadAddress(), 7);
    const std::vector<uint8_t> pkg = testing::MakePackage(spec, &key_);
    bytes_[version] = std::string(pkg.begin(), pkg.end());
    return platform_->packages().Upload("fire", pkg, file_name);
  }
  std::string Path(const PackageRecord& p, const std::string& device = "fire_n1") const {
    return "/download/devices/" + device + "/packages/" + std::to_string(p.package_id);
  }
  // As the API issues them: for the device's current generation (none for an unknown one).
  std::string Token(const PackageRecord& p, const std::string& device = "fire_n1") {
    std::lock_guard<std::mutex> guard(platform_->lock());
    int64_t generation = 0;
    try {
      generation = platform_->registry().Generation(device);
    } catch (const ApiError&) {
    }
    return platform_->download_tokens().Issue(device, p.package_id, std::time(nullptr) + 600, 0,
                                              generation);
  }
  // One GET of `path` on a fresh connection, with `headers` (CRLF-terminated lines).
  RawTls::Response Get(const std::string& path, const std::string& headers) {
    RawTls c(port_);
    EXPECT_TRUE(c.connected());
    c.Write("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n");
    return c.ReadResponse();
  }
  // Huawei's C SDK's request, byte for byte (IOTA_GetHttpHeader).
  std::string CSdkRequest(const PackageRecord& p, const std::string& extra = "") {
    return "GET " + Path(p) + " HTTP/1.1\nHost: 127.0.0.1\nAuthorization:Bearer " + Token(p) +
           "\n" + extra + "Content-Type: application/json\r\n\r\n";
  }

  testing::TempDir dir_{"ota-downloads"};
  testing::TestKey key_;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<HttpApi> api_;
  int port_ = -1;
  std::thread thread_, download_thread_;
  PackageRecord package_;
  std::map<std::string, std::string> bytes_;
};

TEST_F(Downloads, BareLfRequestLikeHuaweiCSdk_Served200WithFileName) {
  RawTls c(port_);
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.version(), "TLSv1.2");
  ASSERT_TRUE(c.Write(CSdkRequest(package_)));
  const RawTls::Response r = c.ReadResponse();
  // What the C SDK reads from its first SSL_read: "200" at offset 9, "Content-Length: ",
  // "filename=" up to CR, and the end of the header block.
  EXPECT_EQ(r.first_read.substr(0, 12), "HTTP/1.1 200") << r.head;
  EXPECT_NE(r.first_read.find("\r\n\r\n"), std::string::npos) << "header block split";
  EXPECT_NE(r.first_read.find("Content-Length: " + std::to_string(package_.size) + "\r\n"),
            std::string::npos)
      << r.head;
  EXPECT_NE(r.head.find("Content-Disposition: attachment; filename=fw-v2.bin\r\n"),
            std::string::npos)
      << r.head;
  EXPECT_EQ(r.head.find('"'), std::string::npos) << "quotes end up in the C SDK's file name";
  EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(r.head.find("Content-Encoding"), std::string::npos);
  EXPECT_EQ(r.content_length, package_.size);
  EXPECT_TRUE(r.body == bytes_["FOTAV2"]) << "body differs, " << r.body.size() << " bytes";

  // Without a token (the SDK's v2 request), one empty line too many: 401, not 400.
  RawTls c2(port_);
  ASSERT_TRUE(c2.Write("GET " + Path(package_) + " HTTP/1.1\nHost: 127.0.0.1\n\r\n\r\n"));
  EXPECT_EQ(c2.ReadResponse().status, 401);
}

TEST_F(Downloads, PythonSdkRequest_NoContentEncodingExactLength) {
  RawTls c(port_);
  ASSERT_TRUE(c.Write("GET " + Path(package_) +
                      " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                      "\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: "
                      "keep-alive\r\nAuthorization: Bearer " +
                      Token(package_) + "\r\n\r\n"));
  const RawTls::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.head.find("Content-Encoding"), std::string::npos) << r.head;
  EXPECT_EQ(r.content_length, package_.size);
  EXPECT_TRUE(r.body == bytes_["FOTAV2"]);
}

TEST_F(Downloads, FileName_PlainBasenameWhateverTheUploadName) {
  const PackageRecord odd = Package("FOTAV3", 20000, "../dir/my \"fw\";v3.bin");
  const PackageRecord none = Package("FOTAV4", 20000, "...");
  RawTls c(port_);
  ASSERT_TRUE(c.Write(CSdkRequest(odd)));
  RawTls::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("filename=my__fw__v3.bin\r\n"), std::string::npos) << r.head;
  RawTls c2(port_);
  ASSERT_TRUE(c2.Write(CSdkRequest(none)));
  r = c2.ReadResponse();
  EXPECT_NE(r.head.find("filename=fire-FOTAV4.bin\r\n"), std::string::npos) << r.head;
}

TEST_F(Downloads, RangeStill206_KeepAliveSecondRequestOnTheSameConnection) {
  RawTls c(port_);
  const std::string token = Token(package_);
  // Bare LF and a Range, twice on one connection (the agent's 4 KB blocks, kept alive).
  for (int block = 0; block < 2; ++block) {
    const int from = block * 4096;
    ASSERT_TRUE(c.Write("GET " + Path(package_) +
                        " HTTP/1.1\nHost: 127.0.0.1\nRange: bytes=" + std::to_string(from) + "-" +
                        std::to_string(from + 4095) + "\nAuthorization: Bearer " + token + "\n\n"));
    const RawTls::Response r = c.ReadResponse();
    EXPECT_EQ(r.status, 206) << "request " << block << ": " << r.head;
    EXPECT_NE(r.head.find("Content-Range: bytes " + std::to_string(from) + "-" +
                          std::to_string(from + 4095) + "/" + std::to_string(package_.size)),
              std::string::npos)
        << r.head;
    EXPECT_EQ(r.body, bytes_["FOTAV2"].substr(static_cast<size_t>(from), 4096));
  }
  // And whole, a third time, with CRLF.
  ASSERT_TRUE(c.Write("GET " + Path(package_) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                      "Bearer " +
                      token + "\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().status, 200);
}

// An error answer whole whatever Range the request had: its complete JSON, the exact
// Content-Length, no Content-Range (but 416's "bytes */SIZE"). A device resuming by Range with
// an expired token must read why.
TEST_F(Downloads, RangeRequestRefused_WholeJsonErrorWithoutContentRange) {
  const std::string size = std::to_string(package_.size);
  auto expect_error = [](const RawTls::Response& r, int status, const std::string& message) {
    EXPECT_EQ(r.status, status) << r.head;
    EXPECT_EQ(r.content_length, static_cast<long>(r.body.size())) << r.head;
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(j, nlohmann::json({{"error", message}})) << "body: " << r.body;
    EXPECT_NE(r.head.find("Content-Type: application/json\r\n"), std::string::npos) << r.head;
  };
  for (const char* range : {"bytes=10-", "bytes=0-3", "bytes=100-199", "bytes=-5"}) {
    SCOPED_TRACE(range);
    const std::string with_range = std::string("Range: ") + range + "\r\n";
    RawTls::Response r = Get(Path(package_), with_range);
    expect_error(r, 401, "missing download token");
    EXPECT_EQ(r.head.find("Content-Range"), std::string::npos) << r.head;

    const std::string expired =
        platform_->download_tokens().Issue("fire_n1", package_.package_id, std::time(nullptr) - 1);
    r = Get(Path(package_), with_range + "Authorization: Bearer " + expired + "\r\n");
    expect_error(r, 401, "download token expired");
    EXPECT_EQ(r.head.find("Content-Range"), std::string::npos) << r.head;

    r = Get(Path(package_),
            with_range + "Authorization: Bearer " + Token(package_, "fire_n2") + "\r\n");
    expect_error(r, 403, "download token is for another device");
    EXPECT_EQ(r.head.find("Content-Range"), std::string::npos) << r.head;
  }
  // A range past the end of the file: 416 with its JSON and the file's size.
  for (const std::string& range : {"bytes=" + size + "-", "bytes=" + size + "0-" + size + "9"}) {
    SCOPED_TRACE(range);
    const RawTls::Response r =
        Get(Path(package_),
            "Range: " + range + "\r\nAuthorization: Bearer " + Token(package_) + "\r\n");
    expect_error(r, 416, "range outside the file");
    EXPECT_NE(r.head.find("Content-Range: bytes */" + size + "\r\n"), std::string::npos) << r.head;
  }
  // A Range httplib cannot parse: its own 416, with a JSON body too.
  const RawTls::Response bad =
      Get(Path(package_), "Range: lines=1-2\r\nAuthorization: Bearer " + Token(package_) + "\r\n");
  expect_error(bad, 416, "invalid Range header");
  EXPECT_EQ(bad.head.find("Content-Range"), std::string::npos) << bad.head;
  // And a satisfiable range still gets its 206 slice.
  const RawTls::Response ok =
      Get(Path(package_), "Range: bytes=10-\r\nAuthorization: Bearer " + Token(package_) + "\r\n");
  EXPECT_EQ(ok.status, 206) << ok.head;
  EXPECT_NE(ok.head.find("Content-Range: bytes 10-" + std::to_string(package_.size - 1) + "/" +
                         size + "\r\n"),
            std::string::npos)
      << ok.head;
  EXPECT_TRUE(ok.body == bytes_["FOTAV2"].substr(10)) << ok.body.size() << " bytes";
}

TEST_F(Downloads, FifthAtOnceForOneDevice_429UntilOneEnds) {
  // 16 pipelined requests for ~500 KB each: more than the socket buffers on the way hold, so
  // a client that stops reading keeps a response (and its slot) open.
  const PackageRecord big = Package("FOTAV5", 500000, "big.bin");
  std::vector<std::unique_ptr<RawTls>> held;
  for (int i = 0; i < kMaxDownloadsPerDevice; ++i) {
    held.push_back(std::make_unique<RawTls>(port_, 4096));
    std::string requests;
    for (int n = 0; n < 16; ++n)
      requests += CSdkRequest(big);
    ASSERT_TRUE(held.back()->Write(requests));
    ASSERT_EQ(held.back()->ReadOnce().substr(0, 12), "HTTP/1.1 200");
  }
  RawTls fifth(port_);
  ASSERT_TRUE(fifth.Write(CSdkRequest(package_)));
  const RawTls::Response r = fifth.ReadResponse();
  EXPECT_EQ(r.status, 429) << r.head;
  EXPECT_NE(r.head.find("Retry-After: 1"), std::string::npos);
  held.clear();  // gone: their slots come back once the backend notices
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    RawTls again(port_);
    again.Write(CSdkRequest(package_));
    served = again.ReadResponse().status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(served) << "slots not given back";
}

TEST_F(Downloads, HeaderBlockOverTheCap_Refused431AndClosed) {
  RawTls c(port_);
  ASSERT_TRUE(c.Write("GET " + Path(package_) +
                      " HTTP/1.1\nHost: 127.0.0.1\nX-Pad: " + std::string(kMaxHeaderBlock, 'a')));
  const auto t0 = Clock::now();
  const RawTls::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 431) << r.head;
  EXPECT_TRUE(c.ClosedWithin(2000));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  // A client that goes on sending is not read forever: the connection is closed.
  RawTls d(port_);
  bool write_failed = false;
  for (int i = 0; i < 1000 && !write_failed; ++i) {
    write_failed = !d.Write(std::string(1024, 'b'));
  }
  EXPECT_TRUE(write_failed || d.ClosedWithin(2000));
}

TEST_F(Downloads, SlowClients_CutAtTheHeaderDeadline) {
  // A byte every 200 ms never completes its header block within the (test's) 1 s.
  RawTls loris(port_);
  ASSERT_TRUE(loris.connected());
  const auto t0 = Clock::now();
  bool cut = false;
  const std::string request = CSdkRequest(package_);
  for (size_t i = 0; i < request.size() - 1 && !cut; ++i) {
    cut = !loris.Write(request.substr(i, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (Clock::now() - t0 > std::chrono::milliseconds(1500)) break;
  }
  EXPECT_TRUE(cut || loris.ClosedWithin(1500)) << "a slow header kept its connection";
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(4));
  // A TCP connection that never starts TLS is cut too.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port_));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char b;
  EXPECT_EQ(::recv(fd, &b, 1, 0), 0) << "not closed";
  ::close(fd);
  // Meanwhile and after, a normal download is served.
  RawTls c(port_);
  ASSERT_TRUE(c.Write(CSdkRequest(package_)));
  EXPECT_EQ(c.ReadResponse().status, 200);
}

TEST_F(Downloads, Backend_ServesOnlyTheFront) {
  httplib::Client direct("127.0.0.1", api_->download_backend_port());
  direct.set_bearer_token_auth(Token(package_).c_str());
  auto r = direct.Get(Path(package_).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << "the plain backend answered a connection not from the front";
}

// The download URL devices get: from --public-host (with the port), never a wildcard bind.
TEST(PublicDownloadUrl, PublicHostInTheUrl_WildcardBindWithoutOneRefused) {
  testing::TempDir dir("ota-public-url");
  Platform platform(dir.path());
  ServiceOptions o;
  o.http_port = 0;
  o.download_port = 0;
  o.mqtt_enabled = false;
  o.http_host = "0.0.0.0";
  std::string error;
  {
    Service refused(platform, o);
    EXPECT_FALSE(refused.Start(&error));
    EXPECT_NE(error.find("--public-host"), std::string::npos) << error;
  }
  o.http_host = "127.0.0.1";
  o.public_download_url = "https://fota.example.com/dl";  // no port: the C SDK cannot parse it
  EXPECT_NE(CheckPublicDownload(o).find("port"), std::string::npos);
  o.public_download_url = "";
  o.public_host = "fota.example.com:8444";
  EXPECT_NE(CheckPublicDownload(o), "");
  o.public_host = "fota.example.com";
  EXPECT_EQ(DownloadUrlHost(o), "fota.example.com");
  Service service(platform, o);
  ASSERT_TRUE(service.Start(&error)) << error;
  EXPECT_EQ(service.api().download_base_url(),
            "https://fota.example.com:" + std::to_string(service.download_port()));
  service.Stop();
}

TEST(TlsNames, CertificateNamesWhatIsAsked_RemadeBySameCaWhenItLacksOne) {
  testing::TempDir dir("ota-tls-names");
  auto cert_of = [&] {
    FILE* f = std::fopen((dir.path() / "server.pem").c_str(), "r");
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return std::unique_ptr<X509, void (*)(X509*)>(x, X509_free);
  };
  EnsureTlsFiles(dir.path());
  const std::string ca = Slurp(dir.path() / "ca.pem");
  EXPECT_EQ(X509_check_host(cert_of().get(), "fota.example.com", 0, 0, nullptr), 0);

  EnsureTlsFiles(dir.path(), {"fota.example.com", "192.0.2.7", "2001:db8::1"});
  auto cert = cert_of();
  EXPECT_EQ(X509_check_host(cert.get(), "fota.example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "192.0.2.7", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "2001:db8::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(Slurp(dir.path() / "ca.pem"), ca) << "devices pin the CA: it stays";
  const std::string made = Slurp(dir.path() / "server.pem");
  EnsureTlsFiles(dir.path(), {"192.0.2.7"});
  EXPECT_EQ(Slurp(dir.path() / "server.pem"), made) << "names it has: not made again";

  // A torn regeneration (a new key, the old certificate) is repaired.
  std::filesystem::copy_file(dir.path() / "ca.key", dir.path() / "server.key",
                             std::filesystem::copy_options::overwrite_existing);
  EnsureTlsFiles(dir.path());
  EXPECT_NE(Slurp(dir.path() / "server.pem"), made);
  // Names that would inject into the extension are refused.
  EXPECT_THROW(EnsureTlsFiles(dir.path(), {"a.example,DNS:evil.example"}), std::runtime_error);
  EXPECT_THROW(EnsureTlsFiles(dir.path(), {"evil example"}), std::runtime_error);
}

// Runs ota-server; its stdout, and its exit status in *status.
std::string RunServer(const std::string& args, int* status) {
  const std::string cmd = std::string(OTA_SERVER_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;)
    out.append(buf, n);
  *status = WEXITSTATUS(::pclose(p));
  return out;
}

TEST(BrokerConfig, DefaultPorts_Mqtts8883AndPlain1883) {
  testing::TempDir dir("ota-broker-config");
  int status = -1;
  const std::string conf =
      RunServer("broker-config --data " + dir.path().string() + " --plugin /x.so", &status);
  EXPECT_EQ(status, 0) << conf;
  EXPECT_NE(conf.find("\nlistener 8883 127.0.0.1\ncertfile "), std::string::npos) << conf;
  EXPECT_NE(conf.find("\ntls_version tlsv1.2\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("\nlistener 1883 127.0.0.1\n"), std::string::npos) << conf;
}

TEST(BrokerConfig, MqttsListenerAcceptsTls12) {
  testing::TempDir dir("ota-broker-tls12");
  Platform platform(dir.path() / "data");
  const int mqtts = testing::FreeLoopbackPort();
  std::istringstream lines(platform.MosquittoConfig(OTA_AUTH_PLUGIN, mqtts, 0, "127.0.0.1"));
  std::vector<std::string> conf;
  for (std::string line; std::getline(lines, line);)
    conf.push_back(line);
  testing::MosquittoProcess broker(dir.path(), conf);
  ASSERT_TRUE(broker.running());
  ASSERT_TRUE(testing::WaitForPort(mqtts, 5000)) << broker.Log();
  RawTls c(mqtts);
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.version(), "TLSv1.2");
}

TEST(ServeCommand, WildcardBindWithoutPublicHost_RefusedAtStart) {
  testing::TempDir dir("ota-serve-bind");
  int status = -1;
  const std::string out = RunServer(
      "serve --data " + dir.path().string() + " --bind 0.0.0.0 --http-port 0 --no-mqtt", &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("--public-host"), std::string::npos) << out;
}

}  // namespace
}  // namespace ota::server

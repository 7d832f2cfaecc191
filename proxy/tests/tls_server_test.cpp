// The server with TLS on, checked from the outside with the real curl and openssl binaries over
// loopback: the certificate and its CA, refused protocol versions and cipher suites, ALPN, file
// bodies (no sendfile under TLS) and uploads, the handshake under the header timeout, a
// graceful stop, clear errors for unusable certificate files, and the plain redirect listener.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "berth/core/error.hpp"
#include "berth/proxy/https_redirect.hpp"
#include "berth/proxy/server.hpp"
#include "berth/proxy/tls_material.hpp"
#include "berth/testing/eventually.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::RawConnection;
using testing::run;
using testing::TempDir;

std::string read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A body that is a whole file, offered for sendfile like the registry's blob bodies.
class WholeFileSource final : public BodySource {
public:
  explicit WholeFileSource(fs::path const& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~WholeFileSource() override { ::close(fd_); }
  std::optional<FileSpan> file_span() const override { return FileSpan{fd_, 0}; }
  std::size_t read(std::span<char> buffer) override {
    auto got = ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset_));
    if (got < 0) throw Error("read failed");
    offset_ += static_cast<std::uint64_t>(got);
    return static_cast<std::size_t>(got);
  }

private:
  int fd_;
  std::uint64_t offset_ = 0;
};

// Counts and keeps what it is sent.
class KeepingSink final : public BodySink {
public:
  explicit KeepingSink(std::string& into) : into_(into) {}
  void write(std::span<char const> chunk) override { into_.append(chunk.data(), chunk.size()); }
  Response finish() override { return json_response(201, "{\"received\":" + std::to_string(into_.size()) + "}"); }

private:
  std::string& into_;
};

class TlsServer : public ::testing::Test {
protected:
  void SetUp() override {
    material_ = ensure_local_tls(dir_.path() / "tls", {"localhost", "127.0.0.1"});
    blob_ = dir_.path() / "blob.bin";
    std::string bytes(5 * 1024 * 1024 + 123, '\0');
    for (std::size_t byte_idx = 0; byte_idx < bytes.size(); ++byte_idx)
      bytes[byte_idx] = static_cast<char>((byte_idx * 7919) % 251);
    std::ofstream(blob_, std::ios::binary) << bytes;
  }
  void TearDown() override {
    if (server_) {
      server_->stop();
      thread_.join();
    }
  }

  Router router() {
    Router routes;
    routes.add(Method::get, "/hello", [](Request const& request) -> Reply {
      return json_response(200, "{\"hello\":\"" + request.query + "\"}");
    });
    routes.add(Method::get, "/blob", [this](Request const&) -> Reply {
      Response response;
      response.headers.set("Content-Type", "application/octet-stream");
      response.body = std::make_unique<WholeFileSource>(blob_);
      response.stream_length = fs::file_size(blob_);
      return response;
    });
    // /sized?N: the first N bytes of the blob, as a file body of its own.
    routes.add(Method::get, "/sized", [this](Request const& request) -> Reply {
      auto const file = dir_.path() / ("sized-" + request.query);
      std::ofstream(file, std::ios::binary) << read_file(blob_).substr(0, std::stoul(request.query));
      Response response;
      response.body = std::make_unique<WholeFileSource>(file);
      response.stream_length = fs::file_size(file);
      return response;
    });
    routes.add(Method::put, "/upload",
               [this](Request const&) -> Reply { return std::make_unique<KeepingSink>(uploaded_); });
    return routes;
  }

  ServerConfig tls_config() const {
    ServerConfig config;
    config.port = 0;
    config.threads = 2;
    config.tls = {true, material_.server_cert, material_.server_key};
    return config;
  }

  void start(ServerConfig config, bool with_redirect = false) {
    server_ = std::make_unique<Server>(config, router());
    if (with_redirect) {
      Router redirect;
      redirect.add(Method::get, "/healthz", [](Request const&) -> Reply { return json_response(200, "{}"); });
      redirect.add_prefix("/", https_redirect(server_->local_port()));
      auto address = server_->add_plain_listener("127.0.0.1", 0, std::move(redirect));
      redirect_port_ = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    }
    thread_ = std::thread([this] { server_->run(); });
  }

  std::string url(std::string const& path) const {
    return "https://127.0.0.1:" + std::to_string(server_->local_port()) + path;
  }
  testing::RunResult curl(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"/usr/bin/curl",           "-sS", "--max-time", "30", "--cacert",
                                     material_.ca_cert.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  // `openssl s_client` with `args`, sending nothing; returns its output.
  testing::RunResult s_client(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"/usr/bin/openssl", "s_client",
                                     "-connect",         "127.0.0.1:" + std::to_string(server_->local_port()),
                                     "-CAfile",          material_.ca_cert.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);  // stdin is /dev/null: s_client ends right after the handshake
  }

  TempDir dir_;
  TlsMaterial material_;
  fs::path blob_;
  std::string uploaded_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::uint16_t redirect_port_ = 0;
};

TEST_F(TlsServer, ServesHttpsWithACertificateItsCaVerifies) {
  start(tls_config());
  // Two URLs on one curl: the second request reuses the kept-alive TLS connection.
  auto result = curl({"-w", " %{http_code} %{num_connects}\n", url("/hello?a"), url("/hello?b")});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "{\"hello\":\"a\"} 200 1\n{\"hello\":\"b\"} 200 0\n");
  // Without the CA the certificate is not trusted.
  auto untrusted = run({"/usr/bin/curl", "-sS", "--max-time", "30", url("/hello")});
  EXPECT_NE(untrusted.exit_code, 0);
  EXPECT_NE(untrusted.output.find("certificate"), std::string::npos) << untrusted.output;
}

TEST_F(TlsServer, RefusesTls10And11AndWeakCipherSuites) {
  start(tls_config());
  for (auto version : {"-tls1", "-tls1_1"}) {
    // Security level 0: an OpenSSL 3.2+ client will not even offer TLS 1.0/1.1 otherwise, and the
    // refusal under test is the server's.
    auto refused = s_client({version, "-cipher", "DEFAULT@SECLEVEL=0"});
    EXPECT_NE(refused.exit_code, 0) << version << ": " << refused.output;
    EXPECT_NE(refused.output.find("alert protocol version"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("Cipher is (NONE)"), std::string::npos) << refused.output;
  }
  auto curl_11 = curl({"--tlsv1.1", "--tls-max", "1.1", url("/hello")});
  EXPECT_NE(curl_11.exit_code, 0) << curl_11.output;
  // TLS 1.2 without forward secrecy, or with CBC: refused.
  for (auto cipher : {"AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"}) {
    auto weak = s_client({"-tls1_2", "-cipher", cipher});
    EXPECT_NE(weak.exit_code, 0) << cipher << ": " << weak.output;
  }
  for (auto version : {"-tls1_2", "-tls1_3"}) {
    auto accepted = s_client({version});
    EXPECT_EQ(accepted.exit_code, 0) << version << ": " << accepted.output;
    EXPECT_NE(accepted.output.find("Verify return code: 0 (ok)"), std::string::npos) << accepted.output;
  }
  auto tls12 = s_client({"-tls1_2"});
  EXPECT_NE(tls12.output.find("Cipher is ECDHE-ECDSA-"), std::string::npos) << tls12.output;
}

TEST_F(TlsServer, AdvertisesHttp11WithAlpn) {
  start(tls_config());
  auto offered = s_client({"-alpn", "h2,http/1.1"});
  ASSERT_EQ(offered.exit_code, 0) << offered.output;
  EXPECT_NE(offered.output.find("ALPN protocol: http/1.1"), std::string::npos) << offered.output;
  // A client offering only protocols berth does not speak still connects, without ALPN.
  auto h2_only = s_client({"-alpn", "h2"});
  ASSERT_EQ(h2_only.exit_code, 0) << h2_only.output;
  EXPECT_NE(h2_only.output.find("No ALPN negotiated"), std::string::npos) << h2_only.output;
}

TEST_F(TlsServer, SendsFileBodiesAndReceivesUploads) {
  start(tls_config());
  auto downloaded = dir_.path() / "downloaded.bin";
  auto get = curl({"-o", downloaded.string(), "-w", "%{http_code}", url("/blob")});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_EQ(get.output, "200");
  EXPECT_EQ(read_file(downloaded), read_file(blob_));

  auto put = curl({"-T", blob_.string(), url("/upload")});
  ASSERT_EQ(put.exit_code, 0) << put.output;
  EXPECT_EQ(put.output, "{\"received\":" + std::to_string(fs::file_size(blob_)) + "}");
  EXPECT_EQ(uploaded_, read_file(blob_));
}

// File bodies that go out with their head in one write, and those around the edges of that
// path, one after the other on one keep-alive connection.
TEST_F(TlsServer, SendsFileBodiesOfEverySizeOnOneConnection) {
  start(tls_config());
  std::vector<std::size_t> const sizes = {
      0,          1, 1000, 64 * 1024, 64 * 1024 + 1, 256 * 1024 - 400, 256 * 1024 - 100, 256 * 1024, 256 * 1024 + 1,
      1024 * 1024};
  std::vector<std::string> args = {"-w", "%{http_code} %{size_download} %{num_connects}\n"};
  for (auto const size : sizes) {
    args.push_back("-o");
    args.push_back((dir_.path() / ("got-" + std::to_string(size))).string());
    args.push_back(url("/sized?" + std::to_string(size)));
  }
  auto const got = curl(args);
  ASSERT_EQ(got.exit_code, 0) << got.output;
  std::string expected;
  for (std::size_t size_idx = 0; size_idx < sizes.size(); ++size_idx)
    expected += "200 " + std::to_string(sizes[size_idx]) + (size_idx == 0 ? " 1\n" : " 0\n");
  EXPECT_EQ(got.output, expected);
  auto const bytes = read_file(blob_);
  for (auto const size : sizes)
    EXPECT_EQ(read_file(dir_.path() / ("got-" + std::to_string(size))), bytes.substr(0, size)) << size;
}

TEST_F(TlsServer, DropsAClientThatNeverHandshakesWhileServingOthers) {
  auto config = tls_config();
  config.header_timeout = 1s;
  start(config);
  RawConnection silent("127.0.0.1", server_->local_port());  // TCP only, no ClientHello
  auto served = curl({url("/hello?other")});
  EXPECT_EQ(served.output, "{\"hello\":\"other\"}");
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.wait_closed(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

TEST_F(TlsServer, PlainHttpOnTheTlsPortIsDropped) {
  start(tls_config());
  RawConnection plain("127.0.0.1", server_->local_port());
  plain.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_FALSE(plain.read_response(false, 10s));
  EXPECT_TRUE(testing::eventually(10s, [&] { return server_->connection_count() == 0; }));
}

TEST_F(TlsServer, StopClosesIdleTlsConnections) {
  start(tls_config());
  RawConnection idle("127.0.0.1", server_->local_port());
  ASSERT_TRUE(testing::eventually(10s, [&] { return server_->connection_count() == 1; }));
  server_->stop();
  EXPECT_TRUE(idle.wait_closed(10s));
  thread_.join();
  server_.reset();
}

TEST_F(TlsServer, RedirectListenerSends308ToHttpsAndServesHealth) {
  start(tls_config(), true);
  auto https_port = std::to_string(server_->local_port());
  RawConnection connection("127.0.0.1", redirect_port_);
  connection.send(
      "PUT /v2/api/app/blobs/uploads/x?digest=sha256:1 HTTP/1.1\r\nHost: registry.example:80\r\n"
      "Content-Length: 0\r\n\r\n");
  auto moved = connection.read_response();
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->status, 308);
  EXPECT_EQ(moved->header("Location"),
            "https://registry.example:" + https_port + "/v2/api/app/blobs/uploads/x?digest=sha256:1");
  connection.send("GET /healthz HTTP/1.1\r\nHost: registry.example\r\n\r\n");
  auto health = connection.read_response();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  connection.send("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
  EXPECT_EQ(connection.read_response()->header("Location"), "https://[::1]:" + https_port + "/");
  connection.send("GET / HTTP/1.1\r\nHost: evil\"host\r\n\r\n");
  EXPECT_EQ(connection.read_response()->status, 400);

  // curl follows it, keeping the method, to the TLS listener.
  auto followed = curl({"-L", "http://localhost:" + std::to_string(redirect_port_) + "/hello?followed"});
  ASSERT_EQ(followed.exit_code, 0) << followed.output;
  EXPECT_EQ(followed.output, "{\"hello\":\"followed\"}");
}

TEST_F(TlsServer, ReloadServesTheNewCertificateToNewConnections) {
  start(tls_config());
  auto other = ensure_local_tls(dir_.path() / "other-ca", {"127.0.0.1"});
  auto with_ca = [&](fs::path const& ca) {
    return run({"/usr/bin/curl", "-sS", "--max-time", "30", "--cacert", ca.string(), url("/hello?x")});
  };
  ASSERT_EQ(with_ca(material_.ca_cert).exit_code, 0);

  server_->reload_tls({true, other.server_cert, other.server_key});
  EXPECT_EQ(with_ca(other.ca_cert).output, "{\"hello\":\"x\"}");
  EXPECT_NE(with_ca(material_.ca_cert).exit_code, 0);

  // Unusable files: an error, and the current certificate stays.
  EXPECT_THROW(server_->reload_tls({true, dir_.path() / "missing.crt", other.server_key}), Error);
  EXPECT_EQ(with_ca(other.ca_cert).output, "{\"hello\":\"x\"}");
}

TEST_F(TlsServer, UnusableCertificateFilesAreClearErrors) {
  auto expect_error = [](ServerConfig const& config, std::string const& start) {
    try {
      Server server(config, Router{});
      ADD_FAILURE() << "expected an error starting with: " << start;
    } catch (Error const& error) {
      std::string message = error.what();
      EXPECT_TRUE(message.starts_with(start)) << message;
      EXPECT_NE(message.find("\nHINT: check server.tls.cert and server.tls.key"), std::string::npos) << message;
    }
  };
  auto config = tls_config();
  config.tls.cert_chain = dir_.path() / "missing.crt";
  expect_error(config, "cannot load TLS certificate chain " + config.tls.cert_chain.string() + ": ");

  config = tls_config();
  config.tls.private_key = dir_.write("garbage.key", "not a key\n");
  expect_error(config, "cannot load TLS private key " + config.tls.private_key.string() + ": ");

  // The CA's key is a valid key, but not the server certificate's.
  config = tls_config();
  config.tls.private_key = material_.ca_cert.parent_path() / "ca.key";
  expect_error(config, "TLS private key " + config.tls.private_key.string() + " does not match certificate " +
                           config.tls.cert_chain.string() + "\n");
}

}  // namespace
}  // namespace berth::proxy

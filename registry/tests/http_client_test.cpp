// The HTTP client against berth's own server on loopback with real TLS (a local CA made by the
// proxy module): verification against the extra CA, hostname/IP checks, keep-alive reuse, a
// large body streamed from a file with flat memory, and the errors for refused connections,
// untrusted certificates and silent peers.
#include "berth/registry/http_client.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "berth/proxy/server.hpp"
#include "berth/proxy/tls_material.hpp"
#include "berth/registry/digest.hpp"
#include "berth/testing/error_of.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::registry::http {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Hashes what it is sent, keeping nothing.
class HashingSink final : public proxy::BodySink {
public:
  void write(std::span<char const> chunk) override {
    hasher_.update(chunk);
    size_ += chunk.size();
  }
  proxy::Response finish() override {
    return proxy::json_response(
        201, "{\"size\":" + std::to_string(size_) + ",\"digest\":\"" + hasher_.finish().to_string() + "\"}");
  }

private:
  Hasher hasher_;
  std::uint64_t size_ = 0;
};

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

class HttpClientTest : public ::testing::Test {
protected:
  void start(std::vector<std::string> hostnames) {
    material_ = proxy::ensure_local_tls(dir_.path() / "tls", hostnames);
    proxy::Router routes;
    routes.add(proxy::Method::get, "/hello", [](proxy::Request const& request) -> proxy::Reply {
      return proxy::json_response(200, "{\"query\":\"" + request.query + "\"}");
    });
    routes.add(proxy::Method::put, "/upload",
               [](proxy::Request const&) -> proxy::Reply { return std::make_unique<HashingSink>(); });
    proxy::ServerConfig config;
    config.port = 0;
    config.threads = 2;
    config.access_log = false;
    config.tls = {true, material_.server_cert, material_.server_key};
    server_ = std::make_unique<proxy::Server>(config, std::move(routes));
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->stop();
      thread_.join();
    }
  }
  std::string url(std::string const& path, std::string const& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(server_->local_port()) + path;
  }
  ClientConfig trusting() const { return {.extra_ca_file = material_.ca_cert}; }

  testing::TempDir dir_;
  proxy::TlsMaterial material_;
  std::unique_ptr<proxy::Server> server_;
  std::thread thread_;
};

TEST_F(HttpClientTest, VerifiesAgainstTheExtraCaAndReusesTheConnection) {
  start({"localhost", "127.0.0.1"});
  Client client(trusting());
  for (int request_idx = 0; request_idx < 3; ++request_idx) {
    auto response = client.send({.method = "GET", .url = url("/hello?n=" + std::to_string(request_idx))});
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "{\"query\":\"n=" + std::to_string(request_idx) + "\"}");
    EXPECT_EQ(response.header("content-type"), "application/json");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  // By name too (SNI and DNS SAN check).
  EXPECT_EQ(client.send({.method = "GET", .url = url("/hello", "localhost")}).status, 200);
  EXPECT_EQ(client.send({.method = "HEAD", .url = url("/hello")}).body, "");
}

TEST_F(HttpClientTest, RefusesAnUntrustedCertificate) {
  start({"localhost", "127.0.0.1"});
  Client client;  // the system store does not know berth's test CA
  auto const error = testing::error_of([&] { client.send({.method = "GET", .url = url("/hello")}); });
  EXPECT_TRUE(error.starts_with("tls handshake with 127.0.0.1:" + std::to_string(server_->local_port()) +
                                " failed: the certificate is not trusted ("))
      << error;
  EXPECT_NE(error.find("HINT: give the file of the CA"), std::string::npos) << error;
}

TEST_F(HttpClientTest, RefusesACertificateForAnotherHost) {
  start({"localhost"});  // no IP SAN: 127.0.0.1 must not be accepted
  Client client(trusting());
  auto const error = testing::error_of([&] { client.send({.method = "GET", .url = url("/hello")}); });
  EXPECT_NE(error.find("the certificate is not trusted (IP address mismatch)"), std::string::npos) << error;
  EXPECT_EQ(client.send({.method = "GET", .url = url("/hello", "localhost")}).status, 200);
}

TEST_F(HttpClientTest, StreamsALargeBodyFromAFileWithFlatMemory) {
  start({"localhost", "127.0.0.1"});
  auto const file = dir_.path() / "big.bin";
  std::uint64_t const size = 96ull * 1024 * 1024 + 17;
  {
    std::ofstream out(file, std::ios::binary);
    std::string block(1024 * 1024, '\0');
    for (std::uint64_t written = 0, block_idx = 0; written < size; ++block_idx) {
      for (std::size_t byte_idx = 0; byte_idx < block.size(); byte_idx += 64)
        block[byte_idx] = static_cast<char>(block_idx + byte_idx / 64);
      auto n = std::min<std::uint64_t>(block.size(), size - written);
      out.write(block.data(), static_cast<std::streamsize>(n));
      written += n;
    }
  }
  Hasher hasher;
  {
    std::ifstream in(file, std::ios::binary);
    std::string block(1024 * 1024, '\0');
    while (in.read(block.data(), static_cast<std::streamsize>(block.size())) || in.gcount() > 0)
      hasher.update({block.data(), static_cast<std::size_t>(in.gcount())});
  }
  auto const expected = hasher.finish().to_string();
  Client client(trusting());
  auto const before = rss_kib();
  auto response = client.send({.method = "PUT", .url = url("/upload"), .body_file = file});
  auto const grown = rss_kib() - before;
  EXPECT_EQ(response.status, 201) << response.body;
  EXPECT_EQ(response.body, "{\"size\":" + std::to_string(size) + ",\"digest\":\"" + expected + "\"}");
  EXPECT_LT(grown, 24 * 1024) << "RSS grew by " << grown << " KiB for a " << size / (1024 * 1024) << " MiB body";
}

TEST(HttpClient, NamesTheHostWhenNothingListens) {
  // A port that was free a moment ago: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  auto const port = std::to_string(ntohs(address.sin_port));
  ::close(fd);
  Client client;
  auto const error =
      testing::error_of([&] { client.send({.method = "GET", .url = "http://127.0.0.1:" + port + "/"}); });
  EXPECT_TRUE(error.starts_with("cannot connect to 127.0.0.1:" + port + ": Connection refused\nHINT: ")) << error;
}

TEST(HttpClient, TimesOutOnAPeerThatNeverAnswers) {
  // Listening without ever accepting: the kernel completes the connection, nobody answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  auto const port = std::to_string(ntohs(address.sin_port));
  Client client({.extra_ca_file = std::nullopt, .connect_timeout = 1s, .io_timeout = 1s});
  auto const started = std::chrono::steady_clock::now();
  auto const error =
      testing::error_of([&] { client.send({.method = "GET", .url = "http://127.0.0.1:" + port + "/x"}); });
  ::close(fd);
  EXPECT_TRUE(error.starts_with("no answer to GET http://127.0.0.1:" + port + "/x: timed out")) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(HttpClient, ParsesUrls) {
  auto url = Url::parse("https://123.dkr.ecr.eu-west-1.amazonaws.com/v2/");
  EXPECT_EQ(url.host, "123.dkr.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.authority(), "123.dkr.ecr.eu-west-1.amazonaws.com");
  auto local = Url::parse("http://[::1]:5000?x=1");
  EXPECT_EQ(local.host, "::1");
  EXPECT_EQ(local.target, "/?x=1");
  EXPECT_EQ(local.origin(), "http://[::1]:5000");
  EXPECT_EQ(testing::error_of([] { Url::parse("ftp://host/"); }),
            "bad url \"ftp://host/\": expected http://HOST[:PORT]/... or https://HOST[:PORT]/...");
  EXPECT_NE(testing::error_of([] { Url::parse("https://host:99999/"); }), "(no error)");
  EXPECT_EQ(base64("AWS:secret"), "QVdTOnNlY3JldA==");
}

}  // namespace
}  // namespace berth::registry::http

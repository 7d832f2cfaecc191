// `routes:` on a real `berth serve`: the front door reverse-proxies to real upstreams on
// loopback (Python's http.server, and routes_upstream.py for bodies, headers, slowness and a
// WebSocket echo): GET, HEAD and 404 pass through, a 1 GiB body streams up and another down
// with flat memory, X-Forwarded-* reach the app, WebSocket frames are echoed through the
// tunnel, a dead upstream is a 502 and a slow one a 504, and all of it over TLS as well.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "berth/testing/eventually.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t gibibyte = 1ull << 30;

// A port nothing listens on: bound once to learn a free number, then released.
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// An upstream process on 127.0.0.1 and the port it reports in its output.
class Upstream {
public:
  Upstream(TempDir const& dir, std::string const& name, std::vector<std::string> argv, std::string const& marker) {
    process_ = std::make_unique<Process>(std::move(argv), dir.path() / (name + ".log"), dir.path());
    auto line = process_->wait_for_output(marker, 20s);
    if (!line) throw std::runtime_error(name + " did not start:\n" + process_->output());
    auto digits = line->substr(line->find(marker) + marker.size());
    port_ = static_cast<std::uint16_t>(std::stoi(digits));
  }
  std::uint16_t port() const { return port_; }

private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// python3 -m http.server over a folder with hello.txt and a sparse 1 GiB file.
Upstream static_files(TempDir const& dir) {
  auto files = dir.path() / "site";
  fs::create_directories(files);
  dir.write("site/hello.txt", "hello from the app\n");
  fs::resize_file(dir.write("site/big.bin", ""), gibibyte);  // sparse: no disk used
  return Upstream(
      dir, "http-server",
      {"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", files.string()},
      " port ");
}

Upstream app(TempDir const& dir) {
  return Upstream(dir, "app", {"/usr/bin/python3", "-u", BERTH_SOURCE_DIR "/tests/integration/routes_upstream.py"},
                  "listening port=");
}

std::string request_text(std::string const& method, std::string const& host, std::string const& target,
                         std::string const& extra_headers = "", std::string const& body = "") {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers;
  if (!body.empty() || method == "POST") text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return text + "\r\n" + body;
}

std::optional<HttpResponse> ask(std::uint16_t port, std::string const& method, std::string const& host,
                                std::string const& target, std::string const& extra_headers = "",
                                std::string const& body = "") {
  RawConnection connection("127.0.0.1", port);
  if (!connection.send(request_text(method, host, target, "Connection: close\r\n" + extra_headers, body)))
    return std::nullopt;
  return connection.read_response(method == "HEAD", 30s);
}

long peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
  return 0;
}

std::string hex(unsigned char const* bytes, unsigned length) {
  std::string text;
  char pair[3];
  for (unsigned byte_idx = 0; byte_idx < length; ++byte_idx) {
    std::snprintf(pair, sizeof pair, "%02x", bytes[byte_idx]);
    text += pair;
  }
  return text;
}

struct Upload {
  std::optional<HttpResponse> response;
  std::string sha256;
  double seconds = 0;
};

// POSTs `total` bytes made up on the fly (1 MiB at a time, never all in memory) to /count on
// port `port` with Host `host`, hashing what it sends.
Upload post_generated(std::uint16_t port, std::string const& host, std::uint64_t total) {
  Upload upload;
  auto started = std::chrono::steady_clock::now();
  RawConnection connection("127.0.0.1", port);
  std::string head = "POST /count HTTP/1.1\r\nHost: " + host +
                     "\r\nConnection: close\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n";
  if (!connection.send(head)) return upload;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> digest(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr);
  std::string chunk(1 << 20, '\0');
  for (std::uint64_t sent = 0, chunk_idx = 0; sent < total; sent += chunk.size(), ++chunk_idx) {
    for (std::size_t byte_idx = 0; byte_idx < chunk.size(); byte_idx += 64)
      chunk[byte_idx] = static_cast<char>(chunk_idx * 7 + byte_idx / 64);
    auto piece = std::string_view(chunk).substr(
        0, static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - sent)));
    EVP_DigestUpdate(digest.get(), piece.data(), piece.size());
    if (!connection.send(piece)) return upload;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned md_length = 0;
  EVP_DigestFinal_ex(digest.get(), md.data(), &md_length);
  upload.sha256 = hex(md.data(), md_length);
  upload.response = connection.read_response(false, 120s);
  upload.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return upload;
}

class Routes : public ::testing::Test {
protected:
  void SetUp() override {
    dead_port_ = closed_port();
    std::ostringstream yaml;
    yaml << "routes:\n"
         << "  - host: files.test\n    upstream: http://127.0.0.1:" << files_.port() << "\n"
         << "  - host: tools.test\n    path_prefix: /files\n    strip_prefix: true\n"
         << "    upstream: http://127.0.0.1:" << files_.port() << "\n"
         << "  - host: app.test\n    upstream: http://127.0.0.1:" << app_.port() << "\n"
         << "  - host: app.test\n    path_prefix: /slow\n    timeout: 1s\n"
         << "    upstream: http://127.0.0.1:" << app_.port() << "\n"
         << "  - host: down.test\n    upstream: http://127.0.0.1:" << dead_port_ << "\n";
    berth_ = std::make_unique<BerthInstance>(yaml.str());
  }

  TempDir dir_;
  Upstream files_ = static_files(dir_);
  Upstream app_ = app(dir_);
  std::uint16_t dead_port_ = 0;
  std::unique_ptr<BerthInstance> berth_;
};

TEST_F(Routes, PassesGetHeadAndNotFoundThroughAndKeepsTheRegistryOnItsOwnHost) {
  auto hello = ask(berth_->port(), "GET", "files.test", "/hello.txt");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(hello->body, "hello from the app\n");
  EXPECT_TRUE(hello->header("X-Request-Id"));

  auto head = ask(berth_->port(), "HEAD", "files.test:443", "/hello.txt");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "19");
  EXPECT_EQ(head->body, "");

  auto missing = ask(berth_->port(), "GET", "files.test", "/missing.txt");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("File not found"), std::string::npos) << missing->body;  // http.server's page

  // strip_prefix: /files/hello.txt reaches the app as /hello.txt; other paths on that host are berth's.
  auto stripped = ask(berth_->port(), "GET", "tools.test", "/files/hello.txt");
  ASSERT_TRUE(stripped);
  EXPECT_EQ(stripped->body, "hello from the app\n");
  auto outside = ask(berth_->port(), "GET", "tools.test", "/filesystem");
  ASSERT_TRUE(outside);
  EXPECT_EQ(outside->status, 404);
  EXPECT_NE(outside->body.find("\"errors\""), std::string::npos) << outside->body;  // berth's own 404

  // The registry answers on berth's own name; on an app's name /v2/ is the app's.
  auto registry = ask(berth_->port(), "GET", "127.0.0.1:" + std::to_string(berth_->port()), "/v2/");
  ASSERT_TRUE(registry);
  EXPECT_EQ(registry->status, 200);
  EXPECT_EQ(registry->header("Docker-Distribution-API-Version"), "registry/2.0");
  auto app_v2 = ask(berth_->port(), "GET", "files.test", "/v2/");
  ASSERT_TRUE(app_v2);
  EXPECT_EQ(app_v2->status, 404);
  EXPECT_FALSE(app_v2->header("Docker-Distribution-API-Version"));

  // One keep-alive connection carries proxied and berth's own requests in turn.
  RawConnection connection("127.0.0.1", berth_->port());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(connection.send(request_text("GET", "files.test", "/hello.txt")));
    auto proxied = connection.read_response();
    ASSERT_TRUE(proxied) << "round " << round;
    EXPECT_EQ(proxied->body, "hello from the app\n");
    ASSERT_TRUE(connection.send(request_text("GET", "localhost", "/healthz")));
    auto own = connection.read_response();
    ASSERT_TRUE(own) << "round " << round;
    EXPECT_EQ(own->status, 200);
  }

  // Each proxied request is on the access log and in the metrics.
  EXPECT_TRUE(eventually(5s, [&] {
    return berth_->process().output().find(R"("path":"/files/hello.txt","status":200)") != std::string::npos;
  })) << berth_->process().output();
  auto metrics = ask(berth_->port(), "GET", "localhost", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(R"(berth_http_requests_total{route="upstream",status="2xx"})"), std::string::npos)
      << metrics->body;
}

TEST_F(Routes, StreamsAGibibyteUpAndDownWithFlatMemory) {
  auto const baseline_kib = peak_rss_kib(berth_->process().pid());

  auto direct = post_generated(app_.port(), "app.test", gibibyte);
  ASSERT_TRUE(direct.response);
  auto proxied = post_generated(berth_->port(), "app.test", gibibyte);
  ASSERT_TRUE(proxied.response);
  EXPECT_EQ(proxied.response->status, 200) << proxied.response->body;
  auto counted = nlohmann::json::parse(proxied.response->body);
  EXPECT_EQ(counted["bytes"], gibibyte);
  EXPECT_EQ(counted["sha256"], proxied.sha256);
  EXPECT_EQ(nlohmann::json::parse(direct.response->body)["sha256"], proxied.sha256);

  // Chunked request bodies are passed on chunked.
  RawConnection chunked("127.0.0.1", berth_->port());
  ASSERT_TRUE(
      chunked.send("POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n6\r\n berth\r\n0\r\n\r\n"));
  auto chunked_reply = chunked.read_response();
  ASSERT_TRUE(chunked_reply);
  EXPECT_EQ(nlohmann::json::parse(chunked_reply->body)["bytes"], 11);

  // Down: a 1 GiB file, counted as it arrives.
  auto download_started = std::chrono::steady_clock::now();
  RawConnection download("127.0.0.1", berth_->port());
  ASSERT_TRUE(download.send(request_text("GET", "files.test", "/big.bin", "Connection: close\r\n")));
  std::uint64_t received = 0;
  bool all_zero = true;
  auto big = download.read_response(false, 120s, [&](std::string_view piece) {
    received += piece.size();
    all_zero = all_zero && piece.find_first_not_of('\0') == std::string_view::npos;
  });
  auto download_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - download_started).count();
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  EXPECT_EQ(received, gibibyte);
  EXPECT_TRUE(all_zero);

  // A front door that buffered a body would have grown by a GiB.
  auto const peak_kib = peak_rss_kib(berth_->process().pid());
  EXPECT_LT(peak_kib - baseline_kib, 64 * 1024) << "peak RSS grew from " << baseline_kib << " KiB to " << peak_kib;
  auto mib_per_s = [](double seconds) { return static_cast<double>(gibibyte) / (1 << 20) / seconds; };
  std::cout << "1 GiB POST direct to the upstream: " << mib_per_s(direct.seconds)
            << " MiB/s; through berth: " << mib_per_s(proxied.seconds)
            << " MiB/s; 1 GiB GET through berth: " << mib_per_s(download_seconds) << " MiB/s; berth peak RSS "
            << baseline_kib << " -> " << peak_kib << " KiB\n";
}

TEST_F(Routes, TellsTheAppWhoAskedAndDropsHopByHopHeaders) {
  auto reply = ask(berth_->port(), "GET", "app.test", "/headers",
                   "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: gopher\r\nConnection: close, X-Hop\r\n"
                   "X-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\nX-Custom: kept\r\n");
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 200) << reply->body;
  std::map<std::string, std::vector<std::string>> seen;
  for (auto const& pair : nlohmann::json::parse(reply->body)) {
    auto name = pair[0].get<std::string>();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    seen[name].push_back(pair[1].get<std::string>());
  }
  EXPECT_EQ(seen["host"], std::vector<std::string>{"app.test"});
  // Not a trusted proxy: what the client claimed is replaced, not extended.
  EXPECT_EQ(seen["x-forwarded-for"], std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(seen["x-forwarded-proto"], std::vector<std::string>{"http"});
  EXPECT_EQ(seen["x-forwarded-host"], std::vector<std::string>{"app.test"});
  EXPECT_EQ(seen["x-custom"], std::vector<std::string>{"kept"});
  EXPECT_EQ(seen["x-request-id"].size(), 1u);
  EXPECT_EQ(seen["x-request-id"], std::vector<std::string>{*reply->header("X-Request-Id")});
  EXPECT_FALSE(seen.contains("x-hop"));
  EXPECT_FALSE(seen.contains("keep-alive"));
  EXPECT_FALSE(seen.contains("proxy-authorization"));
  EXPECT_EQ(seen["connection"], std::vector<std::string>{"close"});  // berth's own, to the app
}

TEST_F(Routes, RelaysAWebSocketUntilEitherSideCloses) {
  RawConnection socket("127.0.0.1", berth_->port());
  ASSERT_TRUE(
      socket.send("GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  auto handshake = socket.read_until("\r\n\r\n", 10s);
  ASSERT_TRUE(handshake);
  EXPECT_TRUE(handshake->starts_with("HTTP/1.1 101")) << *handshake;
  EXPECT_NE(handshake->find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << *handshake;  // RFC 6455's example

  // Masked client frames; the app echoes each unmasked.
  auto frame = [](std::string const& text) {
    std::string bytes = {'\x81', static_cast<char>(0x80 | text.size()), 1, 2, 3, 4};
    for (std::size_t byte_idx = 0; byte_idx < text.size(); ++byte_idx)
      bytes += static_cast<char>(text[byte_idx] ^ (1 + byte_idx % 4));
    return bytes;
  };
  for (std::string text : {"hello berth", "second message"}) {
    ASSERT_TRUE(socket.send(frame(text)));
    auto echoed = socket.read_until(text, 10s);
    ASSERT_TRUE(echoed) << text;
    std::string const expected = std::string{'\x81', static_cast<char>(text.size())} + text;
    EXPECT_EQ(*echoed, expected);
  }
  // A close frame: the app closes, and so does berth's side of the tunnel.
  ASSERT_TRUE(socket.send(std::string{'\x88', '\x80', 0, 0, 0, 0}));
  EXPECT_TRUE(socket.wait_closed(10s));
  EXPECT_EQ(berth_->process().output().find("connection ended by error"), std::string::npos);
}

TEST_F(Routes, AnswersBadGatewayForADeadUpstreamAndGatewayTimeoutForASlowOne) {
  auto down = ask(berth_->port(), "GET", "down.test", "/");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 502);
  EXPECT_NE(down->body.find("\"code\":\"BAD_GATEWAY\""), std::string::npos) << down->body;
  EXPECT_NE(down->body.find("upstream http://127.0.0.1:" + std::to_string(dead_port_) +
                            " for down.test is unreachable: Connection refused"),
            std::string::npos)
      << down->body;
  EXPECT_TRUE(eventually(
      5s, [&] { return berth_->process().output().find("upstream unreachable host=down.test") != std::string::npos; }));

  auto started = std::chrono::steady_clock::now();
  auto slow = ask(berth_->port(), "GET", "app.test", "/slow?s=4");
  auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 504);
  EXPECT_NE(slow->body.find("did not answer within 1s"), std::string::npos) << slow->body;
  EXPECT_LT(waited, 3s);
  // A quick answer on the same route is still served.
  auto quick = ask(berth_->port(), "GET", "app.test", "/slow?s=0");
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->status, 200);

  // berth status probes every upstream.
  auto status = berth_->command({"status"});
  EXPECT_NE(status.output.find("route app.test/ -> http://127.0.0.1:" + std::to_string(app_.port()) + ": up"),
            std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("route down.test/ -> http://127.0.0.1:" + std::to_string(dead_port_) + ": DOWN ("),
            std::string::npos)
      << status.output;
}

TEST(RoutesOverTls, ProxiesHttpsRequestsWithTheAppNameInTheCertificate) {
  TempDir dir;
  auto files = static_files(dir);
  auto upstream = app(dir);
  BerthInstance berth(
      "server:\n  tls:\n    enabled: true\n    hostnames: [localhost, 127.0.0.1]\nroutes:\n"
      "  - host: files.test\n    upstream: http://127.0.0.1:" +
      std::to_string(files.port()) +
      "\n  - host: app.test\n    upstream: http://127.0.0.1:" + std::to_string(upstream.port()) + "\n");
  auto port = std::to_string(berth.port());
  auto curl = [&](std::string const& host, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS",
                                     "--max-time",    "30",
                                     "--cacert",      (berth.dir().path() / "tls" / "ca.crt").string(),
                                     "--resolve",     host + ":" + port + ":127.0.0.1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  // Verified against berth's CA: the route's host is in the certificate.
  auto hello = curl("files.test", {"https://files.test:" + port + "/hello.txt"});
  EXPECT_EQ(hello.exit_code, 0) << hello.output;
  EXPECT_EQ(hello.output, "hello from the app\n");

  auto headers = curl("app.test", {"https://app.test:" + port + "/headers"});
  ASSERT_EQ(headers.exit_code, 0) << headers.output;
  EXPECT_NE(headers.output.find(R"(["X-Forwarded-Proto", "https"])"), std::string::npos) << headers.output;
  EXPECT_NE(headers.output.find(R"(["X-Forwarded-Host", "app.test:)" + port + "\"]"), std::string::npos)
      << headers.output;

  // A streamed body through TLS: 64 MiB of zeros from stdin, counted by the app.
  TempDir scratch;
  auto zeros = scratch.write("zeros", "");
  fs::resize_file(zeros, 64 << 20);
  auto counted = curl("app.test", {"--data-binary", "@" + zeros.string(), "-H",
                                   "Content-Type: application/octet-stream", "https://app.test:" + port + "/count"});
  ASSERT_EQ(counted.exit_code, 0) << counted.output;
  EXPECT_EQ(nlohmann::json::parse(counted.output)["bytes"], 64 << 20);

  // Berth's own registry is still there on its own name.
  auto registry = curl("localhost", {"-o", "/dev/null", "-w", "%{http_code}", "https://localhost:" + port + "/v2/"});
  EXPECT_EQ(registry.output, "200");
}

}  // namespace
}  // namespace berth::testing

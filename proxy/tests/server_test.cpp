// The HTTP server over real loopback sockets: keep-alive, pipelining, limits, malformed input,
// streamed bodies of 1 GiB with flat memory, and graceful shutdown (also by a real SIGTERM).
#include "berth/proxy/server.hpp"

#include <atomic>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "berth/testing/eventually.hpp"
#include "berth/testing/raw_http.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RawConnection;

constexpr std::uint64_t gib = 1024ull * 1024 * 1024;

// Byte `offset` of the test pattern: a period (251) that never aligns with buffer sizes.
char pattern_byte(std::uint64_t offset) {
  return static_cast<char>(offset % 251);
}

class PatternSource final : public BodySource {
public:
  explicit PatternSource(std::uint64_t size) : left_(size) {}
  std::size_t read(std::span<char> buffer) override {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), left_));
    for (std::size_t i = 0; i < n; ++i) buffer[i] = pattern_byte(offset_ + i);
    offset_ += n;
    left_ -= n;
    return n;
  }

private:
  std::uint64_t offset_ = 0;
  std::uint64_t left_;
};

// Checks every byte against the pattern, keeps nothing.
class PatternSink final : public BodySink {
public:
  void write(std::span<char const> chunk) override {
    for (char byte : chunk)
      if (byte != pattern_byte(received_++)) throw HttpError(400, "DIGEST_INVALID", "pattern mismatch");
  }
  Response finish() override { return json_response(201, "{\"received\":" + std::to_string(received_) + "}"); }

private:
  std::uint64_t received_ = 0;
};

// Hands each chunk to the test, which can hold the upload open.
struct SlowUploadGate {
  std::atomic<std::uint64_t> received{0};
};

class GatedSink final : public BodySink {
public:
  explicit GatedSink(SlowUploadGate& gate) : gate_(gate) {}
  void write(std::span<char const> chunk) override { gate_.received += chunk.size(); }
  Response finish() override { return json_response(201, "{\"received\":" + std::to_string(gate_.received) + "}"); }

private:
  SlowUploadGate& gate_;
};

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

class RunningServer {
public:
  RunningServer(Router router, ServerConfig config = {}, bool signals = false) {
    config.port = 0;
    config.threads = 2;
    server_ = std::make_unique<Server>(config, std::move(router));
    if (signals) server_->stop_on_signals();
    thread_ = std::thread([this] {
      server_->run();
      finished_ = true;
    });
  }
  ~RunningServer() {
    server_->stop();
    thread_.join();
  }
  std::uint16_t port() const { return server_->local_port(); }
  Server& server() { return *server_; }
  bool finished() const { return finished_; }

private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

Router test_router(SlowUploadGate* gate = nullptr) {
  Router router;
  router.add(Method::get, "/hello", [](Request const& request) -> Reply {
    return json_response(200, "{\"hello\":\"" + request.query + "\"}");
  });
  router.add(Method::post, "/echo",
             buffered(1024, [](Request const&, std::string body) { return json_response(200, body); }));
  router.add(Method::put, "/pattern", [](Request const&) -> Reply { return std::make_unique<PatternSink>(); });
  router.add(Method::get, "/pattern", [](Request const& request) -> Reply {
    auto size = std::stoull(request.query_param("size").value_or("0"));
    Response response;
    response.headers.set("Content-Type", "application/octet-stream");
    response.body = std::make_unique<PatternSource>(size);
    if (request.query_param("chunked") != "1") response.stream_length = size;
    return response;
  });
  router.add(Method::get, "/broken", [](Request const&) -> Reply {
    Response response;
    response.body = std::make_unique<PatternSource>(10);
    response.stream_length = 1000;  // promises more than it has
    return response;
  });
  router.add(Method::get, "/throws", [](Request const&) -> Reply { throw Error("disk on fire"); });
  if (gate)
    router.add(Method::put, "/slow", [gate](Request const&) -> Reply { return std::make_unique<GatedSink>(*gate); });
  return router;
}

std::string get(std::string const& target, std::string const& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

TEST(Server, KeepsTheConnectionAliveAcrossRequests) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  for (int request_idx = 0; request_idx < 3; ++request_idx) {
    ASSERT_TRUE(connection.send(get("/hello?" + std::to_string(request_idx))));
    auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "{\"hello\":\"" + std::to_string(request_idx) + "\"}");
  }
  EXPECT_EQ(running.server().connection_count(), 1u);
}

TEST(Server, AnswersPipelinedRequestsInOrder) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  std::string batch =
      get("/hello?a") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst" +
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n" +
      get("/hello?b");
  ASSERT_TRUE(connection.send(batch));
  EXPECT_EQ(connection.read_response()->body, "{\"hello\":\"a\"}");
  EXPECT_EQ(connection.read_response()->body, "first");
  EXPECT_EQ(connection.read_response()->body, "second");
  EXPECT_EQ(connection.read_response()->body, "{\"hello\":\"b\"}");
}

TEST(Server, UnknownRouteIs404WithJsonBody) {
  RunningServer running(test_router());
  auto response = testing::http_request("127.0.0.1", running.port(), "GET", "/nowhere");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->header("Content-Type"), "application/json");
  EXPECT_EQ(response->body, "{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"no route for GET /nowhere\"}]}\n");
}

TEST(Server, WrongMethodIs405WithAllow) {
  RunningServer running(test_router());
  auto response = testing::http_request("127.0.0.1", running.port(), "DELETE", "/hello");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
  EXPECT_EQ(response->header("Allow"), "GET, HEAD");
}

TEST(Server, HeadSendsLengthButNoBody) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  ASSERT_TRUE(connection.send("HEAD /pattern?size=1000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = connection.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "1000");
  // The connection is still in sync: the next response is intact.
  ASSERT_TRUE(connection.send(get("/hello?after")));
  EXPECT_EQ(connection.read_response()->body, "{\"hello\":\"after\"}");
}

TEST(Server, OversizedHeadIs431) {
  ServerConfig config;
  config.max_header_bytes = 2048;
  RunningServer running(test_router(), config);
  RawConnection connection("127.0.0.1", running.port());
  connection.send(get("/hello", "X-Big: " + std::string(4096, 'a') + "\r\n"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(response->body,
            "{\"errors\":[{\"code\":\"SIZE_INVALID\",\"message\":\"request head exceeds 2048 bytes\"}]}\n");
  EXPECT_TRUE(connection.wait_closed(5s));
}

TEST(Server, MalformedRequestIs400AndTheServerCarriesOn) {
  RunningServer running(test_router());
  for (std::string garbage : {"NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
                              "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "GET / HTTP/9.9\r\n\r\n"}) {
    RawConnection connection("127.0.0.1", running.port());
    connection.send(garbage);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << garbage;
    EXPECT_EQ(response->status, 400) << garbage;
    EXPECT_TRUE(response->body.starts_with("{\"errors\":[{\"code\":\"BAD_REQUEST\"")) << response->body;
  }
  EXPECT_EQ(testing::http_request("127.0.0.1", running.port(), "GET", "/hello")->status, 200);
}

TEST(Server, MalformedChunkedBodyIs400) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
}

TEST(Server, AnnouncedBodyOverTheLimitIs413WithoutReadingIt) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->header("Connection"), "close");
}

TEST(Server, SmallUnreadBodyIsDrainedAndTheConnectionKept) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  connection.send("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(connection.read_response()->status, 405);
  connection.send(get("/hello?x"));
  EXPECT_EQ(connection.read_response()->body, "{\"hello\":\"x\"}");
}

TEST(Server, ExpectContinueGetsAnInterimResponse) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  // The body is only sent after "100 Continue" arrives, as curl and Go clients do.
  auto interim = connection.read_until("\r\n\r\n", 5s);
  ASSERT_TRUE(interim);
  EXPECT_TRUE(interim->starts_with("HTTP/1.1 100 Continue\r\n")) << *interim;
  connection.send("ok");
  EXPECT_EQ(connection.read_response()->body, "ok");
}

TEST(Server, HandlerFailureIs500AndTheServerCarriesOn) {
  RunningServer running(test_router());
  auto response = testing::http_request("127.0.0.1", running.port(), "GET", "/throws");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(response->body,
            "{\"errors\":[{\"code\":\"INTERNAL_ERROR\",\"message\":\"internal error; see the berth log\"}]}\n");
  EXPECT_EQ(testing::http_request("127.0.0.1", running.port(), "GET", "/hello")->status, 200);
}

TEST(Server, ShortBodySourceDropsTheConnection) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  connection.send(get("/broken"));
  EXPECT_FALSE(connection.read_response(false, 5s));  // closed before the promised 1000 bytes
  EXPECT_EQ(testing::http_request("127.0.0.1", running.port(), "GET", "/hello")->status, 200);
}

TEST(Server, ClosesASlowLorisAfterTheHeaderTimeout) {
  ServerConfig config;
  config.header_timeout = 1s;
  RunningServer running(test_router(), config);
  RawConnection connection("127.0.0.1", running.port());
  connection.send("GET /hello HTTP/1.1\r\nHost: t\r\n");  // and never the blank line
  EXPECT_TRUE(connection.wait_closed(10s));
}

TEST(Server, StreamsAGibibyteEachWayWithFlatMemory) {
  RunningServer running(test_router());
  RawConnection connection("127.0.0.1", running.port());
  // Warm up: threads, buffers and allocator arenas exist before the baseline is taken.
  connection.send("PUT /pattern HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n");
  std::vector<char> block(1 << 20);
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = pattern_byte(i);
  connection.send({block.data(), block.size()});
  ASSERT_EQ(connection.read_response()->status, 201);
  long baseline = rss_kib();

  connection.send("PUT /pattern HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(gib) + "\r\n\r\n");
  std::vector<char> piece(256 * 1024);
  for (std::uint64_t sent = 0; sent < gib; sent += piece.size()) {
    for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = pattern_byte(sent + i);
    ASSERT_TRUE(connection.send({piece.data(), piece.size()}));
  }
  auto uploaded = connection.read_response(false, 120s);
  ASSERT_TRUE(uploaded);
  EXPECT_EQ(uploaded->status, 201);
  EXPECT_EQ(uploaded->body, "{\"received\":" + std::to_string(gib) + "}");
  long after_upload = rss_kib();

  for (bool chunked : {false, true}) {
    connection.send(get("/pattern?size=" + std::to_string(gib) + (chunked ? "&chunked=1" : "")));
    std::uint64_t offset = 0;
    bool intact = true;
    auto downloaded = connection.read_response(false, 120s, [&](std::string_view bytes) {
      for (char byte : bytes) intact = intact && byte == pattern_byte(offset++);
    });
    ASSERT_TRUE(downloaded);
    EXPECT_EQ(downloaded->body_bytes, gib);
    EXPECT_TRUE(intact);
  }
  long after_download = rss_kib();
  RecordProperty("rss_baseline_kib", std::to_string(baseline));
  RecordProperty("rss_after_kib", std::to_string(after_download));
  // Client and server share this process; both stream, so neither may grow with the body.
  EXPECT_LT(after_upload - baseline, 8 * 1024) << "upload grew RSS from " << baseline << " KiB";
  EXPECT_LT(after_download - baseline, 8 * 1024) << "download grew RSS from " << baseline << " KiB";
}

TEST(Server, StopClosesIdleConnectionsAndRefusesNewOnes) {
  auto running = std::make_unique<RunningServer>(test_router());
  auto port = running->port();
  RawConnection idle("127.0.0.1", port);
  idle.send(get("/hello"));
  ASSERT_TRUE(idle.read_response());
  running->server().stop();
  EXPECT_TRUE(idle.wait_closed(5s));
  EXPECT_TRUE(eventually(5s, [&] { return running->finished(); }));
  EXPECT_THROW(RawConnection("127.0.0.1", port), std::runtime_error);
}

// A real SIGTERM mid-upload: the upload completes and is answered, nothing new is accepted,
// and run() returns once it is done.
TEST(Server, SigtermLetsTheRequestInFlightFinish) {
  SlowUploadGate gate;
  RunningServer running(test_router(&gate), ServerConfig{}, true);
  RawConnection uploader("127.0.0.1", running.port());
  uploader.send("PUT /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
  ASSERT_TRUE(eventually(5s, [&] { return gate.received == 5; }));

  ::kill(::getpid(), SIGTERM);
  // Stopping shows by the listener closing; the upload's connection stays.
  EXPECT_TRUE(eventually(5s, [&] {
    try {
      RawConnection probe("127.0.0.1", running.port());
      return false;
    } catch (std::runtime_error const&) {
      return true;
    }
  }));
  EXPECT_FALSE(running.finished());

  uploader.send("67890");
  auto response = uploader.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "{\"received\":10}");
  EXPECT_EQ(response->header("Connection"), "close");
  EXPECT_TRUE(eventually(5s, [&] { return running.finished(); }));
}

TEST(Server, SigtermWithNoConnectionsReturnsFromRun) {
  RunningServer running(test_router(), ServerConfig{}, true);
  ::kill(::getpid(), SIGTERM);
  EXPECT_TRUE(eventually(5s, [&] { return running.finished(); }));
}

TEST(Server, GracePeriodBoundsAStalledRequest) {
  SlowUploadGate gate;
  ServerConfig config;
  config.shutdown_grace = 1s;
  RunningServer running(test_router(&gate), config);
  RawConnection uploader("127.0.0.1", running.port());
  uploader.send("PUT /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
  ASSERT_TRUE(eventually(5s, [&] { return gate.received == 5; }));
  running.server().stop();
  EXPECT_TRUE(uploader.wait_closed(10s));
  EXPECT_TRUE(eventually(10s, [&] { return running.finished(); }));
}

TEST(Server, ReportsAPortInUse) {
  RunningServer running(test_router());
  ServerConfig config;
  config.port = running.port();
  try {
    Server second(config, Router{});
    FAIL() << "expected the bind to fail";
  } catch (Error const& error) {
    EXPECT_TRUE(std::string(error.what())
                    .starts_with("cannot listen on 127.0.0.1:" + std::to_string(running.port()) +
                                 ": bind: Address already in use\nHINT:"))
        << error.what();
  }
}

}  // namespace
}  // namespace berth::proxy

namespace berth::proxy {
namespace {

TEST(ServerLimits, SlowLorisIsDroppedWithinTheHeaderTimeoutWhileOthersAreServed) {
  ServerConfig config;
  config.header_timeout = 2s;
  RunningServer running(test_router(), config);
  RawConnection slow("127.0.0.1", running.port());
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send("GET /hello HTTP/1.1\r\nHost: t\r\n"));  // and never the blank line
  for (int client_idx = 0; client_idx < 5; ++client_idx) {
    auto response = testing::http_request("127.0.0.1", running.port(), "GET", "/hello?" + std::to_string(client_idx));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
  EXPECT_TRUE(slow.wait_closed(10s));
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 1900ms);
  EXPECT_LE(took, 3500ms);  // the timeout plus the watchdog's one-second granularity
}

TEST(ServerLimits, ConnectionsOverThePerAddressCapAreClosedAtOnce) {
  ServerConfig config;
  config.max_connections_per_ip = 2;
  RunningServer running(test_router(), config);
  auto first = std::make_unique<RawConnection>("127.0.0.1", running.port());
  RawConnection second("127.0.0.1", running.port());
  for (auto* connection : {first.get(), &second}) {
    ASSERT_TRUE(connection->send(get("/hello")));
    ASSERT_EQ(connection->read_response()->status, 200);
  }
  RawConnection third("127.0.0.1", running.port());
  third.send(get("/hello"));
  auto refused = third.read_response(false, 5s);
  if (refused) {  // the answer may be lost to a reset when the request was still unread
    EXPECT_EQ(refused->status, 429);
    EXPECT_NE(refused->body.find("TOOMANYREQUESTS"), std::string::npos);
  }
  EXPECT_TRUE(third.wait_closed(5s));
  // The connections within the cap carry on; one closing makes room for another.
  ASSERT_TRUE(second.send(get("/hello")));
  EXPECT_EQ(second.read_response()->status, 200);
  first.reset();
  EXPECT_TRUE(eventually(5s, [&] {
    auto response = testing::http_request("127.0.0.1", running.port(), "GET", "/hello");
    return response && response->status == 200;
  }));
}

TEST(ServerLimits, RateLimitAnswers429WithRetryAfterAndServesAfterTheWait) {
  ServerConfig config;
  config.rate_limit = {.per_second = 1, .burst = 3};
  RunningServer running(test_router(), config);
  RawConnection connection("127.0.0.1", running.port());
  std::optional<testing::HttpResponse> refused;
  for (int request_idx = 0; request_idx < 10 && !refused; ++request_idx) {
    ASSERT_TRUE(connection.send(get("/hello")));
    auto response = connection.read_response();
    ASSERT_TRUE(response);
    if (response->status == 429)
      refused = response;
    else
      EXPECT_EQ(response->status, 200);
  }
  ASSERT_TRUE(refused) << "a burst of 10 at 1/s with burst 3 was never refused";
  EXPECT_NE(refused->body.find("\"code\":\"TOOMANYREQUESTS\""), std::string::npos);
  auto retry_after = refused->header("Retry-After");
  ASSERT_TRUE(retry_after);
  EXPECT_EQ(*retry_after, "1");
  // Waiting as told is the behaviour under test, not a readiness guess.
  std::this_thread::sleep_for(std::chrono::seconds(std::stoi(*retry_after)));
  ASSERT_TRUE(connection.send(get("/hello")));
  EXPECT_EQ(connection.read_response()->status, 200);
}

// Keeps what the logger writes, for the test thread to read under the sink's lock.
class CapturingSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

protected:
  void sink_it_(spdlog::details::log_msg const& message) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    text_.append(formatted.data(), formatted.size());
  }
  void flush_() override {}

private:
  std::string text_;
};

TEST(ServerLimits, AccessLogIsOneJsonLinePerRequestWithoutCredentials) {
  auto access = logger("access");
  auto sink = std::make_shared<CapturingSink>();
  sink->set_pattern("%v");
  auto const saved_sinks = access->sinks();
  auto const saved_level = access->level();
  access->sinks() = {sink};
  access->set_level(spdlog::level::info);
  {
    RunningServer running(test_router());
    auto response = testing::http_request("127.0.0.1", running.port(), "GET", "/hello?x=1", {},
                                          {{"Authorization", "Basic YWxpY2U6czNjcmV0LXB3"}});
    ASSERT_TRUE(response);
    ASSERT_TRUE(eventually(5s, [&] { return sink->text().find('\n') != std::string::npos; }));
    auto text = sink->text();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
    auto line = nlohmann::json::parse(text.substr(0, text.find('\n')));
    EXPECT_EQ(line["remote_ip"], "127.0.0.1");
    EXPECT_EQ(line["user"], "-");
    EXPECT_EQ(line["method"], "GET");
    EXPECT_EQ(line["path"], "/hello");
    EXPECT_EQ(line["status"], 200);
    EXPECT_EQ(line["bytes_in"], 0);
    EXPECT_EQ(line["bytes_out"], response->body.size());
    EXPECT_TRUE(line["duration_ms"].is_number());
    EXPECT_TRUE(line.contains("time"));
    EXPECT_EQ(line["request_id"], response->header("X-Request-Id").value_or("missing"));
    EXPECT_EQ(text.find("YWxpY2U6czNjcmV0LXB3"), std::string::npos);
    EXPECT_EQ(text.find("Authorization"), std::string::npos);
  }
  access->sinks() = saved_sinks;
  access->set_level(saved_level);
}

// Clients try https first; on the plain port that is routine, not a malformed request at info.
TEST(ServerLimits, ATlsClientHelloOnThePlainPortIsLoggedAtDebugOnly) {
  auto http = logger("http");
  auto sink = std::make_shared<CapturingSink>();
  sink->set_pattern("%l %v");
  auto const saved_sinks = http->sinks();
  auto const saved_level = http->level();
  http->sinks() = {sink};
  http->set_level(spdlog::level::debug);
  {
    RunningServer running(test_router());
    RawConnection connection("127.0.0.1", running.port());
    // The start of a real ClientHello: record type 22, TLS 1.0 record version, a length.
    ASSERT_TRUE(connection.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(64, 'r')));
    auto const answer = connection.read_response();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 400);
    ASSERT_TRUE(eventually(5s, [&] { return sink->text().find("tls handshake") != std::string::npos; }));
    EXPECT_NE(sink->text().find("debug tls handshake on a plain-http listener"), std::string::npos) << sink->text();
    EXPECT_EQ(sink->text().find("malformed request"), std::string::npos) << sink->text();
    EXPECT_EQ(testing::http_request("127.0.0.1", running.port(), "GET", "/hello")->status, 200);
  }
  http->sinks() = saved_sinks;
  http->set_level(saved_level);
}

TEST(ServerLimits, CountsRequestsAndOpenConnections) {
  auto metrics = std::make_shared<Metrics>();
  Router router = test_router();
  router.add(Method::get, "/metrics", metrics_handler(metrics, MetricsAccess::loopback));
  ServerConfig config;
  config.port = 0;
  config.threads = 2;
  Server server(config, std::move(router), metrics);
  std::thread thread([&] { server.run(); });
  RawConnection open("127.0.0.1", server.local_port());
  ASSERT_TRUE(open.send(get("/hello")));
  ASSERT_EQ(open.read_response()->status, 200);
  EXPECT_EQ(testing::http_request("127.0.0.1", server.local_port(), "GET", "/nowhere")->status, 404);
  // Counted once the response is out, which the client may see first: poll.
  EXPECT_TRUE(eventually(5s, [&] {
    return metrics->requests(RouteClass::other, 2) == 1 && metrics->requests(RouteClass::other, 4) == 1;
  }));
  std::string last_scrape;
  EXPECT_TRUE(eventually(5s, [&] {
    auto scrape = testing::http_request("127.0.0.1", server.local_port(), "GET", "/metrics");
    if (!scrape || scrape->status != 200) return false;
    last_scrape = scrape->body;
    // `open` and the scrape's own connection; the 404's connection has gone.
    return last_scrape.find("berth_http_requests_total{route=\"other\",status=\"4xx\"} 1\n") != std::string::npos &&
           last_scrape.find("berth_http_open_connections 2\n") != std::string::npos;
  })) << last_scrape;
  server.stop();
  thread.join();
}

TEST(Server, HeartbeatStopsWhileAnIoThreadIsWedgedAndResumesAfter) {
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  Router router;
  router.add(Method::get, "/wedge", [&](Request const&) -> Reply {
    entered = true;
    while (!release) std::this_thread::sleep_for(1ms);  // a handler stuck in blocking work
    return json_response(200, "{}\n");
  });
  ServerConfig config;
  config.port = 0;
  config.threads = 2;
  Server server(config, std::move(router));
  std::atomic<int> beats{0};
  server.on_heartbeat(10ms, [&] { ++beats; });
  std::thread runner([&] { server.run(); });
  EXPECT_TRUE(eventually(5s, [&] { return beats >= 3; }));

  std::thread client([&] { testing::http_request("127.0.0.1", server.local_port(), "GET", "/wedge"); });
  ASSERT_TRUE(eventually(5s, [&] { return entered.load(); }));
  int const at_wedge = beats;
  // Absence can only be observed over time: 30 intervals, of which at most one beat (probes
  // answered just before the wedge) may pass.
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(beats, at_wedge + 1);

  release = true;
  EXPECT_TRUE(eventually(5s, [&] { return beats >= at_wedge + 3; }));
  client.join();
  server.stop();
  runner.join();
}

}  // namespace
}  // namespace berth::proxy

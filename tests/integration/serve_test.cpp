// `berth serve` as a user starts it: a real process on an ephemeral port, spoken to over HTTP.
#include <csignal>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

TEST(Serve, AnswersHealthzWithJsonStatus) {
  BerthInstance berth;
  auto response = http_request("127.0.0.1", berth.port(), "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Content-Type"), "application/json");
  auto status = nlohmann::json::parse(response->body);
  EXPECT_EQ(status["status"], "ok");
  EXPECT_EQ(status["version"], BERTH_VERSION);
  EXPECT_TRUE(status["uptime_seconds"].is_number_integer());
}

TEST(Serve, AnnouncesRegistryV2OnTheApiBase) {
  BerthInstance berth;
  auto response = http_request("127.0.0.1", berth.port(), "GET", "/v2/");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Docker-Distribution-API-Version"), "registry/2.0");
}

TEST(Serve, AnswersBadInputWithClearErrors) {
  BerthInstance berth;
  auto unknown = http_request("127.0.0.1", berth.port(), "GET", "/no/such/thing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(unknown->body, "{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"no route for GET /no/such/thing\"}]}\n");

  RawConnection big("127.0.0.1", berth.port());
  big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(64 * 1024, 'c') + "\r\n\r\n");
  auto too_large = big.read_response();
  ASSERT_TRUE(too_large);
  EXPECT_EQ(too_large->status, 431);

  RawConnection garbage("127.0.0.1", berth.port());
  garbage.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n");  // a TLS hello
  auto bad = garbage.read_response();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  // Still serving.
  EXPECT_EQ(http_request("127.0.0.1", berth.port(), "GET", "/healthz")->status, 200);
  EXPECT_TRUE(berth.process().running());
}

TEST(Serve, LaysOutThePrimaryVolume) {
  BerthInstance berth;
  EXPECT_TRUE(std::filesystem::is_directory(berth.data_dir() / "registry"));
  EXPECT_TRUE(std::filesystem::is_regular_file(berth.data_dir() / "run" / "berth.lock"));
}

TEST(Serve, SigtermClosesIdleConnectionsAndExitsZero) {
  BerthInstance berth;
  RawConnection idle("127.0.0.1", berth.port());
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_response());
  berth.process().send_signal(SIGTERM);
  EXPECT_TRUE(idle.wait_closed(10s));
  EXPECT_EQ(berth.process().wait_exit(10s), 0);
  EXPECT_NE(berth.process().output().find("berth stopped"), std::string::npos) << berth.process().output();
}

TEST(Serve, SigtermWithoutConnectionsExitsZero) {
  BerthInstance berth;
  berth.process().send_signal(SIGTERM);
  EXPECT_EQ(berth.process().wait_exit(10s), 0) << berth.process().output();
}

TEST(Serve, SigintStopsItToo) {
  BerthInstance berth;
  berth.process().send_signal(SIGINT);
  EXPECT_EQ(berth.process().wait_exit(10s), 0) << berth.process().output();
}

TEST(Serve, IdleMemoryIsSmall) {
  BerthInstance berth;
  ASSERT_EQ(http_request("127.0.0.1", berth.port(), "GET", "/healthz")->status, 200);
  long rss = berth.process().rss_kib();
  RecordProperty("idle_rss_kib", std::to_string(rss));
  std::cout << "berth serve idle RSS: " << rss << " KiB\n";
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 64 * 1024);
}

TEST(Serve, RefusesASecondInstanceOnTheSameVolume) {
  BerthInstance first;
  TempDir scratch;
  auto result = run({BERTH_BINARY, "--config", first.dir().write("second.yaml", "").string(), "serve", "--listen",
                     "127.0.0.1:0", "--data", first.data_dir().string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("another berth serve is already running on this volume"), std::string::npos)
      << result.output;
}

TEST(Serve, ReportsAPortInUse) {
  BerthInstance first;
  TempDir scratch;
  auto result = run({BERTH_BINARY, "--config", scratch.write("berth.yaml", "").string(), "serve", "--listen",
                     "127.0.0.1:" + std::to_string(first.port()), "--data", (scratch.path() / "var").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << result.output;
}

TEST(Serve, RefusesToServeBeyondLoopbackWithoutAuthentication) {
  TempDir scratch;
  auto result = run({BERTH_BINARY, "--config", scratch.write("berth.yaml", "").string(), "serve", "--listen",
                     "0.0.0.0:0", "--data", (scratch.path() / "var").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("refusing to serve on 0.0.0.0:0 without authentication"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace berth::testing

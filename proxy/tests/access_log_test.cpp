// The access log line is valid JSON with the expected fields, escapes what needs escaping and
// drops the query of /token.
#include "access_log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace berth::proxy {
namespace {

TEST(AccessLog, OneJsonObjectWithEveryField) {
  AccessRecord record{.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123)),
                      .remote_ip = "127.0.0.1",
                      .user = "alice",
                      .method = "GET",
                      .path = "/v2/api/app/manifests/1.0",
                      .query = "n=10",
                      .repository = "api/app",
                      .action = "pull",
                      .status = 200,
                      .bytes_in = 0,
                      .bytes_out = 1234,
                      .duration_ms = 1.5,
                      .request_id = "ab12cd34-1f"};
  auto line = format_access_record(record);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["time"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(json["remote_ip"], "127.0.0.1");
  EXPECT_EQ(json["user"], "alice");
  EXPECT_EQ(json["method"], "GET");
  EXPECT_EQ(json["path"], "/v2/api/app/manifests/1.0");
  EXPECT_EQ(json["query"], "n=10");
  EXPECT_EQ(json["repository"], "api/app");
  EXPECT_EQ(json["action"], "pull");
  EXPECT_EQ(json["status"], 200);
  EXPECT_EQ(json["bytes_in"], 0);
  EXPECT_EQ(json["bytes_out"], 1234);
  EXPECT_DOUBLE_EQ(json["duration_ms"].get<double>(), 1.5);
  EXPECT_EQ(json["request_id"], "ab12cd34-1f");
}

TEST(AccessLog, AnonymousIsADashAndUnknownAccessIsLeftOut) {
  auto json = nlohmann::json::parse(format_access_record({.method = "GET", .path = "/healthz", .status = 200}));
  EXPECT_EQ(json["user"], "-");
  EXPECT_FALSE(json.contains("repository"));
  EXPECT_FALSE(json.contains("action"));
  EXPECT_FALSE(json.contains("query"));
}

TEST(AccessLog, DropsTheQueryOfTheTokenEndpoint) {
  auto line = format_access_record(
      {.method = "GET", .path = "/token", .query = "service=berth&scope=repository:api:pull&account=alice"});
  EXPECT_EQ(line.find("scope"), std::string::npos);
  EXPECT_EQ(line.find("account"), std::string::npos);
  EXPECT_FALSE(nlohmann::json::parse(line).contains("query"));
}

TEST(AccessLog, EscapesQuotesBackslashesAndControlCharacters) {
  auto line = format_access_record({.user = "a\"b\\c", .method = "GET", .path = "/x\r\n\x01"});
  auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["user"], "a\"b\\c");
  EXPECT_EQ(json["path"], "/x\r\n\x01");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace berth::proxy

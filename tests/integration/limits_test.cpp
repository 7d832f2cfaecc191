// The front door's limits and observability on a real `berth serve`: the per-client rate limit
// (429 TOOMANYREQUESTS with Retry-After, per user once signed in), the JSON access log (one
// parseable line per request, never a password or token) and the /metrics counters.
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/eventually.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// "alice:alice-secret" and "alice:wrong-password", base64.
constexpr char const* alice_basic = "Basic YWxpY2U6YWxpY2Utc2VjcmV0";
constexpr char const* alice_wrong = "Basic YWxpY2U6d3JvbmctcGFzc3dvcmQ=";

fs::path make_htpasswd(TempDir const& dir) {
  auto const file = dir.path() / "htpasswd";
  EXPECT_EQ(run({"/usr/bin/htpasswd", "-cbB", "-C", "5", file.string(), "alice", "alice-secret"}).exit_code, 0);
  return file;
}

std::string auth_config(TempDir const& dir, std::string const& extra) {
  return "auth:\n  htpasswd: " + make_htpasswd(dir).string() +
         "\naccess:\n  - users: [alice]\n    actions: [pull, push]\n    repositories: [api]\n" + extra;
}

// The access log lines (JSON objects) berth has written so far.
std::vector<nlohmann::json> access_lines(BerthInstance& berth) {
  std::vector<nlohmann::json> lines;
  std::istringstream output(berth.process().output());
  for (std::string line; std::getline(output, line);)
    if (line.starts_with("{")) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::optional<HttpResponse> get(BerthInstance const& berth, std::string const& target,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
  return http_request("127.0.0.1", berth.port(), "GET", target, {}, headers);
}

TEST(Limits, AnonymousBurstOverTheRateLimitGets429AndIsServedAfterRetryAfter) {
  BerthInstance berth("server:\n  rate_limit:\n    requests_per_second: 1\n    burst: 4\n");
  std::optional<HttpResponse> refused;
  for (int request_idx = 0; request_idx < 20 && !refused; ++request_idx) {
    auto response = get(berth, "/v2/");
    ASSERT_TRUE(response);
    if (response->status == 429)
      refused = response;
    else
      EXPECT_EQ(response->status, 200);
  }
  ASSERT_TRUE(refused) << "20 requests at once were never refused with burst 4";
  auto body = nlohmann::json::parse(refused->body);
  EXPECT_EQ(body["errors"][0]["code"], "TOOMANYREQUESTS");
  auto retry_after = refused->header("Retry-After");
  ASSERT_TRUE(retry_after);
  int const wait_seconds = std::stoi(*retry_after);
  EXPECT_GE(wait_seconds, 1);
  EXPECT_LE(wait_seconds, 2);
  // Waiting as told is the behaviour under test, not a readiness guess.
  std::this_thread::sleep_for(std::chrono::seconds(wait_seconds));
  EXPECT_EQ(get(berth, "/v2/")->status, 200);
}

TEST(Limits, SignedInUserHasABucketOfItsOwn) {
  TempDir users;
  BerthInstance berth(auth_config(users, "server:\n  rate_limit:\n    requests_per_second: 1\n    burst: 3\n"));
  // Anonymous requests (401 challenges) use up the address's bucket...
  bool anonymous_refused = false;
  for (int request_idx = 0; request_idx < 10 && !anonymous_refused; ++request_idx)
    anonymous_refused = get(berth, "/v2/")->status == 429;
  EXPECT_TRUE(anonymous_refused);
  // ...but alice, from the same address, is counted on her own.
  EXPECT_EQ(get(berth, "/v2/", {{"Authorization", alice_basic}})->status, 200);
  int alice_refused = 0;
  for (int request_idx = 0; request_idx < 10; ++request_idx)
    if (get(berth, "/v2/", {{"Authorization", alice_basic}})->status == 429) ++alice_refused;
  EXPECT_GE(alice_refused, 5);
}

TEST(Limits, AccessLogHasOneJsonLinePerRequestAndNoSecrets) {
  TempDir users;
  BerthInstance berth(auth_config(users, ""));
  // A line is written once its response is out, which the client may see first: wait for each
  // before the next request, so the lines come in request order.
  auto logged = [&](std::size_t count) { return eventually(10s, [&] { return access_lines(berth).size() >= count; }); };
  ASSERT_EQ(get(berth, "/v2/api/app/tags/list", {{"Authorization", alice_basic}})->status, 404);
  ASSERT_TRUE(logged(1)) << berth.process().output();
  auto token = get(berth, "/token?service=berth&scope=repository:api/app:pull", {{"Authorization", alice_basic}});
  ASSERT_EQ(token->status, 200);
  ASSERT_TRUE(logged(2)) << berth.process().output();
  auto const bearer = nlohmann::json::parse(token->body)["token"].get<std::string>();
  ASSERT_EQ(get(berth, "/v2/", {{"Authorization", "Bearer " + bearer}})->status, 200);
  ASSERT_TRUE(logged(3)) << berth.process().output();
  ASSERT_EQ(get(berth, "/v2/", {{"Authorization", alice_wrong}})->status, 401);
  ASSERT_TRUE(logged(4)) << berth.process().output();

  auto lines = access_lines(berth);
  ASSERT_EQ(lines.size(), 4u) << berth.process().output();
  for (auto const& line : lines)
    for (auto field : {"time", "remote_ip", "user", "method", "path", "status", "bytes_in", "bytes_out", "duration_ms",
                       "request_id"})
      EXPECT_TRUE(line.contains(field)) << field << " missing in " << line.dump();
  EXPECT_EQ(lines[0]["user"], "alice");
  EXPECT_EQ(lines[0]["remote_ip"], "127.0.0.1");
  EXPECT_EQ(lines[0]["method"], "GET");
  EXPECT_EQ(lines[0]["path"], "/v2/api/app/tags/list");
  EXPECT_EQ(lines[0]["repository"], "api/app");
  EXPECT_EQ(lines[0]["action"], "pull");
  EXPECT_EQ(lines[0]["status"], 404);
  EXPECT_EQ(lines[1]["path"], "/token");
  EXPECT_FALSE(lines[1].contains("query"));
  EXPECT_EQ(lines[1]["user"], "alice");
  EXPECT_EQ(lines[2]["user"], "alice");  // from the verified token
  EXPECT_EQ(lines[3]["user"], "-");      // wrong password: nobody was verified
  EXPECT_EQ(lines[3]["status"], 401);
  auto const output = berth.process().output();
  for (auto secret : {std::string("alice-secret"), std::string("YWxpY2U6YWxpY2Utc2VjcmV0"),
                      std::string("YWxpY2U6d3JvbmctcGFzc3dvcmQ="), bearer, std::string("Authorization")})
    EXPECT_EQ(output.find(secret), std::string::npos) << "the log holds " << secret;
}

TEST(Limits, AccessLogCanBeTurnedOff) {
  BerthInstance berth("log:\n  access: false\n");
  ASSERT_EQ(get(berth, "/v2/")->status, 200);
  ASSERT_EQ(get(berth, "/healthz")->status, 200);
  // The metrics count the requests once answered; by then an access line would be written too.
  ASSERT_TRUE(eventually(10s, [&] {
    auto scrape = get(berth, "/metrics");
    return scrape &&
           scrape->body.find("berth_http_requests_total{route=\"health\",status=\"2xx\"} 1\n") != std::string::npos;
  }));
  EXPECT_TRUE(access_lines(berth).empty()) << berth.process().output();
}

// The value of an unlabelled or labelled sample line in a scrape, -1 when absent.
double sample(std::string const& scrape, std::string const& name) {
  auto at = scrape.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(scrape.substr(at + name.size() + 2));
}

TEST(Limits, MetricsCountRequestsBytesAndAuthFailures) {
  TempDir users;
  BerthInstance berth(auth_config(users, ""));
  auto before = get(berth, "/metrics");
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 200);
  EXPECT_NE(before->header("Content-Type").value_or("").find("text/plain"), std::string::npos);
  auto const registry_2xx = "berth_http_requests_total{route=\"registry\",status=\"2xx\"}";
  auto const registry_4xx = "berth_http_requests_total{route=\"registry\",status=\"4xx\"}";
  EXPECT_EQ(sample(before->body, registry_2xx), 0);

  ASSERT_EQ(get(berth, "/v2/", {{"Authorization", alice_basic}})->status, 200);
  ASSERT_EQ(get(berth, "/v2/", {{"Authorization", alice_wrong}})->status, 401);
  ASSERT_EQ(get(berth, "/v2/")->status, 401);  // a challenge, not a failure
  ASSERT_EQ(get(berth, "/healthz")->status, 200);

  std::string scrape;
  EXPECT_TRUE(eventually(10s, [&] {
    scrape = get(berth, "/metrics")->body;
    return sample(scrape, registry_2xx) == 1 && sample(scrape, registry_4xx) == 2;
  })) << scrape;
  EXPECT_EQ(sample(scrape, "berth_auth_failures_total"), 1);
  EXPECT_EQ(sample(scrape, "berth_http_requests_total{route=\"health\",status=\"2xx\"}"), 1);
  EXPECT_GT(sample(scrape, "berth_http_sent_bytes_total"), sample(before->body, "berth_http_sent_bytes_total"));
  EXPECT_GE(sample(scrape, "berth_http_request_duration_seconds_count"), 5);
  EXPECT_GE(sample(scrape, "berth_http_open_connections"), 1);  // this scrape's own
}

TEST(Limits, MetricsCanBeTurnedOff) {
  BerthInstance berth("server:\n  metrics: off\n");
  EXPECT_EQ(get(berth, "/metrics")->status, 404);
}

}  // namespace
}  // namespace berth::testing

// The registry client against a small loopback registry built on berth's server, answering the
// way ECR and busy registries do: Basic challenges, 503 and 429 before success (retried with
// backoff), and the immutable-tag refusal (reported as such).
#include "berth/registry/registry_client.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "berth/proxy/server.hpp"
#include "berth/testing/error_of.hpp"

namespace berth::registry {
namespace {

constexpr char digest_text[] = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

class RegistryClientTest : public ::testing::Test {
protected:
  void SetUp() override {
    proxy::Router routes;
    routes.add_prefix("/v2/", [this](proxy::Request const& request) -> proxy::Reply {
      // ECR's scheme: Basic with the token-derived password on every request.
      if (request.headers.get("Authorization") != "Basic " + http::base64("AWS:token-password")) {
        auto response = proxy::json_response(401, R"({"errors":[{"code":"DENIED","message":"Not Authorized"}]})");
        response.headers.set("WWW-Authenticate", "Basic realm=\"https://example\",service=\"ecr.amazonaws.com\"");
        return response;
      }
      if (request.method == proxy::Method::head && request.path.find("/blobs/") != std::string::npos) {
        if (++busy_answers_ <= 2) return proxy::json_response(503, "{}");
        proxy::Response found;
        found.headers.set("Content-Length", "0");
        return found;
      }
      if (request.method == proxy::Method::get && request.path.find("/manifests/") != std::string::npos) {
        if (++throttled_answers_ == 1) {
          auto response =
              proxy::json_response(429, R"({"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]})");
          response.headers.set("Retry-After", "1");
          return response;
        }
        return proxy::json_response(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]})");
      }
      if (request.method == proxy::Method::put)
        return proxy::json_response(400, R"({"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already )"
                                         R"(exists in the 'team/app' repository and cannot be overwritten because )"
                                         R"(the tag is immutable."}]})");
      return proxy::json_response(200, "{}");
    });
    proxy::ServerConfig config;
    config.port = 0;
    config.threads = 2;
    config.access_log = false;
    server_ = std::make_unique<proxy::Server>(config, std::move(routes));
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  RegistryTarget target(std::string password = "token-password") const {
    return {
        .url = "http://127.0.0.1:" + std::to_string(server_->local_port()),
        .username = "AWS",
        .password = std::move(password),
        .http = {},
        .retry = {.attempts = 4, .first_delay = std::chrono::milliseconds(20), .max_delay = std::chrono::seconds(1)}};
  }

  std::atomic<int> busy_answers_{0};
  std::atomic<int> throttled_answers_{0};
  std::unique_ptr<proxy::Server> server_;
  std::thread thread_;
};

TEST_F(RegistryClientTest, AnswersABasicChallengeAndRetriesBusyAnswers) {
  RegistryClient client(target());
  EXPECT_EQ(client.blob_size("team/app", *Digest::parse(digest_text)), 0u);
  EXPECT_EQ(busy_answers_, 3);  // two 503s, then the answer
  auto const started = std::chrono::steady_clock::now();
  EXPECT_FALSE(client.get_manifest("team/app", "v1").has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));  // Retry-After was honoured
  EXPECT_EQ(throttled_answers_, 2);
}

TEST_F(RegistryClientTest, ReportsAnImmutableTagAsSuch) {
  RegistryClient client(target());
  try {
    client.put_manifest("team/app", "v1", "application/vnd.oci.image.manifest.v1+json", "{}");
    FAIL() << "no error";
  } catch (TagImmutableError const& error) {
    EXPECT_EQ(error.code(), "TAG_INVALID");
    EXPECT_NE(std::string(error.what()).find("cannot be overwritten because the tag is immutable"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("HINT: the target keeps tags immutable"), std::string::npos);
  }
}

TEST_F(RegistryClientTest, WrongCredentialsAreNotRetried) {
  RegistryClient client(target("wrong"));
  auto const error = testing::error_of([&] { client.check_access(); });
  EXPECT_TRUE(error.starts_with("GET /v2/ at http://127.0.0.1:" + std::to_string(server_->local_port()) +
                                " failed: HTTP 401 DENIED: Not Authorized\nHINT: check the credentials"))
      << error;
}

}  // namespace
}  // namespace berth::registry

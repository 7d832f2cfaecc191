// Counters, the Prometheus text and the access policy of /metrics.
#include "berth/proxy/metrics.hpp"

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

TEST(Metrics, ClassifiesRoutes) {
  EXPECT_EQ(classify_route("/v2/"), RouteClass::registry);
  EXPECT_EQ(classify_route("/v2"), RouteClass::registry);
  EXPECT_EQ(classify_route("/v2/api/app/blobs/sha256:ab"), RouteClass::registry);
  EXPECT_EQ(classify_route("/token"), RouteClass::token);
  EXPECT_EQ(classify_route("/healthz"), RouteClass::health);
  EXPECT_EQ(classify_route("/metrics"), RouteClass::other);
  EXPECT_EQ(classify_route("/v2x"), RouteClass::other);
}

TEST(Metrics, RendersCountersAndACumulativeHistogram) {
  Metrics metrics;
  metrics.record_request(RouteClass::registry, 200, 10, 100, 0.002);
  metrics.record_request(RouteClass::registry, 404, 0, 50, 0.2);
  metrics.record_request(RouteClass::token, 401, 0, 20, 40);
  metrics.record_auth_failure();
  metrics.connection_opened();
  metrics.connection_opened();
  metrics.connection_closed();
  EXPECT_EQ(metrics.requests(RouteClass::registry, 2), 1u);
  EXPECT_EQ(metrics.requests(RouteClass::registry, 4), 1u);
  EXPECT_EQ(metrics.requests(RouteClass::token, 4), 1u);
  auto text = metrics.render();
  EXPECT_NE(text.find("berth_http_requests_total{route=\"registry\",status=\"2xx\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_requests_total{route=\"health\",status=\"5xx\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_request_duration_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_request_duration_seconds_bucket{le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_request_duration_seconds_bucket{le=\"30\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_request_duration_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_received_bytes_total 10\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_sent_bytes_total 170\n"), std::string::npos);
  EXPECT_NE(text.find("berth_auth_failures_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("berth_http_open_connections 1\n"), std::string::npos);
}

TEST(Metrics, LoopbackPolicyRefusesOtherAddresses) {
  EXPECT_TRUE(metrics_allowed(MetricsAccess::loopback, "127.0.0.1:5000"));
  EXPECT_TRUE(metrics_allowed(MetricsAccess::loopback, "127.1.2.3:1"));
  EXPECT_TRUE(metrics_allowed(MetricsAccess::loopback, "[::1]:5000"));
  EXPECT_TRUE(metrics_allowed(MetricsAccess::loopback, "[::ffff:127.0.0.1]:5000"));
  EXPECT_FALSE(metrics_allowed(MetricsAccess::loopback, "10.0.0.5:5000"));
  EXPECT_FALSE(metrics_allowed(MetricsAccess::loopback, "[2001:db8::1]:5000"));
  EXPECT_FALSE(metrics_allowed(MetricsAccess::loopback, "[::ffff:10.0.0.1]:5000"));
  EXPECT_FALSE(metrics_allowed(MetricsAccess::loopback, "unknown"));
  EXPECT_TRUE(metrics_allowed(MetricsAccess::authenticated, "10.0.0.5:5000"));
  EXPECT_FALSE(metrics_allowed(MetricsAccess::off, "127.0.0.1:5000"));
}

TEST(Metrics, HandlerRefusesANonLoopbackClient) {
  auto handler = metrics_handler(std::make_shared<Metrics>(), MetricsAccess::loopback);
  Request request;
  request.remote_address = "192.0.2.7:40000";
  try {
    handler(request);
    FAIL() << "served metrics to a non-loopback client";
  } catch (HttpError const& error) {
    EXPECT_EQ(error.status(), 403);
    EXPECT_EQ(error.code(), "DENIED");
  }
  request.remote_address = "127.0.0.1:40000";
  auto reply = handler(request);
  auto& response = std::get<Response>(reply);
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(std::get<std::string>(response.body).find("berth_http_requests_total"), std::string::npos);
}

TEST(Metrics, HandlerIs404WhenOff) {
  auto handler = metrics_handler(std::make_shared<Metrics>(), MetricsAccess::off);
  Request request;
  request.remote_address = "127.0.0.1:40000";
  EXPECT_THROW(handler(request), HttpError);
}

}  // namespace
}  // namespace berth::proxy

// Which route takes a request, and the target the upstream sees.
#include "berth/proxy/routes.hpp"

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

Route route(std::string host, std::string prefix, std::uint16_t port, bool strip = false) {
  Route result;
  result.host = std::move(host);
  result.path_prefix = std::move(prefix);
  result.upstream_port = port;
  result.strip_prefix = strip;
  return result;
}

TEST(Routes, MatchByHostThenLongestPrefixAtASegmentBoundary) {
  std::vector<Route> routes{route("app.example.com", "/", 1), route("app.example.com", "/api", 2),
                            route("app.example.com", "/api/v2/", 3), route("other.example.com", "/wiki", 4)};
  auto port_for = [&](std::string_view host, std::string_view path) {
    auto const* found = match_route(routes, host, path);
    return found ? found->upstream_port : 0;
  };
  EXPECT_EQ(port_for("app.example.com", "/"), 1);
  EXPECT_EQ(port_for("app.example.com", "/apis"), 1);  // not under /api
  EXPECT_EQ(port_for("app.example.com", "/api"), 2);
  EXPECT_EQ(port_for("app.example.com", "/api/orders"), 2);
  EXPECT_EQ(port_for("app.example.com", "/api/v2/x"), 3);
  EXPECT_EQ(port_for("APP.Example.COM:8443", "/api"), 2);  // case and port do not matter
  EXPECT_EQ(port_for("app.example.com.", "/"), 1);
  EXPECT_EQ(port_for("other.example.com", "/"), 0);  // only /wiki there: berth's own
  EXPECT_EQ(port_for("other.example.com", "/wiki"), 4);
  EXPECT_EQ(port_for("example.com", "/"), 0);
  EXPECT_EQ(port_for("", "/"), 0);
  std::vector<Route> literal{route("::1", "/", 5)};
  EXPECT_EQ(match_route(literal, "[::1]:5000", "/x")->upstream_port, 5);
}

TEST(Routes, StripPrefixKeepsTheRestOfTheTarget) {
  EXPECT_EQ(upstream_target(route("a", "/wiki", 1, true), "/wiki/page?x=1"), "/page?x=1");
  EXPECT_EQ(upstream_target(route("a", "/wiki", 1, true), "/wiki"), "/");
  EXPECT_EQ(upstream_target(route("a", "/wiki", 1, true), "/wiki?x=1"), "/?x=1");
  EXPECT_EQ(upstream_target(route("a", "/wiki/", 1, true), "/wiki/page"), "/page");
  EXPECT_EQ(upstream_target(route("a", "/wiki", 1, false), "/wiki/page"), "/wiki/page");
  EXPECT_EQ(upstream_target(route("a", "/", 1, true), "/x"), "/x");
}

TEST(Routes, ProbeReportsAClosedPort) {
  Route closed = route("a", "/", 1);  // tcpmux: nothing listens on loopback
  auto problem = probe_upstream(closed, std::chrono::seconds(2));
  ASSERT_TRUE(problem);
  EXPECT_EQ(*problem, "Connection refused");
  EXPECT_EQ(closed.upstream_url(), "http://127.0.0.1:1");
}

}  // namespace
}  // namespace berth::proxy

#include "berth/registry/api.hpp"

#include <gtest/gtest.h>

namespace berth::registry {
namespace {

proxy::Response dispatch(proxy::Router const& router, proxy::Method method, std::string path) {
  proxy::Request request;
  request.method = method;
  request.method_name = std::string(proxy::to_string(method));
  request.path = request.target = std::move(path);
  return std::get<proxy::Response>(router.dispatch(request));
}

TEST(RegistryApi, BaseEndpointAnnouncesRegistryV2) {
  proxy::Router router;
  add_routes(router, Config{});
  auto response = dispatch(router, proxy::Method::get, "/v2/");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.get("Docker-Distribution-API-Version"), "registry/2.0");
  EXPECT_EQ(response.headers.get("Content-Type"), "application/json");
}

TEST(RegistryApi, BaseEndpointAnswersHead) {
  proxy::Router router;
  add_routes(router, Config{});
  EXPECT_EQ(dispatch(router, proxy::Method::head, "/v2/").status, 200);
}

}  // namespace
}  // namespace berth::registry

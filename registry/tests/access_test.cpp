// The registry's access rule: which repository and action each API request needs.
#include "berth/registry/access.hpp"

#include <gtest/gtest.h>

namespace berth::registry {
namespace {

using proxy::Action;
using proxy::Method;

std::string need(Method method, std::string path) {
  proxy::Request request;
  request.method = method;
  request.path = std::move(path);
  auto const required = required_access(request);
  if (!required) return "sign-in";
  return std::string(proxy::to_string(required->action)) + " " + required->repository;
}

TEST(RequiredAccess, MapsMethodsAndPaths) {
  EXPECT_EQ(need(Method::get, "/v2/"), "sign-in");
  EXPECT_EQ(need(Method::get, "/v2/_catalog"), "catalog ");
  EXPECT_EQ(need(Method::get, "/v2/api/orders/manifests/v1"), "pull api/orders");
  EXPECT_EQ(need(Method::head, "/v2/api/orders/blobs/sha256:ab"), "pull api/orders");
  EXPECT_EQ(need(Method::get, "/v2/api/orders/tags/list"), "pull api/orders");
  EXPECT_EQ(need(Method::get, "/v2/api/orders/referrers/sha256:ab"), "pull api/orders");
  EXPECT_EQ(need(Method::post, "/v2/api/orders/blobs/uploads/"), "push api/orders");
  EXPECT_EQ(need(Method::patch, "/v2/api/orders/blobs/uploads/0123"), "push api/orders");
  EXPECT_EQ(need(Method::put, "/v2/api/orders/manifests/v1"), "push api/orders");
  EXPECT_EQ(need(Method::delete_, "/v2/api/orders/manifests/v1"), "delete api/orders");
  EXPECT_EQ(need(Method::delete_, "/v2/api/orders/blobs/sha256:ab"), "delete api/orders");
  EXPECT_EQ(need(Method::options, "/v2/api/orders/manifests/v1"), "push api/orders");
}

// Names containing the API's own words are split where the handlers split them.
TEST(RequiredAccess, SplitsTrickyNamesLikeTheHandlers) {
  EXPECT_EQ(need(Method::get, "/v2/api/manifests/x/manifests/v1"), "pull api/manifests/x");
  EXPECT_EQ(need(Method::put, "/v2/api/blobs/manifests/blobs"), "push api/blobs");
  EXPECT_EQ(need(Method::get, "/v2/api/x/unknown"), "sign-in");  // the API answers 404
}

}  // namespace
}  // namespace berth::registry

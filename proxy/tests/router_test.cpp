#include "berth/proxy/router.hpp"

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

Handler answer(std::string text) {
  return [text](Request const&) -> Reply { return json_response(200, text); };
}

Request make(Method method, std::string path) {
  Request request;
  request.method = method;
  request.method_name = std::string(to_string(method));
  request.path = request.target = std::move(path);
  return request;
}

std::string body_of(Reply reply) {
  return std::get<std::string>(std::get<Response>(reply).body);
}

HttpError error_of(Router const& router, Request const& request) {
  try {
    router.dispatch(request);
  } catch (HttpError const& error) {
    return error;
  }
  throw std::runtime_error("expected an HttpError");
}

TEST(Router, ExactRouteBeatsPrefix) {
  Router router;
  router.add_prefix("/v2/", answer("prefix"));
  router.add(Method::get, "/v2/", answer("exact"));
  EXPECT_EQ(body_of(router.dispatch(make(Method::get, "/v2/"))), "exact");
  EXPECT_EQ(body_of(router.dispatch(make(Method::get, "/v2/api/app/tags/list"))), "prefix");
}

TEST(Router, LongestPrefixWins) {
  Router router;
  router.add_prefix("/v2/", answer("short"));
  router.add_prefix("/v2/_catalog", answer("long"));
  EXPECT_EQ(body_of(router.dispatch(make(Method::get, "/v2/_catalog"))), "long");
  EXPECT_EQ(body_of(router.dispatch(make(Method::get, "/v2/x"))), "short");
}

TEST(Router, GetRouteAnswersHead) {
  Router router;
  router.add(Method::get, "/healthz", answer("ok"));
  EXPECT_EQ(body_of(router.dispatch(make(Method::head, "/healthz"))), "ok");
}

TEST(Router, UnknownPathIs404) {
  Router router;
  auto error = error_of(router, make(Method::get, "/nope"));
  EXPECT_EQ(error.status(), 404);
  EXPECT_EQ(error.code(), "NOT_FOUND");
  EXPECT_STREQ(error.what(), "no route for GET /nope");
}

TEST(Router, WrongMethodIs405WithAllow) {
  Router router;
  router.add(Method::get, "/healthz", answer("ok"));
  router.add(Method::post, "/healthz", answer("ok"));
  auto error = error_of(router, make(Method::delete_, "/healthz"));
  EXPECT_EQ(error.status(), 405);
  EXPECT_EQ(error.headers.get("Allow"), "GET, HEAD, POST");
  EXPECT_STREQ(error.what(), "method DELETE is not allowed on /healthz");
}

TEST(Router, DuplicateRouteIsRefused) {
  Router router;
  router.add(Method::get, "/a", answer("1"));
  EXPECT_THROW(router.add(Method::get, "/a", answer("2")), Error);
  router.add_prefix("/p/", answer("1"));
  EXPECT_THROW(router.add_prefix("/p/", answer("2")), Error);
}

}  // namespace
}  // namespace berth::proxy

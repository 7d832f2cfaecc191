#include "berth/proxy/http.hpp"

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

TEST(Headers, LookupIgnoresCase) {
  Headers headers;
  headers.add("Content-Type", "text/plain");
  EXPECT_EQ(headers.get("content-type"), "text/plain");
  EXPECT_FALSE(headers.get("Content-Length"));
}

TEST(Headers, SetReplacesAllFieldsOfThatName) {
  Headers headers;
  headers.add("Link", "a");
  headers.add("link", "b");
  headers.set("LINK", "c");
  int count = 0;
  for (auto const& [name, value] : headers) {
    ++count;
    EXPECT_EQ(value, "c");
  }
  EXPECT_EQ(count, 1);
}

TEST(Request, QueryParamDecodesPercentAndPlus) {
  Request request;
  request.query = "n=10&last=api%2Fapp&scope=repository%3Aapi%2Fx%3Apull+push&flag";
  EXPECT_EQ(request.query_param("n"), "10");
  EXPECT_EQ(request.query_param("last"), "api/app");
  EXPECT_EQ(request.query_param("scope"), "repository:api/x:pull push");
  EXPECT_EQ(request.query_param("flag"), "");
  EXPECT_FALSE(request.query_param("missing"));
}

TEST(Request, QueryParamKeepsMalformedEscapesLiterally) {
  Request request;
  request.query = "a=%zz&b=%4";
  EXPECT_EQ(request.query_param("a"), "%zz");
  EXPECT_EQ(request.query_param("b"), "%4");
}

TEST(ErrorResponse, UsesTheOciEnvelope) {
  HttpError error(404, "NAME_UNKNOWN", "repository \"api/x\" is not known");
  error.headers.set("X-Extra", "1");
  auto response = error_response(error);
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.headers.get("Content-Type"), "application/json");
  EXPECT_EQ(response.headers.get("X-Extra"), "1");
  EXPECT_EQ(std::get<std::string>(response.body),
            "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository \\\"api/x\\\" is not known\"}]}\n");
}

TEST(Buffered, CollectsTheBodyAndCallsTheHandler) {
  auto handler = buffered(16, [](Request const&, std::string body) { return json_response(200, body); });
  Request request;
  request.has_body = true;
  auto reply = handler(request);
  auto& sink = std::get<std::unique_ptr<BodySink>>(reply);
  sink->write(std::string_view("hello "));
  sink->write(std::string_view("world"));
  EXPECT_EQ(std::get<std::string>(sink->finish().body), "hello world");
}

TEST(Buffered, RefusesAnAnnouncedBodyOverTheLimit) {
  auto handler = buffered(16, [](Request const&, std::string) { return json_response(200, ""); });
  Request request;
  request.has_body = true;
  request.content_length = 17;
  try {
    handler(request);
    FAIL() << "expected HttpError";
  } catch (HttpError const& error) {
    EXPECT_EQ(error.status(), 413);
    EXPECT_STREQ(error.what(), "request body exceeds the limit of 16 bytes");
  }
}

TEST(Buffered, RefusesAChunkedBodyThatGrowsOverTheLimit) {
  auto handler = buffered(4, [](Request const&, std::string) { return json_response(200, ""); });
  Request request;
  request.has_body = true;
  auto reply = handler(request);
  auto& sink = std::get<std::unique_ptr<BodySink>>(reply);
  sink->write(std::string_view("1234"));
  EXPECT_THROW(sink->write(std::string_view("5")), HttpError);
}

TEST(Buffered, CallsTheHandlerAtOnceWithoutABody) {
  auto handler = buffered(4, [](Request const&, std::string body) { return json_response(200, "[" + body + "]"); });
  Request request;
  auto reply = handler(request);
  EXPECT_EQ(std::get<std::string>(std::get<Response>(reply).body), "[]");
}

}  // namespace
}  // namespace berth::proxy

// ECR request envelope: the facts from the ECR promotion notes (signing name "ecr", host
// api.ecr.<region>.amazonaws.com, X-Amz-Target, Content-Type) and signatures cross-checked with
// botocore 1.43's SigV4Auth for the same request, credentials and time.
#include "berth/registry/ecr.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include "berth/core/error.hpp"

using namespace berth::registry;

namespace {

// 2026-11-27T16:00:00Z
auto const signing_time = std::chrono::system_clock::from_time_t(1795795200);
sigv4::Credentials const credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

std::string header(ecr::ApiRequest const& request, std::string_view name) {
  for (auto const& h : request.headers) {
    if (h.name == name) return h.value;
  }
  return "<missing>";
}

TEST(Ecr, ApiHostNamesTheRegion) {
  EXPECT_EQ(ecr::api_host("eu-west-1"), "api.ecr.eu-west-1.amazonaws.com");
}

TEST(Ecr, RejectsARegionThatWouldChangeTheHost) {
  for (std::string_view region : {"", "eu-west-1.evil.com", "EU-WEST-1", "eu-west-1/x", "eu west"}) {
    try {
      ecr::api_host(region);
      ADD_FAILURE() << "accepted region " << region;
    } catch (berth::Error const& error) {
      EXPECT_EQ(std::string(error.what()), "invalid AWS region '" + std::string(region) +
                                               "': expected lowercase letters, digits and '-'\n"
                                               "HINT: use a region name such as eu-west-1.");
    }
  }
}

TEST(Ecr, GetAuthorizationTokenRequestMatchesBotocore) {
  EXPECT_EQ(std::chrono::system_clock::to_time_t(signing_time), 1795795200);
  auto const request = ecr::sign_api_request("GetAuthorizationToken", "{}", "eu-west-1", credentials, signing_time);
  EXPECT_EQ(request.host, "api.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(request.target, "/");
  EXPECT_EQ(request.body, "{}");
  EXPECT_EQ(header(request, "Host"), "api.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(header(request, "Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(header(request, "X-Amz-Target"), "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
  EXPECT_EQ(header(request, "X-Amz-Date"), "20261127T160000Z");
  EXPECT_EQ(header(request, "X-Amz-Security-Token"), "<missing>");
  EXPECT_EQ(header(request, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/eu-west-1/ecr/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
            "Signature=d5151a1b285be3e1c41683af060481cd6553c3aee5ae68c0347ad910e950d352");
}

TEST(Ecr, SessionTokenIsSentAndSigned) {
  auto with_token = credentials;
  with_token.session_token = "FwoGZXIvYXdzEXAMPLETOKEN";
  auto const request = ecr::sign_api_request("GetAuthorizationToken", "{}", "eu-west-1", with_token, signing_time);
  EXPECT_EQ(header(request, "X-Amz-Security-Token"), "FwoGZXIvYXdzEXAMPLETOKEN");
  EXPECT_EQ(header(request, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/eu-west-1/ecr/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
            "Signature=39fa9b346c982b25b98be458b56e2fb9e26492a5fe648b34b18648564bf9e596");
}

TEST(Ecr, RejectsABadOperationName) {
  EXPECT_THROW(ecr::sign_api_request("Get\r\nX: y", "{}", "eu-west-1", credentials, signing_time), berth::Error);
  EXPECT_THROW(ecr::sign_api_request("", "{}", "eu-west-1", credentials, signing_time), berth::Error);
}

TEST(Ecr, ParsesGetAuthorizationTokenResponse) {
  // base64("AWS:?>?>~~x") has '+', '/' and padding: the alphabet the url-safe decoder lacks.
  auto const token = ecr::parse_authorization_token(
      R"({"authorizationData":[{"authorizationToken":"QVdTOj8+Pz5+fng=","expiresAt":1.7958024125E9,)"
      R"("proxyEndpoint":"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}]})");
  EXPECT_EQ(token.basic_credentials, "QVdTOj8+Pz5+fng=");
  EXPECT_EQ(token.username, "AWS");
  EXPECT_EQ(token.password, "?>?>~~x");
  EXPECT_EQ(token.proxy_endpoint, "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(token.expires_at.time_since_epoch()).count(),
            1795802412500);
  auto const whole = ecr::parse_authorization_token(
      R"({"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1795802412,"proxyEndpoint":"https://x"}]})");
  EXPECT_EQ(whole.password, "pw");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(whole.expires_at), 1795802412);
}

TEST(Ecr, RejectsMalformedTokenResponsesWithoutQuotingTheToken) {
  auto message = [](std::string_view body) -> std::string {
    try {
      ecr::parse_authorization_token(body);
    } catch (berth::Error const& error) {
      return error.what();
    }
    return "no error";
  };
  std::string const hint = "\nHINT: check that the endpoint is the ECR API (api.ecr.<region>.amazonaws.com).";
  std::string const prefix = "cannot read the ECR GetAuthorizationToken response: ";
  EXPECT_EQ(message("<html>"), prefix + "the body is not a JSON object" + hint);
  EXPECT_EQ(message(R"({"authorizationData":[]})"), prefix + "authorizationData is missing or empty" + hint);
  EXPECT_EQ(message(R"({"authorizationData":[{"authorizationToken":"QVdTOnB3","proxyEndpoint":"https://x"}]})"),
            prefix + "expiresAt is missing or not a number" + hint);
  EXPECT_EQ(
      message(R"({"authorizationData":[{"authorizationToken":"bm9jb2xvbg==","expiresAt":1,"proxyEndpoint":"x"}]})"),
      prefix + "authorizationToken is not base64 of user:password" + hint);
  EXPECT_EQ(message(R"({"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1}]})"),
            prefix + "proxyEndpoint is missing or not a string" + hint);
}

TEST(Ecr, ClassifiesApiErrorsByType) {
  auto const expired = ecr::parse_api_error(
      R"({"__type":"com.amazonaws.ecr#ExpiredTokenException","message":"The security token included in the request is expired"})",
      "");
  EXPECT_EQ(expired.type, "ExpiredTokenException");
  EXPECT_EQ(expired.message, "The security token included in the request is expired");
  auto const capital = ecr::parse_api_error(R"({"__type":"AccessDeniedException","Message":"denied"})", "");
  EXPECT_EQ(capital.type, "AccessDeniedException");
  EXPECT_EQ(capital.message, "denied");
  auto const from_header = ecr::parse_api_error("not json", "ThrottlingException:http://internal.amazon.com/");
  EXPECT_EQ(from_header.type, "ThrottlingException");
  EXPECT_EQ(from_header.message, "");
}

}  // namespace

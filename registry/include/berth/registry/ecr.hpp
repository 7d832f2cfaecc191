// Requests to the ECR control plane (AWS JSON 1.1 over HTTPS, SigV4 with signing name "ecr"):
// building and signing them, and reading their answers. No sockets here: the HTTP round trip is
// the caller's, so everything in this header is pure and unit-testable.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "berth/registry/sigv4.hpp"

namespace berth::registry::ecr {

/// SigV4 signing name of the ECR API (the host says "api.ecr", the signature says "ecr").
inline constexpr std::string_view signing_name = "ecr";
/// X-Amz-Target prefix of every ECR JSON operation.
inline constexpr std::string_view target_prefix = "AmazonEC2ContainerRegistry_V20150921.";
inline constexpr std::string_view json_content_type = "application/x-amz-json-1.1";

/// "api.ecr.<region>.amazonaws.com". Throws berth::Error when `region` is not a plausible AWS
/// region name (lowercase letters, digits and '-'), so it can never change the host.
std::string api_host(std::string_view region);

/// A signed ECR API call, ready to send as "POST / HTTP/1.1" to `host` over HTTPS.
struct ApiRequest {
  std::string host;
  std::string target = "/";
  std::vector<sigv4::Header> headers;  ///< Host, Content-Type, X-Amz-Target and the SigV4 headers
  std::string body;
};

/// Builds and signs `operation` (e.g. "GetAuthorizationToken") with JSON `body` for `region` at
/// `time`, addressed to `host` ("host[:port]"; empty: api_host(region), the real endpoint).
/// Throws berth::Error on a bad region or operation name. Thread-safe (pure).
ApiRequest sign_api_request(std::string_view operation, std::string body, std::string_view region,
                            sigv4::Credentials const& credentials, std::chrono::system_clock::time_point time,
                            std::string_view host = {});

/// The registry credentials GetAuthorizationToken hands out (valid 12 hours). Never log them.
struct AuthorizationToken {
  std::string basic_credentials;  ///< authorizationToken as sent: base64 of "AWS:<password>"
  std::string username;           ///< "AWS"
  std::string password;
  std::string proxy_endpoint;  ///< "https://<account>.dkr.ecr.<region>.amazonaws.com"
  std::chrono::system_clock::time_point expires_at;
};

/// Reads a 200 response body of GetAuthorizationToken (authorizationData[0]; expiresAt in epoch
/// seconds, possibly fractional). Throws berth::Error naming the missing or malformed field; the
/// message never quotes the token.
AuthorizationToken parse_authorization_token(std::string_view body);

/// An error answer of the JSON API: `type` without namespace ("...#Name") or suffix
/// ("Name:..."), taken from the body's "__type" or else the x-amzn-ErrorType header.
struct ApiError {
  std::string type;     ///< e.g. "ExpiredTokenException"; "" when neither says
  std::string message;  ///< body "message" or "Message"; "" when absent
};

/// Parses a non-2xx answer; never throws (a body that is not JSON gives an empty message).
ApiError parse_api_error(std::string_view body, std::string_view error_type_header);

}  // namespace berth::registry::ecr

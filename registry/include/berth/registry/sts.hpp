// Requests to AWS STS for AssumeRole (the Query API: a form-encoded POST, SigV4 with signing
// name "sts") and reading its XML answers, without an SDK or an XML library. No sockets here:
// the round trip is the caller's (aws_credentials.cpp), so everything is pure and unit-testable.
// The XML reader is deliberately small and strict: no DTDs or entity definitions (so no entity
// expansion or external entities), bounded size and depth, and the fields it reads must appear
// exactly once.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/registry/sigv4.hpp"

namespace berth::registry::sts {

/// SigV4 signing name of STS.
inline constexpr std::string_view signing_name = "sts";
inline constexpr std::string_view api_version = "2011-06-15";
/// Largest STS answer read (a real one is a few KiB).
inline constexpr std::size_t max_response_bytes = 256 * 1024;

/// Where AssumeRole is sent and the region its signature names.
struct Endpoint {
  std::string url;     ///< "https://sts.eu-west-1.amazonaws.com/" (ends with a path)
  std::string region;  ///< signing region ("us-east-1" for the global endpoint)
};

/// The endpoint the AWS CLI would use: regional ("sts.REGION.amazonaws.com", .com.cn in China)
/// unless `regional` is false and `region` is one of the legacy regions served by the global
/// sts.amazonaws.com; no region also means the global endpoint. Throws berth::Error when
/// `region` is not a plausible region name.
Endpoint default_endpoint(std::optional<std::string> const& region, bool regional);

struct AssumeRoleParameters {
  std::string role_arn;
  std::string session_name;
  std::string external_id{};                 ///< empty: not sent
  std::optional<int> duration_seconds = {};  ///< nullopt: not sent (STS uses 3600)
};

/// Body of an AssumeRole call: "Action=AssumeRole&Version=2011-06-15&RoleArn=..." with every
/// value percent-encoded (RFC 3986).
std::string assume_role_body(AssumeRoleParameters const& parameters);

/// A signed AssumeRole call, ready to POST to `url`.
struct SignedRequest {
  std::string url;
  std::vector<sigv4::Header> headers;  ///< Host, Content-Type and the SigV4 headers
  std::string body;
};

/// Builds and signs AssumeRole with `credentials` (their session token, if any, is sent and
/// signed) at `time`. Throws berth::Error on a malformed endpoint URL. Thread-safe (pure).
SignedRequest sign_assume_role(AssumeRoleParameters const& parameters, Endpoint const& endpoint,
                               sigv4::Credentials const& credentials, std::chrono::system_clock::time_point time);

/// The temporary credentials an AssumeRole answer carries. Never log them.
struct AssumedRole {
  sigv4::Credentials credentials;  ///< with the session token
  std::chrono::system_clock::time_point expiration;
  std::string assumed_role_arn;  ///< "arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION"; "" when absent
};

/// Reads a 200 answer of AssumeRole (AssumeRoleResponse/AssumeRoleResult/Credentials with
/// AccessKeyId, SecretAccessKey, SessionToken, Expiration). Throws berth::Error saying what is
/// wrong (malformed XML, a missing or repeated field); the message never quotes a secret.
AssumedRole parse_assume_role_response(std::string_view xml);

/// An STS error answer: <ErrorResponse><Error><Type/><Code/><Message/></Error>.
struct ServiceError {
  std::string code;  ///< e.g. "AccessDenied", "ExpiredToken"; "" when the body is not STS error XML
  std::string message;
};

/// Parses a non-2xx answer; never throws (a body that is not STS error XML gives empty fields).
ServiceError parse_error_response(std::string_view xml);

/// A parsed XML element: its name, its text (character data of the element itself, entities
/// decoded) and its child elements. Attributes are checked for syntax and dropped.
struct XmlElement {
  std::string name;
  std::string text;
  std::vector<XmlElement> children;

  /// The only child called `name`: nullptr when there is none; throws berth::Error when there
  /// are several.
  XmlElement const* child(std::string_view name) const;
};

/// Parses one XML document (an optional <?xml ...?> declaration, comments, one root element).
/// Refuses DOCTYPE, processing instructions other than the declaration, unknown entities,
/// mismatched tags, text outside the root, more than `max_response_bytes` or 32 levels.
/// Throws berth::Error saying what and at which byte offset.
XmlElement parse_xml(std::string_view xml);

}  // namespace berth::registry::sts

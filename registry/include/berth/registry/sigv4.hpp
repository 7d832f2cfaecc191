// AWS Signature Version 4 for header-based signing (the Authorization header), used to call the
// ECR control plane without an AWS SDK. A pure function of the request, the credentials, the
// scope and the time: no I/O, no clock. Not for presigned URLs (query signing) and not for S3's
// single-encoded paths beyond what `normalize_path = false` gives.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace berth::registry::sigv4 {

/// Long-term (access key) or temporary (with a session token) AWS credentials. Never log them.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< empty for long-term keys
};

struct Header {
  std::string name;
  std::string value;
  bool operator==(Header const&) const = default;
};

/// The parts of an HTTP request that are signed. Every header listed is signed, so leave out
/// headers a proxy or the HTTP stack may change (User-Agent, Connection, Expect,
/// Transfer-Encoding) and add them after signing. `host` must be among them.
struct Request {
  std::string method;           ///< "GET", "POST", ... (uppercase)
  std::string target;           ///< path and optional "?query" as sent on the wire, e.g. "/"
  std::vector<Header> headers;  ///< in sending order; repeated names allowed
  std::string_view body;        ///< exact body bytes (hashed unless `unsigned_payload`)
};

struct Options {
  std::string region;   ///< e.g. "eu-west-1"
  std::string service;  ///< signing name, e.g. "ecr" (not "api.ecr")
  /// Remove "." and ".." segments and collapse "//" before encoding (every service but S3).
  bool normalize_path = true;
  /// Sign X-Amz-Security-Token (what the SDKs do); false only sends it.
  bool sign_session_token = true;
  /// Add and sign x-amz-content-sha256 (S3 requires it; other services accept it).
  bool add_content_sha256 = false;
  /// Use the literal "UNSIGNED-PAYLOAD" as payload hash instead of hashing `body`.
  bool unsigned_payload = false;
};

/// The intermediate strings (for tests and diagnostics) and the headers to add to the request.
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;  ///< value of the Authorization header
  /// X-Amz-Date, X-Amz-Security-Token (with a session token), x-amz-content-sha256 (when
  /// asked), Authorization: add all of them, in this order, to the request as sent.
  std::vector<Header> headers_to_add;
};

/// Signs `request` for `options.region`/`options.service` at `time` (X-Amz-Date is its UTC
/// second). Throws berth::Error when the request has no Host header, a header name is empty or
/// invalid, it already carries a header the signer adds, or the region, service or key is empty.
/// Thread-safe (pure).
Signature sign(Request const& request, Credentials const& credentials, Options const& options,
               std::chrono::system_clock::time_point time);

/// "YYYYMMDDTHHMMSSZ" of `time` in UTC (the X-Amz-Date format).
std::string amz_date(std::chrono::system_clock::time_point time);

/// RFC 3986 encoding as SigV4 wants it: keeps A-Z a-z 0-9 - _ . ~ (and '/' when
/// `keep_slash`), everything else as %XX with uppercase hex, never '+'.
std::string uri_encode(std::string_view text, bool keep_slash);

/// Lowercase hex SHA-256 of `bytes` (the payload hash).
std::string sha256_hex(std::string_view bytes);

}  // namespace berth::registry::sigv4

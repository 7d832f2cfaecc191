// AWS Signature Version 4, header variant: canonical request, string to sign, HMAC-SHA256 key
// chain, Authorization header. The rules follow AWS's published test suite (see
// registry/tests/data/sigv4-testsuite), which the tests replay case by case.
#include "berth/registry/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <map>

#include "berth/core/error.hpp"
#include "berth/registry/digest.hpp"

namespace berth::registry::sigv4 {
namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A '%' not followed by two hex digits stays a literal '%' (and is encoded as %25 again), so a
// malformed query still signs the way it is sent instead of failing.
std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int const high = hex_value(text[i + 1]);
      int const low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  return out;
}

// Trim both ends and collapse every inner run of whitespace (including folded line breaks) to
// one space, even inside quotes: that is what AWS computes on its side.
std::string normalize_value(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 remove_dot_segments plus collapsing empty segments, as AWS does for every service
// except S3.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t const end = std::min(path.find('/', pos), path.size());
    std::string_view const segment = path.substr(pos, end - pos);
    bool const last = end == path.size();
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else if (segment == ".") {
      trailing_slash = last;
    } else if (segment.empty()) {
      trailing_slash = last;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out;
  for (auto const segment : segments) {
    out += '/';
    out += segment;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

std::string canonical_uri(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  // The path is encoded once more even though it is already encoded on the wire ("%20" becomes
  // "%2520"): AWS double-encodes for every service but S3.
  return uri_encode(normalize ? normalize_path(path) : std::string(path), true);
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t const end = std::min(query.find('&', pos), query.size());
    std::string_view const param = query.substr(pos, end - pos);
    pos = end + 1;
    if (param.empty()) continue;
    std::size_t const eq = param.find('=');
    std::string_view const name = param.substr(0, eq);
    std::string_view const value = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    params.emplace_back(uri_encode(percent_decode(name), false), uri_encode(percent_decode(value), false));
  }
  // Sorting the encoded pairs gives byte order of the encoded names, then of the values.
  std::sort(params.begin(), params.end());
  std::string out;
  for (auto const& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

using Bytes = std::array<unsigned char, 32>;

Bytes hmac(std::string_view key, std::string_view data) {
  Bytes out{};
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<unsigned char const*>(data.data()),
            data.size(), out.data(), &length) ||
      length != out.size()) {
    throw Error("cannot compute an AWS signature: HMAC-SHA256 failed in OpenSSL");
  }
  return out;
}

std::string_view as_view(Bytes const& bytes) {
  return {reinterpret_cast<char const*>(bytes.data()), bytes.size()};
}

std::string to_hex(Bytes const& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

void require(bool condition, std::string_view what) {
  if (!condition) {
    throw Error("cannot sign an AWS request: " + std::string(what) +
                "\nHINT: this is a bug in the caller of the signer; report it with the request that failed.");
  }
}

}  // namespace

std::string amz_date(std::chrono::system_clock::time_point time) {
  std::time_t const seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 20> buffer{};
  std::strftime(buffer.data(), buffer.size(), "%Y%m%dT%H%M%SZ", &utc);
  return buffer.data();
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto const c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0x0f]);
    }
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  return digest_of(bytes).hex();
}

Signature sign(Request const& request, Credentials const& credentials, Options const& options,
               std::chrono::system_clock::time_point time) {
  require(!options.region.empty(), "the region is empty");
  require(!options.service.empty(), "the service name is empty");
  require(!credentials.access_key_id.empty() && !credentials.secret_access_key.empty(),
          "the access key id or secret access key is empty");
  require(!request.method.empty(), "the HTTP method is empty");

  std::string const date_time = amz_date(time);
  std::string const date = date_time.substr(0, 8);
  std::string const payload_hash = options.unsigned_payload ? "UNSIGNED-PAYLOAD" : sha256_hex(request.body);

  Signature result;
  result.headers_to_add.push_back({"X-Amz-Date", date_time});
  if (!credentials.session_token.empty()) {
    result.headers_to_add.push_back({"X-Amz-Security-Token", credentials.session_token});
  }
  if (options.add_content_sha256) result.headers_to_add.push_back({"x-amz-content-sha256", payload_hash});

  // Lowercased names sorted by byte order; repeated names keep their sending order, joined by ','.
  std::map<std::string, std::string> headers;
  auto add = [&headers](std::string_view name, std::string_view value) {
    auto [it, inserted] = headers.try_emplace(to_lower(normalize_value(name)), normalize_value(value));
    if (!inserted) it->second += "," + normalize_value(value);
  };
  for (auto const& header : request.headers) {
    std::string const name = to_lower(normalize_value(header.name));
    require(!name.empty(), "a header name is empty");
    bool const added_by_signer = name == "authorization" || name == "x-amz-date" ||
                                 (name == "x-amz-security-token" && !credentials.session_token.empty()) ||
                                 (name == "x-amz-content-sha256" && options.add_content_sha256);
    require(!added_by_signer, "the request already carries " + header.name + "; the signer adds it");
    require(name.find_first_of(" \t\r\n:") == std::string::npos, "the header name '" + header.name + "' is invalid");
    add(name, header.value);
  }
  require(headers.contains("host"), "the request has no Host header");
  for (auto const& header : result.headers_to_add) {
    if (to_lower(header.name) == "x-amz-security-token" && !options.sign_session_token) continue;
    add(header.name, header.value);
  }

  std::string canonical_headers;
  std::string signed_headers;
  for (auto const& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += name;
  }

  std::string_view const target = request.target;
  std::size_t const question = target.find('?');
  std::string_view const path = target.substr(0, question);
  std::string_view const query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);

  result.canonical_request = request.method + "\n" + canonical_uri(path, options.normalize_path) + "\n" +
                             canonical_query(query) + "\n" + canonical_headers + "\n" + signed_headers + "\n" +
                             payload_hash;

  std::string const scope = date + "/" + options.region + "/" + options.service + "/aws4_request";
  result.string_to_sign =
      std::string(algorithm) + "\n" + date_time + "\n" + scope + "\n" + sha256_hex(result.canonical_request);

  Bytes const date_key = hmac("AWS4" + credentials.secret_access_key, date);
  Bytes const region_key = hmac(as_view(date_key), options.region);
  Bytes const service_key = hmac(as_view(region_key), options.service);
  Bytes const signing_key = hmac(as_view(service_key), "aws4_request");
  std::string const signature = to_hex(hmac(as_view(signing_key), result.string_to_sign));

  result.authorization = std::string(algorithm) + " Credential=" + credentials.access_key_id + "/" + scope +
                         ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
  result.headers_to_add.push_back({"Authorization", result.authorization});
  return result;
}

}  // namespace berth::registry::sigv4

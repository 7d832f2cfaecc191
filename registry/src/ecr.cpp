// ECR control-plane requests: the fixed envelope of AWS JSON 1.1 (POST /, Content-Type,
// X-Amz-Target) signed with SigV4 under the signing name "ecr".
#include "berth/registry/ecr.hpp"

#include <algorithm>

#include <cmath>
#include <nlohmann/json.hpp>

#include "berth/core/error.hpp"
#include "berth/proxy/jwt.hpp"

namespace berth::registry::ecr {
namespace {

[[noreturn]] void bad_token_response(std::string const& what) {
  throw Error("cannot read the ECR GetAuthorizationToken response: " + what +
              "\nHINT: check that the endpoint is the ECR API (api.ecr.<region>.amazonaws.com).");
}

// ECR sends standard base64 with padding; the proxy module has the url-safe unpadded variant.
std::optional<std::string> base64_decode(std::string text) {
  while (!text.empty() && text.back() == '=') text.pop_back();
  for (char& c : text) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
    else if (c == '-' || c == '_')
      return std::nullopt;
  }
  return proxy::base64url_decode(text);
}

std::string clean_error_type(std::string type) {
  if (auto const hash = type.rfind('#'); hash != std::string::npos) type.erase(0, hash + 1);
  if (auto const colon = type.find(':'); colon != std::string::npos) type.erase(colon);
  return type;
}

bool is_region_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

std::string api_host(std::string_view region) {
  if (region.empty() || region.size() > 32 || !std::all_of(region.begin(), region.end(), is_region_char)) {
    throw Error("invalid AWS region '" + std::string(region) +
                "': expected lowercase letters, digits and '-'\nHINT: use a region name such as eu-west-1.");
  }
  return "api.ecr." + std::string(region) + ".amazonaws.com";
}

ApiRequest sign_api_request(std::string_view operation, std::string body, std::string_view region,
                            sigv4::Credentials const& credentials, std::chrono::system_clock::time_point time,
                            std::string_view host) {
  if (operation.empty() || !std::all_of(operation.begin(), operation.end(),
                                        [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); })) {
    throw Error("invalid ECR operation name '" + std::string(operation) + "'\nHINT: this is a bug in berth.");
  }
  ApiRequest request;
  request.host = host.empty() ? api_host(region) : std::string(host);
  request.body = std::move(body);
  request.headers = {{"Host", request.host},
                     {"Content-Type", std::string(json_content_type)},
                     {"X-Amz-Target", std::string(target_prefix) + std::string(operation)}};
  sigv4::Request const to_sign{"POST", request.target, request.headers, request.body};
  auto signature =
      sigv4::sign(to_sign, credentials, {.region = std::string(region), .service = std::string(signing_name)}, time);
  for (auto& header : signature.headers_to_add) request.headers.push_back(std::move(header));
  return request;
}

AuthorizationToken parse_authorization_token(std::string_view body) {
  auto const json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) bad_token_response("the body is not a JSON object");
  auto const data = json.find("authorizationData");
  if (data == json.end() || !data->is_array() || data->empty() || !(*data)[0].is_object()) {
    bad_token_response("authorizationData is missing or empty");
  }
  auto const& entry = (*data)[0];
  auto string_field = [&entry](char const* name) {
    auto const it = entry.find(name);
    if (it == entry.end() || !it->is_string() || it->get<std::string>().empty()) {
      bad_token_response(std::string(name) + " is missing or not a string");
    }
    return it->get<std::string>();
  };
  AuthorizationToken token;
  token.basic_credentials = string_field("authorizationToken");
  token.proxy_endpoint = string_field("proxyEndpoint");
  auto const decoded = base64_decode(token.basic_credentials);
  auto const colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) bad_token_response("authorizationToken is not base64 of user:password");
  token.username = decoded->substr(0, colon);
  token.password = decoded->substr(colon + 1);
  auto const expires = entry.find("expiresAt");
  if (expires == entry.end() || !expires->is_number() || !std::isfinite(expires->get<double>())) {
    bad_token_response("expiresAt is missing or not a number");
  }
  auto const milliseconds = std::llround(expires->get<double>() * 1000.0);
  token.expires_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(milliseconds));
  return token;
}

ApiError parse_api_error(std::string_view body, std::string_view error_type_header) {
  ApiError error;
  auto const json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_discarded() && json.is_object()) {
    if (auto const type = json.find("__type"); type != json.end() && type->is_string()) {
      error.type = clean_error_type(type->get<std::string>());
    }
    for (char const* key : {"message", "Message"}) {
      if (auto const message = json.find(key); message != json.end() && message->is_string()) {
        error.message = message->get<std::string>();
        break;
      }
    }
  }
  if (error.type.empty()) error.type = clean_error_type(std::string(error_type_header));
  return error;
}

}  // namespace berth::registry::ecr

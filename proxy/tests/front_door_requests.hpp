// Requests as the front door's unit tests hand them to a router or an Authenticator.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include "berth/proxy/http.hpp"
#include "berth/proxy/jwt.hpp"

namespace berth::testing {

/// "Basic <base64 of user:password>" (standard alphabet, padded).
inline std::string basic(std::string const& user, std::string const& password) {
  auto encoded = proxy::base64url_encode(user + ":" + password);
  std::replace(encoded.begin(), encoded.end(), '-', '+');
  std::replace(encoded.begin(), encoded.end(), '_', '/');
  while (encoded.size() % 4 != 0) encoded += '=';
  return "Basic " + encoded;
}

/// A request for `target` (path and query) to registry.test:5000.
inline proxy::Request make_request(proxy::Method method, std::string const& target,
                                   std::optional<std::string> authorization = std::nullopt) {
  proxy::Request request;
  request.method = method;
  request.method_name = std::string(proxy::to_string(method));
  request.target = target;
  auto const question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) request.query = target.substr(question + 1);
  request.headers.set("Host", "registry.test:5000");
  if (authorization) request.headers.set("Authorization", *authorization);
  return request;
}

}  // namespace berth::testing

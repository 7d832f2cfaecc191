// How a path under /v2/ names a repository and an endpoint, shared by the API handlers and the
// access rule (access.cpp) so that authorization checks exactly the repository the handler uses.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace berth::registry {

enum class Endpoint { tags, manifest, blob, upload_start, upload, referrers };

struct Route {
  Endpoint endpoint;
  std::string name;
  std::string tail;  // reference, digest or upload id
};

// Splits "<name>/<kind>/<tail>" from the right: repository names may themselves contain
// "blobs" or "manifests" as components, but a tail never contains '/'.
inline std::optional<Route> parse_route(std::string_view path) {
  auto split = [&](std::string_view marker) -> std::optional<std::pair<std::string, std::string>> {
    auto at = path.rfind(marker);
    if (at == std::string_view::npos || at == 0) return std::nullopt;
    auto tail = path.substr(at + marker.size());
    if (tail.find('/') != std::string_view::npos) return std::nullopt;
    return std::pair{std::string(path.substr(0, at)), std::string(tail)};
  };
  if (path.ends_with("/tags/list") && path.size() > 10)
    return Route{Endpoint::tags, std::string(path.substr(0, path.size() - 10)), {}};
  if (auto parts = split("/blobs/uploads/")) {
    if (parts->second.empty()) return Route{Endpoint::upload_start, parts->first, {}};
    return Route{Endpoint::upload, parts->first, parts->second};
  }
  if (path.ends_with("/blobs/uploads") && path.size() > 14)
    return Route{Endpoint::upload_start, std::string(path.substr(0, path.size() - 14)), {}};
  if (auto parts = split("/manifests/"); parts && !parts->second.empty())
    return Route{Endpoint::manifest, parts->first, parts->second};
  if (auto parts = split("/blobs/"); parts && !parts->second.empty())
    return Route{Endpoint::blob, parts->first, parts->second};
  if (auto parts = split("/referrers/"); parts && !parts->second.empty())
    return Route{Endpoint::referrers, parts->first, parts->second};
  return std::nullopt;
}

}  // namespace berth::registry

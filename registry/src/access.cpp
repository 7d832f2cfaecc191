// The registry's access rule: parse the path exactly as the handlers do (routes.hpp).
#include "berth/registry/access.hpp"

#include "routes.hpp"

namespace berth::registry {

std::optional<proxy::RequiredAccess> required_access(proxy::Request const& request) {
  using proxy::Action;
  using proxy::Method;
  std::string_view path = request.path;
  if (!path.starts_with("/v2/")) return std::nullopt;
  path.remove_prefix(4);
  if (path == "_catalog") return proxy::RequiredAccess{{}, Action::catalog};
  auto const route = parse_route(path);
  if (!route) return std::nullopt;
  switch (request.method) {
    case Method::get:
    case Method::head: return proxy::RequiredAccess{route->name, Action::pull};
    case Method::delete_: return proxy::RequiredAccess{route->name, Action::delete_};
    default: return proxy::RequiredAccess{route->name, Action::push};  // writes, and methods the API refuses
  }
}

}  // namespace berth::registry

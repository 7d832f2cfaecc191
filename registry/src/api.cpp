#include "berth/registry/api.hpp"

namespace berth::registry {

void add_routes(proxy::Router& router, Config const&) {
  // Clients probe /v2/ first to detect a v2 registry and to discover how to authenticate.
  router.add(proxy::Method::get, "/v2/", [](proxy::Request const&) -> proxy::Reply {
    auto response = proxy::json_response(200, "{}\n");
    response.headers.set("Docker-Distribution-API-Version", "registry/2.0");
    return response;
  });
}

}  // namespace berth::registry

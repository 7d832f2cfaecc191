// The registry's HTTP API (OCI Distribution Spec, the Docker Registry HTTP API v2), registered
// on the proxy's router under /v2/.
#pragma once

#include "berth/proxy/router.hpp"
#include "berth/registry/config.hpp"

namespace berth::registry {

/// Adds the registry's routes to `router`. Today: the API base `GET /v2/`, which answers 200
/// with `Docker-Distribution-API-Version: registry/2.0` so clients recognise a v2 registry.
void add_routes(proxy::Router& router, Config const& config);

}  // namespace berth::registry

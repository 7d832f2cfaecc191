// The registry's HTTP API: the OCI Distribution Spec v1.1 (the Docker Registry HTTP API v2)
// under /v2/, on the proxy's router. Handlers check names, namespaces and digests, turn every
// refusal into the spec's error envelope, and leave bytes to Storage.
#pragma once

#include "berth/proxy/router.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {

/// Adds GET /v2/ and every /v2/<name>/... and /v2/_catalog route to `router`. `storage` must
/// outlive the server that uses the router.
void add_routes(proxy::Router& router, Storage& storage);

}  // namespace berth::registry

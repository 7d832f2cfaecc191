// What a registry request needs from the front door's authorization: which repository it
// touches and whether it reads (pull), writes (push) or deletes. The composer hands this rule to
// proxy::add_authentication for the /v2/ prefix.
#pragma once

#include <optional>

#include "berth/proxy/auth.hpp"

namespace berth::registry {

/// GET/HEAD → pull, PUT/POST/PATCH → push, DELETE → delete on the repository the path names;
/// /v2/_catalog → Action::catalog. nullopt (signing in is enough) for /v2/ itself and for paths
/// that name no repository, which the API answers with 404 anyway. Thread-safe.
std::optional<proxy::RequiredAccess> required_access(proxy::Request const& request);

}  // namespace berth::registry

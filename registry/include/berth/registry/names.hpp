// The OCI Distribution Spec's grammar for repository names and tags. Only names that pass
// these checks ever reach the filesystem, which is what keeps "..", "%2e", "/" tricks out.
#pragma once

#include <string_view>

namespace berth::registry {

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255
/// characters in all.
bool is_valid_repository_name(std::string_view name);

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
bool is_valid_tag(std::string_view tag);

}  // namespace berth::registry

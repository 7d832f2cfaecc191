// Where things are on the backup volume and how a manifest is read. Private to the backup module.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "berth/backup/config.hpp"

namespace berth::backup::detail {

/// pool/<alg>/<hex[0:2]>/<hex> for "alg:hex".
std::filesystem::path pool_path(std::filesystem::path const& volume, std::string const& digest);

/// The manifest of complete snapshot `id`. Throws Error when there is none or it is unreadable.
nlohmann::json read_manifest(Config const& config, std::string const& id);

}  // namespace berth::backup::detail

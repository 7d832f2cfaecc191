// `berth registry ...`: inspection of the registry storage on the primary volume.
#pragma once

#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

/// `berth registry ls [NAMESPACE]`: repositories, their tags and sizes. Returns the exit code.
int registry_ls(Config const& config, std::string const& prefix, std::ostream& out);

/// `berth registry fsck`: rehash every blob, check every reference; 1 if anything is damaged.
int registry_fsck(Config const& config, std::ostream& out);

}  // namespace berth::appliance

// Settings of the registry. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <filesystem>

namespace berth::registry {

struct Config {
  std::filesystem::path root;  ///< registry storage, <primary volume>/registry
};

}  // namespace berth::registry

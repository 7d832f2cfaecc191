// Settings of snapshots. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <filesystem>

namespace berth::backup {

struct Config {
  std::filesystem::path volume;  ///< the backup volume (a second disk in production)
};

}  // namespace berth::backup

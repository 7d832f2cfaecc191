// Settings of snapshots. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <filesystem>
#include <vector>

namespace berth::backup {

/// Which snapshots `prune` keeps; a snapshot kept by any rule stays.
struct Retention {
  unsigned keep_last = 1;     ///< the newest N snapshots
  unsigned keep_daily = 7;    ///< the newest snapshot of each of the last N days that have one
  unsigned keep_weekly = 4;   ///< ... of each of the last N ISO weeks
  unsigned keep_monthly = 6;  ///< ... of each of the last N months
};

struct Config {
  std::filesystem::path volume;   ///< the backup volume (a second disk in production)
  std::filesystem::path primary;  ///< the primary volume a snapshot copies
  /// Files or folders outside the primary volume that belong in a snapshot (the config file, TLS
  /// material, htpasswd); archived under "extra/<absolute path>". Missing ones are skipped.
  std::vector<std::filesystem::path> extra;
  Retention retention;
};

}  // namespace berth::backup

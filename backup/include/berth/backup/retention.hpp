// Which snapshots retention keeps, and `prune`, which removes the others and the pool blobs no
// remaining snapshot refers to. The selection is a pure function of the snapshot ids (their UTC
// start times) and the rules, in the way of restic's `forget --keep-*`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "berth/backup/config.hpp"

namespace berth::backup {

enum class KeepRule { last, daily, weekly, monthly };

/// "last", "daily", "weekly", "monthly".
char const* to_string(KeepRule rule);

struct RetentionDecision {
  std::string id;
  std::vector<KeepRule> kept_by;  ///< the rules that keep it; empty: the snapshot goes
};

/// Applies `retention` to snapshot ids ("20261127T031500Z", any order): keep_last keeps the
/// newest N; keep_daily the newest snapshot of each of the newest N UTC days that have one;
/// keep_weekly the same per ISO week; keep_monthly per month. A snapshot kept by any rule stays.
/// Returns one decision per id, newest first. Throws Error on an id that is not a UTC timestamp.
/// Pure; thread-safe.
std::vector<RetentionDecision> select_retained(std::vector<std::string> const& ids, Retention const& retention);

struct PruneReport {
  std::vector<RetentionDecision> decisions;  ///< newest first, as select_retained
  std::size_t snapshots_removed = 0;
  std::size_t blobs_removed = 0;  ///< pool blobs no kept snapshot refers to
  std::uint64_t bytes_freed = 0;  ///< snapshot folders plus those blobs
  double seconds = 0;
};

/// Applies config.retention under the backup volume's lock: removes the snapshots no rule keeps
/// (each is first renamed to a .partial- name, so a killed prune leaves nothing visible that is
/// half removed), then the pool blobs no remaining snapshot refers to. With `dry_run` nothing is
/// changed and the report says what would go. Throws Busy when another job holds the lock, Error
/// when a manifest cannot be read (nothing is removed then) or on an I/O error.
PruneReport prune(Config const& config, bool dry_run);

}  // namespace berth::backup

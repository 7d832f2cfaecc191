// Restore drills: proof that a snapshot restores. A drill restores the snapshot into a scratch
// folder, starts a throwaway PostgreSQL on it (its own Unix socket in the scratch folder, no TCP,
// no WAL archiving), reads every table of every database fully and compares the row counts the
// snapshot recorded (see src/row_counts.hpp for when a difference is damage and when only a
// warning), checks every registry manifest's blobs with registry fsck, then stops the server
// and removes the scratch copy, whatever happened. Each result is appended to drills.jsonl on
// the backup volume.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "berth/backup/config.hpp"
#include "berth/backup/snapshot.hpp"

namespace berth::backup {

struct DrillOptions {
  /// Where the scratch copy goes; empty: the backup volume itself (same filesystem as the pool,
  /// and nothing on the primary volume is touched).
  std::filesystem::path scratch;
  std::filesystem::path postgres_bin_dir;  ///< empty: the newest installed server
  std::string postgres_os_user;            ///< empty: as restore (the running user, "postgres" for root)
  ProgressFunction progress;               ///< told each phase, each table and each blob checked
};

struct DrillResult {
  std::string snapshot_id;
  std::string started;  ///< UTC, 2026-11-27T03:15:00Z
  bool ok = false;
  std::vector<std::string> failures;  ///< damage: what could not be restored, opened or read
  std::vector<std::string> warnings;  ///< count differences explained by writes during the snapshot; stale scratch
                                      ///< folders it could not remove
  double seconds = 0;
  std::size_t databases = 0;
  std::size_t tables = 0;
  std::uint64_t rows = 0;
  bool counts_exact = false;  ///< the counts were provably comparable (row_counts.hpp)
  std::size_t manifests = 0;
  std::size_t blobs = 0;
};

/// Runs a drill on snapshot `id` holding the backup volume's lock, records it in drills.jsonl
/// (appended, fsync'ed) and returns it. Damage is reported in the result (ok false), not thrown.
/// Throws Busy when another job holds the lock, Error when the snapshot does not exist or the
/// result cannot be recorded. Not thread-safe: one drill per volume at a time (the lock).
DrillResult drill_snapshot(Config const& config, std::string const& id, DrillOptions const& options);

/// The newest recorded drill, if any. Throws Error when drills.jsonl exists but cannot be read.
std::optional<DrillResult> last_drill(Config const& config);

}  // namespace berth::backup

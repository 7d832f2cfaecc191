// Snapshots of the primary volume on the backup volume. Layout under Config::volume:
//   .lock                                  flock held by every job that writes (run, prune)
//   pool/sha256/<ab>/<hex>                 registry blobs, copied once ever, shared by snapshots
//   snapshots/<id>/files.tar.zst           everything else of the primary volume (tar + zstd),
//                                          without run/, postgres/ and registry blobs/uploads
//   snapshots/<id>/postgres.tar.zst        the PostgreSQL base backup (pg_basebackup, WAL included;
//                                          postgres.tar.gz from PostgreSQL before 15)
//   snapshots/<id>/manifest.json           written last: size and sha256 of every file and blob
//   snapshots/.partial-<id>/               a run in progress; removed by the next run
// A snapshot is visible only once its manifest is in place and its folder renamed to <id>.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "berth/backup/config.hpp"
#include "berth/core/error.hpp"

namespace berth::backup {

/// Another job holds the backup volume's lock.
class Busy : public Error {
public:
  using Error::Error;
};

/// How to reach the running PostgreSQL server for a base backup.
struct DatabaseSource {
  std::filesystem::path bin_dir;        ///< holds pg_basebackup
  std::filesystem::path socket_dir;     ///< Unix socket directory
  std::uint16_t port = 5432;            ///< names the socket file
  std::filesystem::path password_file;  ///< the superuser password (never put on argv)
  std::string user = "berth";           ///< the superuser
};

/// What one snapshot holds, as its manifest says.
struct SnapshotInfo {
  std::string id;  ///< UTC start time, 20261127T153000Z
  std::string started;
  std::string finished;
  double duration_seconds = 0;
  /// Seconds of each part: "files" (the archive), "blobs" (the pool), "postgres" (the base
  /// backup), "row_counts"; the manifest's "durations" without "total".
  std::map<std::string, double> part_seconds;
  std::uint64_t bytes_added = 0;  ///< new bytes on the backup volume (files + new pool blobs)
  std::uint64_t bytes_total = 0;  ///< bytes the snapshot refers to (files + all its blobs)
  std::size_t blobs = 0;
  std::size_t blobs_copied = 0;
  bool has_database = false;
};

/// How far a long job is, for a progress line on a terminal.
struct Progress {
  std::string phase;        ///< "files", "blobs", "postgres", "row counts", "restore", "registry fsck"...
  std::size_t done = 0;     ///< items finished in this phase (blobs copied or checked)
  std::size_t total = 0;    ///< items in this phase; 0 when not known
  std::uint64_t bytes = 0;  ///< bytes handled in this phase so far
};
/// Called on the job's own thread; may be empty.
using ProgressFunction = std::function<void(Progress const&)>;

/// Takes one snapshot: holds Config::volume/.lock, removes what a killed run left, archives the
/// files, copies the registry blobs the pool lacks (on two threads; each hashed as it is written,
/// checked against its digest and fsync'ed before it gets its name), meanwhile takes a base
/// backup through `database` when given (the server must be running), then writes the manifest
/// and publishes the snapshot. Run as root on a volume another user owns, gives what it creates
/// there to that user. Throws Busy when another job holds the lock, Error on
/// any failure (nothing becomes visible). Service may go on meanwhile.
/// `progress` is told each phase and each blob.
SnapshotInfo take_snapshot(Config const& config, std::optional<DatabaseSource> const& database,
                           ProgressFunction const& progress = {});

/// The complete snapshots, oldest first. Throws Error when a manifest cannot be read.
std::vector<SnapshotInfo> list_snapshots(Config const& config);

/// One thing in a snapshot that does not match its manifest.
struct Mismatch {
  std::string what;     ///< "pool/sha256/ab/ab12..." or "files.tar.zst:secrets/htpasswd"
  std::string problem;  ///< "sha256 is ... (expected ...)", "missing", ...
};

/// Re-reads and rehashes everything snapshot `id` refers to. Returns the mismatches (empty: all
/// good). Throws Error when the snapshot does not exist.
std::vector<Mismatch> verify_snapshot(Config const& config, std::string const& id);

/// Rebuilds a primary volume in `target` from snapshot `id`: files from the archive, registry
/// blobs from the pool (checked against their digest), the base backup into target/postgres.
/// `postgres_os_user` (empty: "postgres") owns target/postgres when berth runs as root. Throws
/// Error when `target` is not empty and !force, or on any mismatch or I/O error.
void restore_snapshot(Config const& config, std::string const& id, std::filesystem::path const& target, bool force,
                      std::string const& postgres_os_user = "");

}  // namespace berth::backup

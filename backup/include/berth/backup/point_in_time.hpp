// Point-in-time recovery of the database cluster: a snapshot's base backup plus the WAL archive
// replayed up to a chosen moment. The replay runs at restore time, in a throwaway server on the
// restored volume (its own socket, no TCP, no archiving), so a moment the archive cannot reach is
// reported by `berth backup restore` itself, and the volume it leaves behind is an ordinary,
// promoted cluster that `berth serve` starts on as usual.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "berth/backup/config.hpp"

namespace berth::backup {

using TimePoint = std::chrono::system_clock::time_point;

/// Parses "YYYY-MM-DD HH:MM:SS" (a 'T' may stand for the space; optional fraction of a second),
/// read in the local time zone (TZ), or in the zone of a "Z", "UTC", "+HH", "+HHMM" or "+HH:MM"
/// suffix. Throws Error naming the accepted forms.
TimePoint parse_point_in_time(std::string const& text);

/// "YYYY-MM-DD HH:MM:SS.ffffff+00": `when` in UTC, as PostgreSQL reads it whatever its TimeZone.
std::string postgres_timestamp(TimePoint when);

/// The newest complete snapshot with a database whose base backup had ended by `when`. Throws
/// Error when there is none (naming the oldest moment that can be reached).
std::string snapshot_before(Config const& config, TimePoint when);

/// Where the WAL comes from and how the throwaway server runs.
struct Replay {
  std::filesystem::path wal_archive;  ///< <backup volume>/wal, read by restore_command
  std::filesystem::path bin_dir;      ///< server binaries; empty: the newest installed
  std::string os_user;                ///< the server's OS user when berth runs as root; empty: "postgres"
};

/// What the replay reached.
struct Recovered {
  std::string snapshot;          ///< the snapshot it started from
  std::string last_transaction;  ///< commit time of the last transaction replayed (server text), or empty
  double replay_seconds = 0;
};

/// Restores snapshot `id` (restore_snapshot) into `target`, then replays the WAL archive over its
/// database cluster up to `when` (transactions committed at or before it are kept, later ones are
/// not) and promotes it. Throws Error when the snapshot's backup ended after `when`, when the
/// archive ends before `when` (the server's own reason is logged), or what restore_snapshot throws.
Recovered restore_to_time(Config const& config, std::string const& id, TimePoint when,
                          std::filesystem::path const& target, bool force, Replay const& replay);

}  // namespace berth::backup

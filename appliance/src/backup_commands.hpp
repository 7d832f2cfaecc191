// `berth backup ...`: snapshots of the primary volume onto the backup volume.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

// run, verify, prune and drill end with one line of JSON on `out` (command, ok, ...), also when
// they fail (the error is rethrown after it).

/// `berth backup run`: one snapshot; with PostgreSQL enabled a base backup of the cluster, which
/// is started for the snapshot when the service is not running. Returns the exit code.
int backup_run(Config const& config, std::ostream& out);

/// `berth backup list`: id, time, bytes added, total, duration, status.
int backup_list(Config const& config, bool json, std::ostream& out);

/// `berth backup verify [ID|--all]` (no ID: the newest): 1 and every mismatch named when any.
int backup_verify(Config const& config, std::string const& id, bool all, std::ostream& out);

/// `berth backup prune [--dry-run]`: retention from the config; prints what is kept (and by which
/// rule), what is removed and the bytes freed.
int backup_prune(Config const& config, bool dry_run, std::ostream& out);

/// `berth backup drill [ID] [--scratch DIR]` (no ID: the newest): restores the snapshot into a
/// scratch folder and proves it (see berth/backup/drill.hpp); 1 when anything failed.
int backup_drill(Config const& config, std::string const& id, std::filesystem::path const& scratch, std::ostream& out);

/// `berth backup restore [ID] --to DIR [--force] [--pg-time TIME]`: with `pg_time` (non-empty) the
/// database cluster is replayed from the WAL archive up to that moment; `id` may then be empty
/// (the newest snapshot that ended before it).
/// Makes the configured primary volume the owner of the backup volume (after losing the original
/// a restored copy was made from). Returns the exit code.
int backup_adopt(Config const& config, std::ostream& out);

int backup_restore(Config const& config, std::string id, std::filesystem::path const& target, bool force,
                   std::string const& pg_time, std::ostream& out);

}  // namespace berth::appliance

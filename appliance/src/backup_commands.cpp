#include "backup_commands.hpp"

#include <optional>

#include "applications.hpp"
#include "berth/backup/point_in_time.hpp"
#include "berth/backup/snapshot.hpp"
#include "berth/postgres/cluster.hpp"
#include "human.hpp"

namespace berth::appliance {

namespace {

// The config file, htpasswd, groups and TLS material may live outside the primary volume
// (/etc/berth in production); they belong in every snapshot.
backup::Config snapshot_config(Config const& config) {
  auto result = config.snapshots;
  result.primary = config.primary;
  if (!config.source.empty()) result.extra.push_back(config.source);
  result.extra.push_back(htpasswd_file(config));
  result.extra.push_back(groups_file(config));
  result.extra.push_back(config.tls_dir);
  std::vector<std::filesystem::path> present;
  for (auto const& path : result.extra)
    if (std::filesystem::exists(path)) present.push_back(path);
  result.extra = present;
  return result;
}

void print_info(backup::SnapshotInfo const& info, std::ostream& out) {
  out << info.id << "  " << info.finished << "  added " << human_size(info.bytes_added) << "  total "
      << human_size(info.bytes_total) << "  " << static_cast<long>(info.duration_seconds + 0.5) << "s  complete\n";
}

}  // namespace

int backup_run(Config const& config, std::ostream& out) {
  auto const snapshots = snapshot_config(config);
  std::optional<backup::SnapshotInfo> info;
  if (config.postgres_enabled) {
    // A base backup needs a running server: the service's, or one started for the snapshot (a
    // cold copy could race with `berth serve` starting on the same volume).
    backup::DatabaseSource source;
    source.bin_dir = config.postgres.bin_dir;
    source.socket_dir = config.postgres.socket_dir;
    source.port = config.postgres.port;
    source.password_file = config.postgres.secrets_dir / "postgres-superuser";
    with_cluster(config, [&](postgres::Cluster&) { info = backup::take_snapshot(snapshots, source); });
  } else {
    info = backup::take_snapshot(snapshots, std::nullopt);
  }
  out << "snapshot " << info->id << ": " << info->blobs << " blobs (" << info->blobs_copied << " new), added "
      << human_size(info->bytes_added) << " (" << info->bytes_added << " bytes), total "
      << human_size(info->bytes_total) << ", " << static_cast<long>(info->duration_seconds + 0.5) << "s\n";
  return 0;
}

int backup_list(Config const& config, std::ostream& out) {
  auto const snapshots = backup::list_snapshots(snapshot_config(config));
  if (snapshots.empty()) {
    out << "no snapshots on " << config.snapshots.volume.string() << "\n";
    return 0;
  }
  for (auto const& info : snapshots) print_info(info, out);
  return 0;
}

int backup_verify(Config const& config, std::string const& id, bool all, std::ostream& out) {
  auto const snapshots_config = snapshot_config(config);
  std::vector<std::string> ids;
  if (!id.empty()) {
    ids.push_back(id);
  } else {
    auto const snapshots = backup::list_snapshots(snapshots_config);
    if (snapshots.empty())
      throw Error("no snapshots on " + config.snapshots.volume.string() + "\nHINT: take one with `berth backup run`");
    if (all)
      for (auto const& info : snapshots) ids.push_back(info.id);
    else
      ids.push_back(snapshots.back().id);
  }
  int code = 0;
  for (auto const& snapshot : ids) {
    auto const mismatches = backup::verify_snapshot(snapshots_config, snapshot);
    for (auto const& mismatch : mismatches)
      out << snapshot << ": " << mismatch.what << ": " << mismatch.problem << "\n";
    if (mismatches.empty())
      out << snapshot << ": ok\n";
    else
      code = 1;
  }
  return code;
}

int backup_restore(Config const& config, std::string id, std::filesystem::path const& target, bool force,
                   std::string const& pg_time, std::ostream& out) {
  auto const snapshots = snapshot_config(config);
  if (pg_time.empty()) {
    backup::restore_snapshot(snapshots, id, target, force, config.postgres.os_user);
    out << "snapshot " << id << " restored into " << target.string();
  } else {
    if (!config.postgres_enabled)
      throw Error("--pg-time recovers the database cluster, but PostgreSQL is disabled in " + config.source.string() +
                  "\nHINT: restore without --pg-time, or enable postgres in the config");
    auto const when = backup::parse_point_in_time(pg_time);
    if (id.empty()) id = backup::snapshot_before(snapshots, when);
    backup::Replay replay;
    replay.wal_archive = config.backup / "wal";
    replay.bin_dir = config.postgres.bin_dir;
    replay.os_user = config.postgres.os_user;
    auto const recovered = backup::restore_to_time(snapshots, id, when, target, force, replay);
    out << "snapshot " << id << " restored into " << target.string() << ", database replayed to "
        << backup::postgres_timestamp(when) << " in " << static_cast<long>(recovered.replay_seconds + 0.5) << "s"
        << (recovered.last_transaction.empty() ? std::string(" (no transaction after the snapshot)")
                                               : " (last transaction kept: " + recovered.last_transaction + ")");
  }
  out << "\nstart berth on it with volumes.primary: " << target.string() << "\n";
  return 0;
}

}  // namespace berth::appliance

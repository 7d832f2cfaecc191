#include "backup_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "applications.hpp"
#include "berth/backup/drill.hpp"
#include "berth/backup/point_in_time.hpp"
#include "berth/backup/retention.hpp"
#include "berth/backup/snapshot.hpp"
#include "berth/core/human.hpp"
#include "berth/postgres/cluster.hpp"
#include "volume_identity.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {

namespace {

// The config file, htpasswd, groups, robots and TLS material may live outside the primary volume
// (/etc/berth in production); they belong in every snapshot (restored under DIR/extra/).
backup::Config snapshot_config(Config const& config) {
  auto result = config.snapshots;
  result.primary = config.primary;
  if (!config.source.empty()) result.extra.push_back(config.source);
  result.extra.push_back(htpasswd_file(config));
  result.extra.push_back(groups_file(config));
  result.extra.push_back(robots_file(config));
  result.extra.push_back(config.tls_dir);
  std::vector<std::filesystem::path> present;
  for (auto const& path : result.extra)
    if (std::filesystem::exists(path)) present.push_back(path);
  result.extra = present;
  return result;
}

// One row of `backup list`; the id comes first (scripts match it at the start of a line).
void print_row(std::ostream& out, std::string const& id, std::string const& time, std::string const& added,
               std::string const& total, std::string const& duration, std::string const& status) {
  char line[256];
  std::snprintf(line, sizeof line, "%-16s  %-20s  %10s  %10s  %8s  %s\n", id.c_str(), time.c_str(), added.c_str(),
                total.c_str(), duration.c_str(), status.c_str());
  out << line;
}

// A progress line on stderr, rewritten in place; nothing when stderr is not a terminal (the journal).
backup::ProgressFunction terminal_progress() {
  if (::isatty(STDERR_FILENO) == 0) return {};
  return [last = std::chrono::steady_clock::time_point()](backup::Progress const& state) mutable {
    auto const now = std::chrono::steady_clock::now();
    bool const phase_end = state.total == 0 || state.done == 0 || state.done == state.total;
    if (!phase_end && now - last < std::chrono::milliseconds(100)) return;  // a terminal needs no more
    last = now;
    std::string line = state.phase;
    if (state.total > 0)
      line += " " + std::to_string(state.done) + "/" + std::to_string(state.total);
    else if (state.done > 0)
      line += " " + std::to_string(state.done);
    if (state.bytes > 0) line += ", " + human_size(state.bytes);
    std::cerr << "\r\033[K" << line << std::flush;
  };
}

// Every job ends with one JSON line on stdout, for the journal, whether it succeeded or not; a
// failure is rethrown so that main prints it and exits 1.
int with_summary(char const* command, std::ostream& out, std::function<int(nlohmann::ordered_json&)> const& job) {
  auto const began = std::chrono::steady_clock::now();
  nlohmann::ordered_json summary = {{"command", command}};
  int code = 1;
  bool const terminal = ::isatty(STDERR_FILENO) != 0;
  try {
    code = job(summary);
    if (terminal) std::cerr << "\r\033[K" << std::flush;  // the progress line goes
  } catch (std::exception const& error) {
    if (terminal) std::cerr << "\r\033[K" << std::flush;
    std::string message = error.what();
    summary["ok"] = false;
    summary["error"] = message.substr(0, message.find('\n'));
    summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    out << summary.dump() << std::endl;
    throw;
  }
  summary["ok"] = code == 0;
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  out << summary.dump() << std::endl;
  return code;
}

}  // namespace

int backup_run(Config const& config, std::ostream& out) {
  return with_summary("backup run", out, [&](nlohmann::ordered_json& summary) {
    // Snapshots of a restored copy must not mix with the original's on its backup volume.
    if (std::filesystem::is_directory(config.primary) && !owns_backup_volume(config.primary, config.backup))
      throw Error("refusing to take a snapshot: " + foreign_backup_volume_problem(config.primary, config.backup));
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
      with_cluster(config,
                   [&](postgres::Cluster&) { info = backup::take_snapshot(snapshots, source, terminal_progress()); });
    } else {
      info = backup::take_snapshot(snapshots, std::nullopt, terminal_progress());
    }
    out << "snapshot " << info->id << ": " << info->blobs << " blobs (" << info->blobs_copied << " new), added "
        << human_size(info->bytes_added) << " (" << info->bytes_added << " bytes), total "
        << human_size(info->bytes_total) << ", " << static_cast<long>(info->duration_seconds + 0.5) << "s\n";
    summary["snapshot"] = info->id;
    summary["blobs"] = info->blobs;
    summary["blobs_copied"] = info->blobs_copied;
    summary["bytes_added"] = info->bytes_added;
    summary["bytes_total"] = info->bytes_total;
    summary["database"] = info->has_database;
    summary["durations"] = info->part_seconds;
    return 0;
  });
}

int backup_list(Config const& config, bool json, std::ostream& out) {
  auto const snapshots = backup::list_snapshots(snapshot_config(config));
  if (json) {
    auto list = nlohmann::ordered_json::array();
    for (auto const& info : snapshots)
      list.push_back({{"id", info.id},
                      {"started", info.started},
                      {"finished", info.finished},
                      {"duration_seconds", info.duration_seconds},
                      {"bytes_added", info.bytes_added},
                      {"bytes_total", info.bytes_total},
                      {"blobs", info.blobs},
                      {"has_database", info.has_database}});
    out << list.dump(2) << "\n";
    return 0;
  }
  if (snapshots.empty()) {
    out << "no snapshots on " << config.snapshots.volume.string() << "\n";
    return 0;
  }
  print_row(out, "ID", "TIME", "ADDED", "TOTAL", "DURATION", "STATUS");
  for (auto const& info : snapshots)
    print_row(out, info.id, info.finished, human_size(info.bytes_added), human_size(info.bytes_total),
              std::to_string(static_cast<long>(info.duration_seconds + 0.5)) + "s",
              info.has_database ? "complete" : "complete (no database)");
  return 0;
}

int backup_verify(Config const& config, std::string const& id, bool all, std::ostream& out) {
  return with_summary("backup verify", out, [&](nlohmann::ordered_json& summary) {
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
    std::size_t mismatch_count = 0;
    auto const progress = terminal_progress();
    for (std::size_t index = 0; index < ids.size(); ++index) {
      auto const& snapshot = ids[index];
      if (progress) progress({"verifying " + snapshot, index, ids.size(), 0});
      auto const mismatches = backup::verify_snapshot(snapshots_config, snapshot);
      for (auto const& mismatch : mismatches)
        out << snapshot << ": " << mismatch.what << ": " << mismatch.problem << "\n";
      if (mismatches.empty())
        out << snapshot << ": ok\n";
      else
        code = 1;
      mismatch_count += mismatches.size();
    }
    summary["snapshots"] = ids;
    summary["mismatches"] = mismatch_count;
    return code;
  });
}

int backup_prune(Config const& config, bool dry_run, std::ostream& out) {
  return with_summary("backup prune", out, [&](nlohmann::ordered_json& summary) {
    auto const report = backup::prune(snapshot_config(config), dry_run);
    for (auto const& decision : report.decisions) {
      if (decision.kept_by.empty()) {
        out << (dry_run ? "would remove " : "removed ") << decision.id << "\n";
        continue;
      }
      std::string rules;
      for (auto rule : decision.kept_by) rules += (rules.empty() ? "" : ", ") + std::string(backup::to_string(rule));
      out << "keep " << decision.id << "  (" << rules << ")\n";
    }
    out << (dry_run ? "would remove " : "removed ") << report.snapshots_removed << " snapshots and "
        << report.blobs_removed << " pool blobs, " << (dry_run ? "freeing " : "freed ")
        << human_size(report.bytes_freed) << " (" << report.bytes_freed << " bytes)\n";
    summary["dry_run"] = dry_run;
    summary["snapshots_kept"] = report.decisions.size() - report.snapshots_removed;
    summary["snapshots_removed"] = report.snapshots_removed;
    summary["blobs_removed"] = report.blobs_removed;
    summary["bytes_freed"] = report.bytes_freed;
    return 0;
  });
}

int backup_drill(Config const& config, std::string const& id, std::filesystem::path const& scratch, std::ostream& out) {
  return with_summary("backup drill", out, [&](nlohmann::ordered_json& summary) {
    auto const snapshots = snapshot_config(config);
    auto snapshot = id;
    if (snapshot.empty()) {
      auto const all = backup::list_snapshots(snapshots);
      if (all.empty())
        throw Error("no snapshots on " + config.snapshots.volume.string() + "\nHINT: take one with `berth backup run`");
      snapshot = all.back().id;
    }
    summary["snapshot"] = snapshot;
    backup::DrillOptions options;
    options.scratch = scratch;
    options.postgres_bin_dir = config.postgres.bin_dir;
    options.postgres_os_user = config.postgres.os_user;
    options.progress = terminal_progress();
    auto const result = backup::drill_snapshot(snapshots, snapshot, options);
    for (auto const& failure : result.failures) out << "FAILED " << failure << "\n";
    for (auto const& warning : result.warnings) out << "WARNING " << warning << "\n";
    out << "drill of snapshot " << snapshot << ": " << (result.ok ? "ok" : "FAILED") << " in "
        << static_cast<long>(result.seconds + 0.5) << "s: " << result.databases << " databases, " << result.tables
        << " tables, " << result.rows << " rows (counts " << (result.counts_exact ? "exact" : "not provably comparable")
        << "), " << result.manifests << " registry manifests, " << result.blobs << " blobs\n";
    summary["databases"] = result.databases;
    summary["tables"] = result.tables;
    summary["rows"] = result.rows;
    summary["counts_exact"] = result.counts_exact;
    summary["manifests"] = result.manifests;
    summary["blobs"] = result.blobs;
    summary["failures"] = result.failures.size();
    summary["warnings"] = result.warnings.size();
    return result.ok ? 0 : 1;
  });
}

namespace {

// The pid in `postmaster.pid` when that process still runs and is a postgres: a server whose
// berth was killed, or one started by hand.
std::optional<pid_t> live_postmaster(std::filesystem::path const& data_dir) {
  std::ifstream file(data_dir / "postmaster.pid");
  long pid = 0;
  if (!(file >> pid) || pid <= 0) return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return std::nullopt;
  std::ifstream command("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (command >> name && name.find("postgres") == std::string::npos && name.find("postmaster") == std::string::npos)
    return std::nullopt;  // the pid was reused by another program: the file is stale
  return static_cast<pid_t>(pid);
}

// A restore writes over its target (with --force, PostgreSQL's data directory is replaced):
// never over a volume something runs on, nor into the backup volume it reads from.
void refuse_live_target(Config const& config, std::filesystem::path const& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto const dir = fs::weakly_canonical(fs::absolute(target), ec).lexically_normal();
  auto const inside = [&](fs::path const& volume) {
    auto const root = fs::weakly_canonical(fs::absolute(volume), ec).lexically_normal();
    auto const relative = dir.lexically_relative(root);
    return !relative.empty() && *relative.begin() != "..";
  };
  if (inside(config.snapshots.volume))
    throw Error("refusing to restore into " + dir.string() + ": it is inside the backup volume " +
                config.snapshots.volume.string() + " the snapshots are read from" +
                "\nHINT: restore into a folder of its own, e.g. /var/lib/berth-restored");
  if (auto const pid = VolumeLock::holder(dir / "run" / "berth.lock"))
    throw Error("refusing to restore into " + dir.string() + ": berth serve (pid " + std::to_string(*pid) +
                ") runs on it, and a restore would pull its data from under it" +
                "\nHINT: stop that berth first (systemctl stop berth, or kill " + std::to_string(*pid) +
                "), or restore into another folder; --force only writes over a folder nobody uses");
  if (auto const pid = live_postmaster(dir / "postgres"))
    throw Error("refusing to restore into " + dir.string() + ": PostgreSQL (pid " + std::to_string(*pid) +
                ") runs on " + (dir / "postgres").string() +
                "\nHINT: stop that server first (kill -INT " + std::to_string(*pid) +
                "), or restore into another folder; --force only writes over a folder nobody uses");
}

}  // namespace

int backup_restore(Config const& config, std::string id, std::filesystem::path const& target, bool force,
                   std::string const& pg_time, std::ostream& out) {
  refuse_live_target(config, target);
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
  // The copy is not the original: a new identity, so that it cannot take over the original's
  // backup volume (WAL archive and snapshots) by being served beside it.
  renew_primary_identity(target);
  out << "\nstart berth on it with volumes.primary: " << target.string() << " (and a backup volume of its own)\n";
  return 0;
}

int backup_adopt(Config const& config, std::ostream& out) {
  auto const previous = backup_owner(config.backup);
  auto const id = primary_identity(config.primary);
  if (previous && *previous == id) {
    out << "the backup volume " << config.backup.string() << " already belongs to " << config.primary.string() << " ("
        << id << "); nothing changed\n";
    return 0;
  }
  adopt_backup_volume(config.primary, config.backup);
  out << "the backup volume " << config.backup.string() << " now belongs to " << config.primary.string() << " (" << id
      << ")" << (previous ? "; it belonged to " + *previous : std::string()) << "\n"
      << "restart berth to archive WAL and take snapshots there (systemctl restart berth)\n";
  return 0;
}

}  // namespace berth::appliance

// Point-in-time recovery: restore a snapshot, then let a throwaway server replay the WAL archive
// up to the chosen moment and promote.
#include "berth/backup/point_in_time.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include <pqxx/pqxx>

#include "berth/backup/snapshot.hpp"
#include "berth/core/error.hpp"
#include "berth/core/log.hpp"
#include "berth/postgres/cluster.hpp"
#include "io.hpp"
#include "snapshot_layout.hpp"

namespace berth::backup {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

constexpr char accepted_forms[] =
    "\nHINT: write it as \"YYYY-MM-DD HH:MM:SS\" (local time), optionally with a fraction of a second and a "
    "zone: \"2026-11-27 14:05:00\", \"2026-11-27 13:05:00.250 UTC\", \"2026-11-27T14:05:00+01:00\"";

// Manifest times: "2026-11-27T15:30:00Z" or with microseconds.
TimePoint parse_manifest_time(std::string const& text) {
  return parse_point_in_time(text);
}

// The moment the snapshot's base backup ended: recovery cannot stop before it.
TimePoint backup_end(nlohmann::json const& manifest) {
  auto const& postgres = manifest.at("postgres");
  if (postgres.contains("stop_time")) return parse_manifest_time(postgres.at("stop_time"));
  // Older manifests: the snapshot's end, rounded up (it is recorded to the second).
  return parse_manifest_time(manifest.at("finished")) + 1s;
}

// The server creates a timeline history file at promotion but, with archiving off during the
// replay, does not mark it for the archiver; mark it, so the service archives it once it runs and a
// later recovery can follow the new timeline.
void mark_history_for_archiving(fs::path const& data_dir) {
  auto const status_dir = data_dir / "pg_wal" / "archive_status";
  struct stat owner {};
  if (::stat(data_dir.c_str(), &owner) != 0) return;
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(data_dir / "pg_wal", ec)) {
    auto const name = entry.path().filename().string();
    if (entry.path().extension() != ".history") continue;
    if (fs::exists(status_dir / (name + ".done")) || fs::exists(status_dir / (name + ".ready"))) continue;
    auto const marker = status_dir / (name + ".ready");
    std::ofstream{marker};
    if (::lchown(marker.c_str(), owner.st_uid, owner.st_gid) != 0)
      logger("backup")->warn("cannot give {} to the server's user", marker.string());
  }
}

void write_recovery_signal(fs::path const& data_dir) {
  auto const signal = data_dir / "recovery.signal";
  detail::write_file_durably(signal, "");
  struct stat owner {};
  if (::stat(data_dir.c_str(), &owner) != 0 || ::lchown(signal.c_str(), owner.st_uid, owner.st_gid) != 0)
    throw Error(detail::errno_message("cannot give " + signal.string() + " to the server's user"));
  fs::permissions(signal, fs::perms::owner_read | fs::perms::owner_write);
}

// restore_command is run by the server through the shell: quote the folder for it.
std::string shell_quoted(std::string const& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

TimePoint parse_point_in_time(std::string const& text) {
  static std::regex const form(
      R"(\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)?\s*)");
  std::smatch match;
  if (!std::regex_match(text, match, form)) throw Error("cannot read the time \"" + text + "\"" + accepted_forms);
  std::tm tm{};
  tm.tm_year = std::stoi(match[1]) - 1900;
  tm.tm_mon = std::stoi(match[2]) - 1;
  tm.tm_mday = std::stoi(match[3]);
  tm.tm_hour = std::stoi(match[4]);
  tm.tm_min = std::stoi(match[5]);
  tm.tm_sec = std::stoi(match[6]);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    throw Error("the time \"" + text + "\" is out of range" + accepted_forms);
  std::tm const asked = tm;

  std::time_t seconds = 0;
  std::string const zone = match[8];
  if (zone.empty()) {
    tm.tm_isdst = -1;
    seconds = std::mktime(&tm);
    if (tm.tm_mday != asked.tm_mday || tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min)
      throw Error("the time \"" + text + "\" does not exist in the local time zone (a daylight saving gap?)" +
                  accepted_forms);
  } else {
    seconds = ::timegm(&tm);  // normalises tm: a day that does not exist moves into the next month
    if (tm.tm_mday != asked.tm_mday) throw Error("the time \"" + text + "\" is out of range" + accepted_forms);
    if (zone[0] == '+' || zone[0] == '-') {
      std::string digits = zone.substr(1);
      digits.erase(std::remove(digits.begin(), digits.end(), ':'), digits.end());
      long const offset =
          std::stol(digits.substr(0, 2)) * 3600 + (digits.size() > 2 ? std::stol(digits.substr(2)) * 60 : 0);
      seconds -= zone[0] == '+' ? offset : -offset;
    }
  }
  auto when = Clock::from_time_t(seconds);
  if (match[7].matched) {
    std::string fraction = match[7].str().substr(1);
    fraction.resize(6, '0');
    when += std::chrono::microseconds(std::stol(fraction));
  }
  return when;
}

std::string postgres_timestamp(TimePoint when) {
  auto const micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
  std::time_t const seconds = static_cast<std::time_t>(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
  long const fraction = static_cast<long>(micros - static_cast<long long>(seconds) * 1000000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, fraction);
  return text;
}

std::string snapshot_before(Config const& config, TimePoint when) {
  std::optional<std::string> chosen;
  std::optional<TimePoint> earliest;
  for (auto const& info : list_snapshots(config)) {
    if (!info.has_database) continue;
    auto const end = backup_end(detail::read_manifest(config, info.id));
    if (end <= when) chosen = info.id;
    if (!earliest || end < *earliest) earliest = end;
  }
  if (chosen) return *chosen;
  if (!earliest)
    throw Error("no snapshot on " + config.volume.string() + " holds a database" +
                "\nHINT: take one with `berth backup run` while PostgreSQL is enabled");
  throw Error("no snapshot's database backup had ended by " + postgres_timestamp(when) + "; the earliest moment " +
              "that can be recovered is " + postgres_timestamp(*earliest) +
              "\nHINT: choose a later time, or restore a snapshot as it is (without --pg-time)");
}

Recovered restore_to_time(Config const& config, std::string const& id, TimePoint when, fs::path const& target,
                          bool force, Replay const& replay) {
  auto const log = logger("backup");
  auto const manifest = detail::read_manifest(config, id);
  if (!manifest.contains("postgres"))
    throw Error("snapshot " + id + " holds no database" +
                "\nHINT: `berth backup list` shows the snapshots; choose one taken with PostgreSQL enabled");
  if (backup_end(manifest) > when)
    throw Error("snapshot " + id + "'s database backup ended after " + postgres_timestamp(when) +
                ": it cannot be taken back to an earlier moment" +
                "\nHINT: leave out the snapshot id, and berth picks the newest one that ended before that time");
  if (!fs::is_directory(replay.wal_archive))
    throw Error("the WAL archive " + replay.wal_archive.string() + " does not exist" +
                "\nHINT: point-in-time recovery needs postgres.wal_archive: true while the data was written");

  restore_snapshot(config, id, target, force, replay.os_user);
  auto const data_dir = target / "postgres";
  write_recovery_signal(data_dir);

  postgres::Config server;
  server.data_dir = data_dir;
  server.socket_dir = target / "run" / "postgres";
  server.secrets_dir = target / "secrets";
  server.os_user = replay.os_user;
  server.bin_dir = replay.bin_dir;
  // A server that stops during the replay has failed (e.g. the archive ends before the target):
  // it must not be restarted.
  server.restart_backoff_min = server.restart_backoff_max = std::chrono::hours(24);
  auto const target_text = postgres_timestamp(when);
  server.settings = {
      {"restore_command", "cp " + shell_quoted(fs::absolute(replay.wal_archive).string()) + "/%f %p"},
      {"recovery_target_time", target_text},
      {"recovery_target_action", "promote"},
  };

  log->info("replaying the WAL archive snapshot={} target_time={} archive={}", id, target_text,
            replay.wal_archive.string());
  auto const began = std::chrono::steady_clock::now();
  postgres::Cluster cluster(server);
  cluster.start();
  Recovered result;
  result.snapshot = id;
  std::string last_error;
  for (auto pause = 20ms;; pause = std::min(pause * 2, 200ms)) {
    if (!cluster.pid()) {
      cluster.stop();
      throw Error("the database replay stopped before reaching " + target_text +
                  (last_error.empty() ? "" : " (last connection error: " + last_error + ")") +
                  "; the server's reason is in the log lines above" + "\nHINT: the WAL archive " +
                  replay.wal_archive.string() +
                  " may not reach that time yet (a segment is archived within postgres.archive_timeout of a write); "
                  "choose an earlier time");
    }
    try {
      pqxx::connection connection(cluster.connection_string() + " connect_timeout=2");
      pqxx::nontransaction query(connection);
      auto const row = query.exec("SELECT pg_is_in_recovery(), coalesce(pg_last_xact_replay_timestamp()::text, '')").at(0);
      if (!row[0].as<bool>()) {
        result.last_transaction = row[1].as<std::string>();
        break;
      }
    } catch (std::exception const& e) {
      last_error = e.what();  // not accepting connections before the replay is consistent
      last_error.erase(last_error.find_last_not_of(" \n") + 1);
    }
    std::this_thread::sleep_for(pause);  // polling interval while the server replays
  }
  cluster.stop();
  mark_history_for_archiving(data_dir);
  result.replay_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  log->info("database recovered snapshot={} target_time={} last_transaction={} seconds={:.1f}", id, target_text,
            result.last_transaction, result.replay_seconds);
  return result;
}

}  // namespace berth::backup

// Retention: the pure selection, and prune, which applies it on the backup volume. Prune holds the
// volume's lock for its whole run: a snapshot being taken holds it too, so a blob a run has just
// copied into the pool (and no manifest names yet) is never swept.
#include "berth/backup/retention.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>

#include "berth/backup/snapshot.hpp"
#include "berth/core/file_lock.hpp"
#include "berth/core/log.hpp"
#include "io.hpp"
#include "snapshot_layout.hpp"

namespace berth::backup {

namespace fs = std::filesystem;
namespace chrono = std::chrono;

namespace {

// The UTC day of "YYYYMMDDTHHMMSSZ".
chrono::sys_days day_of(std::string const& id) {
  int year = 0;
  unsigned month = 0, day = 0, hour = 0, minute = 0, second = 0;
  char tee = 0, zulu = 0;
  if (id.size() != 16 ||
      std::sscanf(id.c_str(), "%4d%2u%2u%c%2u%2u%2u%c", &year, &month, &day, &tee, &hour, &minute, &second, &zulu) !=
          8 ||
      tee != 'T' || zulu != 'Z')
    throw Error("snapshot id " + id + " is not a UTC time (YYYYMMDDTHHMMSSZ)" +
                "\nHINT: move folders berth did not make out of the backup volume's snapshots/");
  chrono::year_month_day const date{chrono::year{year}, chrono::month{month}, chrono::day{day}};
  if (!date.ok()) throw Error("snapshot id " + id + " names no valid date");
  return chrono::sys_days{date};
}

// ISO 8601 week: the week belongs to the year of its Thursday.
std::string iso_week_of(chrono::sys_days day) {
  unsigned const c_weekday = chrono::weekday{day}.c_encoding();
  unsigned const iso_weekday = c_weekday == 0 ? 7 : c_weekday;  // Monday 1 .. Sunday 7
  auto const thursday = day + chrono::days{4 - static_cast<int>(iso_weekday)};
  auto const iso_year = chrono::year_month_day{thursday}.year();
  auto const first_day = chrono::sys_days{iso_year / chrono::January / 1};
  auto const week = (thursday - first_day).count() / 7 + 1;
  char key[32];
  std::snprintf(key, sizeof key, "%d-W%02d", static_cast<int>(iso_year), static_cast<int>(week));
  return key;
}

std::uint64_t folder_bytes(fs::path const& folder) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

}  // namespace

char const* to_string(KeepRule rule) {
  switch (rule) {
    case KeepRule::last: return "last";
    case KeepRule::daily: return "daily";
    case KeepRule::weekly: return "weekly";
    case KeepRule::monthly: return "monthly";
  }
  return "?";
}

std::vector<RetentionDecision> select_retained(std::vector<std::string> const& ids, Retention const& retention) {
  std::vector<std::string> newest_first = ids;
  std::sort(newest_first.begin(), newest_first.end(), std::greater<>());

  // One bucket rule per period: the first (newest) snapshot of a bucket not seen yet is kept while
  // the rule has count left.
  struct Bucketed {
    KeepRule rule;
    unsigned left;
    std::string last_bucket;
  };
  std::vector<Bucketed> rules = {{KeepRule::daily, retention.keep_daily, {}},
                                 {KeepRule::weekly, retention.keep_weekly, {}},
                                 {KeepRule::monthly, retention.keep_monthly, {}}};
  std::vector<RetentionDecision> decisions;
  unsigned last_left = retention.keep_last;
  for (auto const& id : newest_first) {
    auto const day = day_of(id);
    RetentionDecision decision{id, {}};
    if (last_left > 0) {
      --last_left;
      decision.kept_by.push_back(KeepRule::last);
    }
    chrono::year_month_day const date{day};
    for (auto& rule : rules) {
      if (rule.left == 0) continue;
      std::string bucket;
      if (rule.rule == KeepRule::daily)
        bucket = id.substr(0, 8);
      else if (rule.rule == KeepRule::weekly)
        bucket = iso_week_of(day);
      else
        bucket = std::to_string(static_cast<int>(date.year())) + "-" + std::to_string(unsigned(date.month()));
      if (bucket == rule.last_bucket) continue;
      rule.last_bucket = bucket;
      --rule.left;
      decision.kept_by.push_back(rule.rule);
    }
    decisions.push_back(std::move(decision));
  }
  return decisions;
}

PruneReport prune(Config const& config, bool dry_run) {
  auto const log = logger("backup");
  auto const began = chrono::steady_clock::now();
  auto const& keep = config.retention;
  if (keep.keep_last + keep.keep_daily + keep.keep_weekly + keep.keep_monthly == 0)
    throw Error(
        "retention keeps no snapshot: backup.keep_last, keep_daily, keep_weekly and keep_monthly are all 0"
        "\nHINT: set at least one of them in the config (keep_last: 1 keeps the newest)");
  if (!fs::exists(config.volume / "snapshots")) return {};
  FileLock lock(config.volume / ".lock");
  if (!lock.locked())
    throw Busy("another backup job holds " + (config.volume / ".lock").string() +
               "\nHINT: wait for it to finish, then prune again");
  detail::VolumeOwner(config.volume).give(config.volume / ".lock");  // root must not keep the service out

  // Every manifest is read before anything is removed: a blob must not go because the snapshot
  // that needs it could not be read.
  auto const snapshots = list_snapshots(config);
  std::vector<std::string> ids;
  for (auto const& info : snapshots) ids.push_back(info.id);
  PruneReport report;
  report.decisions = select_retained(ids, config.retention);
  std::set<std::string> referenced;
  for (auto const& decision : report.decisions) {
    if (decision.kept_by.empty()) continue;
    auto const manifest = detail::read_manifest(config, decision.id);
    for (auto const& blob : manifest.at("blobs"))
      referenced.insert(detail::pool_path(config.volume, blob.at("digest").get<std::string>()).string());
  }

  for (auto const& decision : report.decisions) {
    if (!decision.kept_by.empty()) continue;
    auto const folder = config.volume / "snapshots" / decision.id;
    report.bytes_freed += folder_bytes(folder);
    ++report.snapshots_removed;
    if (dry_run) continue;
    // Invisible first (a .partial- folder is a leftover the next run removes), then gone.
    auto const hidden = config.volume / "snapshots" / (".partial-" + decision.id);
    fs::rename(folder, hidden);
    detail::fsync_path(config.volume / "snapshots");
    fs::remove_all(hidden);
    log->info("snapshot removed id={}", decision.id);
  }

  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(config.volume / "pool", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || referenced.count(it->path().string())) continue;
    report.bytes_freed += it->file_size();
    ++report.blobs_removed;
    if (!dry_run) fs::remove(it->path());
  }
  if (ec) throw Error("cannot list " + (config.volume / "pool").string() + ": " + ec.message());
  report.seconds = chrono::duration<double>(chrono::steady_clock::now() - began).count();
  log->info("prune {} snapshots_removed={} blobs_removed={} bytes_freed={} seconds={:.2f}",
            dry_run ? "dry run" : "done", report.snapshots_removed, report.blobs_removed, report.bytes_freed,
            report.seconds);
  return report;
}

}  // namespace berth::backup

#include "registry_commands.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "berth/core/file_lock.hpp"
#include "berth/core/human.hpp"
#include "berth/core/log.hpp"
#include "berth/registry/maintenance.hpp"
#include "berth/registry/retention.hpp"
#include "retention_commands.hpp"

namespace berth::appliance {
namespace {

// Where the backup volume's pool keeps a verified copy of each blob a snapshot took (backup/snapshot.hpp).
registry::RepairSource backup_pool(Config const& config) {
  return [pool = config.snapshots.volume /
                 "pool"](registry::Digest const& digest) -> std::optional<std::filesystem::path> {
    auto path = pool / std::string(digest.algorithm_name()) / digest.hex().substr(0, 2) / digest.hex();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    return path;
  };
}

// The registry is only read here; a missing storage directory means an empty registry, not an
// error, and is not created.
registry::Config readable(Config const& config) {
  if (!std::filesystem::is_directory(config.registry.root))
    throw Error("no registry at " + config.registry.root.string() +
                "\nHINT: check volumes.primary (or --config); berth serve creates it on first start");
  return config.registry;
}

}  // namespace

void act_as_owner_of(std::filesystem::path const& path) {
  if (::geteuid() != 0) return;
  struct stat owned {};
  if (::stat(path.c_str(), &owned) != 0 || owned.st_uid == 0) return;
  if (::setgroups(0, nullptr) != 0 || ::setgid(owned.st_gid) != 0 || ::setuid(owned.st_uid) != 0)
    throw Error("cannot switch to the owner of " + path.string() + " (uid " + std::to_string(owned.st_uid) +
                "): " + std::strerror(errno) + "\nHINT: run the command as that user (e.g. sudo -u berth berth ...)");
  logger("berth")->debug("working as the owner of {} uid={} gid={}", path.string(), owned.st_uid, owned.st_gid);
}

void act_as_volume_owner(Config const& config) {
  act_as_owner_of(config.primary);
}

int registry_ls(Config const& config, std::string const& prefix, bool json, std::ostream& out) {
  auto const& namespaces = config.registry.namespaces;
  if (auto const name_space = prefix.substr(0, prefix.find('/'));
      !prefix.empty() && std::find(namespaces.begin(), namespaces.end(), name_space) == namespaces.end()) {
    std::string known;
    for (auto const& name : namespaces) known += (known.empty() ? "" : ", ") + name;
    throw Error("no namespace " + name_space + " in this registry: its namespaces are " + known +
                "\nHINT: berth registry ls NAMESPACE[/REPOSITORY], e.g. berth registry ls " + namespaces.front() +
                " (registry.namespaces lists them)");
  }
  registry::Storage storage(readable(config));
  auto summaries = registry::summarize(storage, prefix);
  if (json) {
    auto repositories = nlohmann::ordered_json::array();
    for (auto const& summary : summaries) {
      auto tags = nlohmann::ordered_json::array();
      for (auto const& tag : summary.tag_details)
        tags.push_back({{"name", tag.name},
                        {"digest", tag.digest},
                        {"pushed", tag.pushed ? nlohmann::ordered_json(utc_time(*tag.pushed)) : nullptr}});
      repositories.push_back(
          {{"name", summary.name}, {"manifests", summary.manifests}, {"bytes", summary.bytes}, {"tags", tags}});
    }
    auto namespaces = nlohmann::ordered_json::array();
    for (auto const& usage : registry::namespace_usage(storage))
      if (prefix.empty() || usage.name == prefix.substr(0, prefix.find('/')))
        namespaces.push_back({{"name", usage.name},
                              {"bytes", usage.bytes},
                              {"blobs", usage.blobs},
                              {"quota_bytes", usage.quota ? nlohmann::ordered_json(*usage.quota) : nullptr}});
    out << nlohmann::ordered_json{{"repositories", repositories}, {"namespaces", namespaces}}.dump(2) << "\n";
    return 0;
  }
  std::size_t width = 10;
  for (auto const& summary : summaries) width = std::max(width, summary.name.size());
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %9s  %10s  %s\n", static_cast<int>(width), "REPOSITORY", "MANIFESTS", "SIZE",
                "TAGS");
  out << line;
  std::uint64_t total = 0;
  for (auto const& summary : summaries) {
    std::string tags;
    for (auto const& tag : summary.tags) tags += (tags.empty() ? "" : " ") + tag;
    std::snprintf(line, sizeof line, "%-*s  %9zu  %10s  ", static_cast<int>(width), summary.name.c_str(),
                  summary.manifests, human_size(summary.bytes).c_str());
    out << line << (tags.empty() ? "-" : tags) << "\n";
    total += summary.bytes;
  }
  out << summaries.size() << (summaries.size() == 1 ? " repository, " : " repositories, ") << human_size(total)
      << " (blobs shared between repositories count in each)\n";
  // Each tag with the manifest it names (what `promote REPO@DIGEST` and `pull REPO@DIGEST` take)
  // and when it was last pushed.
  std::vector<std::array<std::string, 3>> tag_rows;
  std::size_t tag_width = 3;
  for (auto const& summary : summaries)
    for (auto const& tag : summary.tag_details) {
      tag_rows.push_back({summary.name + ":" + tag.name, tag.digest,
                          tag.pushed ? utc_time(*tag.pushed, "%Y-%m-%d %H:%M:%S") : std::string("?")});
      tag_width = std::max(tag_width, tag_rows.back()[0].size());
    }
  if (!tag_rows.empty()) {
    std::snprintf(line, sizeof line, "\n%-*s  %-71s  %s\n", static_cast<int>(tag_width), "TAG", "DIGEST", "PUSHED (UTC)");
    out << line;
    for (auto const& row : tag_rows) {
      std::snprintf(line, sizeof line, "%-*s  %-71s  %s\n", static_cast<int>(tag_width), row[0].c_str(), row[1].c_str(),
                    row[2].c_str());
      out << line;
    }
  }
  if (prefix.empty() || prefix.find('/') == std::string::npos) {
    out << "\nNAMESPACE  BLOBS       SIZE  QUOTA\n";
    for (auto const& usage : registry::namespace_usage(storage)) {
      if (!prefix.empty() && usage.name != prefix) continue;
      std::string quota = "-";
      if (usage.quota)
        quota = human_size(*usage.quota) + " (" +
                std::to_string(*usage.quota ? usage.bytes * 100 / *usage.quota : 100) + "% used)";
      std::snprintf(line, sizeof line, "%-9s  %5zu  %9s  %s\n", usage.name.c_str(), usage.blobs,
                    human_size(usage.bytes).c_str(), quota.c_str());
      out << line;
    }
  }
  return 0;
}

int registry_fsck(Config const& config, bool repair, std::ostream& out) {
  act_as_volume_owner(config);  // even a check creates what is missing of the layout
  registry::Config registry_config = readable(config);
  registry_config.quotas.clear();  // a repair restores what was there; it adds nothing to any namespace
  registry::Storage storage(registry_config);
  registry::FsckReport report;
  if (repair) {
    report = registry::fsck_and_repair(storage, backup_pool(config));
  } else {
    report = registry::fsck(storage);
  }
  for (auto const& repaired : report.repaired) out << "REPAIRED " << repaired << "\n";
  for (auto const& problem : report.problems) out << "DAMAGED " << problem << "\n";
  out << "checked " << report.blobs_checked << " blobs (" << human_size(report.bytes_checked) << "), "
      << report.manifests_checked << " manifests in " << report.repositories_checked
      << " repositories: " << (report.clean() ? "no problems" : std::to_string(report.problems.size()) + " problems")
      << "\n";
  if (!report.clean() && !repair && std::filesystem::is_directory(config.snapshots.volume / "pool"))
    out << "HINT: `berth registry fsck --repair` restores damaged blobs from the backup volume's pool\n";
  if (!report.clean() && repair)
    out << "HINT: what could not be repaired has no good copy on the backup volume; push those images again\n";
  return report.clean() ? 0 : 1;
}

registry::GcReport collect_garbage_locked(Config const& config, registry::Storage& storage,
                                          registry::GcOptions const& options) {
  // Snapshots, prune and drills hold <backup volume>/.lock (backup/snapshot.hpp) while they run:
  // a snapshot copying blobs must not see them vanish. Without a backup volume there is no
  // snapshot to keep out.
  std::unique_ptr<FileLock> backup_lock;
  if (std::filesystem::is_directory(config.snapshots.volume)) {
    backup_lock = std::make_unique<FileLock>(config.snapshots.volume / ".lock");
    if (!backup_lock->locked())
      throw registry::GcBusy("a snapshot, prune or drill holds " + (config.snapshots.volume / ".lock").string() +
                             "\nHINT: run `berth registry gc` again when it is done");
  }
  return registry::collect_garbage(storage, options);
}

int registry_gc(Config const& config, GcCommandOptions const& options, std::ostream& out) {
  act_as_volume_owner(config);
  registry::Storage storage(readable(config));
  registry::GcOptions gc_options{.grace_period = config.registry.gc.grace_period,
                                 .delete_untagged = config.registry.gc.delete_untagged || options.delete_untagged,
                                 .dry_run = options.dry_run};
  auto report = collect_garbage_locked(config, storage, gc_options);
  if (options.list || options.dry_run)
    for (auto const& item : report.removed) out << (options.dry_run ? "would remove " : "removed ") << item << "\n";
  for (auto const& warning : report.warnings) out << "warning: " << warning << "\n";
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.2f", report.seconds);
  out << (options.dry_run ? "dry run: would reclaim " : "reclaimed ") << human_size(report.bytes_reclaimed) << ": "
      << report.manifests_deleted << " manifests, " << report.blobs_deleted << " blobs, " << report.links_removed
      << " repository links, " << report.uploads_expired << " expired uploads; kept " << report.manifests_kept
      << " manifests and " << report.blobs_kept << " blobs (" << human_size(report.bytes_kept) << ") in "
      << report.repositories << " repositories; " << seconds << " s\n";
  if (report.revived > 0)
    out << report.revived << " candidates were taken back by pushes during the collection and kept\n";
  if (!options.dry_run && !gc_options.delete_untagged)
    out << "untagged manifests were kept (registry.gc.delete_untagged, or --delete-untagged)\n";
  out << registry::gc_summary_json(report) << "\n";
  return 0;
}

PeriodicJob::PeriodicJob(Clock::time_point first, Run run) {
  thread_ = std::thread([this, first, run = std::move(run)] {
    auto next = first;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
      lock.unlock();
      next = run(*this);
      lock.lock();
    }
  });
}

PeriodicJob::~PeriodicJob() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool PeriodicJob::pause(std::chrono::steady_clock::duration duration) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, duration, [this] { return stopping_; });
}

namespace {

// registry.retention before each scheduled collection, so what it untags is collected in the same run.
void apply_retention_rules(Config const& config, registry::Storage& storage) {
  auto log = logger("registry");
  auto plan = registry::plan_retention(storage, config.registry.retention, config.registry.immutable_tags,
                                       promoted_images(config), std::chrono::system_clock::now());
  auto report = registry::apply_retention(storage, plan);
  for (auto const& item : report.deleted) log->info("retention deleted {} reason=\"{}\"", item.name(), item.reason);
  for (auto const& skipped : report.skipped) log->info("retention skipped {}", skipped);
  log->info("retention applied tags_deleted={} manifests_deleted={} skipped={}", report.tags_deleted,
            report.manifests_deleted, report.skipped.size());
}

struct ScrubStopped {};

}  // namespace

std::unique_ptr<PeriodicJob> schedule_gc(Config const& config, registry::Storage& storage) {
  auto const& gc = config.registry.gc;
  if (gc.interval.count() == 0) {
    logger("registry")->info("scheduled gc off (registry.gc.interval: 0s)");
    return nullptr;
  }
  // One interval after the last recorded run (or after start), so restarts do not make
  // collections more frequent.
  auto now = PeriodicJob::Clock::now();
  auto first = now + gc.interval;
  if (auto last = registry::last_gc(storage))
    first = std::max(now + std::chrono::minutes(1), last->finished + gc.interval);
  return std::make_unique<PeriodicJob>(first, [&config, &storage](PeriodicJob&) {
    auto const& gc = config.registry.gc;
    auto log = logger("registry");
    try {
      if (!config.registry.retention.empty()) apply_retention_rules(config, storage);
      collect_garbage_locked(
          config, storage, {.grace_period = gc.grace_period, .delete_untagged = gc.delete_untagged, .dry_run = false});
    } catch (registry::GcBusy const& busy) {
      log->info("scheduled gc postponed by 10 minutes reason=\"{}\"", busy.what());
      return PeriodicJob::Clock::now() + std::chrono::minutes(10);
    } catch (std::exception const& error) {
      log->error("scheduled gc failed error=\"{}\"", error.what());
    }
    return PeriodicJob::Clock::now() + gc.interval;
  });
}

std::unique_ptr<PeriodicJob> schedule_scrub(Config const& config, registry::Storage& storage) {
  auto const& scrub = config.registry.scrub;
  if (scrub.interval.count() == 0) return nullptr;
  // <root>/scrub-last holds when the last full pass ended (unix seconds): a restart does not
  // start the next one early. Never scrubbed: start now.
  auto record = config.registry.root / "scrub-last";
  auto first = PeriodicJob::Clock::now();
  if (std::ifstream in(record); in) {
    long long finished = 0;
    if (in >> finished)
      first = std::max(first, PeriodicJob::Clock::time_point(std::chrono::seconds(finished)) + scrub.interval);
  }
  logger("registry")->info("scrub every {}s at most {} bytes/s", scrub.interval.count(), scrub.bytes_per_second);
  return std::make_unique<PeriodicJob>(first, [&config, &storage, record](PeriodicJob& job) {
    auto const& scrub = config.registry.scrub;
    auto log = logger("registry");
    auto started = std::chrono::steady_clock::now();
    std::uint64_t bytes_read = 0;
    // After each blob, wait until the bytes read so far fit the rate.
    auto keep_rate = [&](registry::Digest const&, std::uint64_t bytes) {
      bytes_read += bytes;
      auto due =
          started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(
                        static_cast<double>(bytes_read) / static_cast<double>(scrub.bytes_per_second)));
      auto now = std::chrono::steady_clock::now();
      if (due > now && !job.pause(due - now)) throw ScrubStopped{};
    };
    try {
      log->info("scrub started");
      auto report = registry::fsck_and_repair(storage, backup_pool(config), keep_rate);
      for (auto const& repaired : report.repaired) log->warn("scrub repaired {}", repaired);
      for (auto const& problem : report.problems) log->error("scrub found damage: {}", problem);
      log->info("scrub finished blobs={} bytes={} repaired={} problems={} seconds={:.1f}", report.blobs_checked,
                report.bytes_checked, report.repaired.size(), report.problems.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      auto staging = record;
      staging += ".tmp";
      std::ofstream(staging)
          << std::chrono::duration_cast<std::chrono::seconds>(PeriodicJob::Clock::now().time_since_epoch()).count()
          << "\n";
      std::filesystem::rename(staging, record);
    } catch (ScrubStopped const&) {
      log->info("scrub stopped with the service; it starts over next time");
    } catch (std::exception const& error) {
      log->error("scrub failed error=\"{}\"", error.what());
    }
    return PeriodicJob::Clock::now() + scrub.interval;
  });
}

}  // namespace berth::appliance

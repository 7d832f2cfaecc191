// `berth registry ...`: inspection and upkeep of the registry storage on the primary volume,
// and the garbage collection schedule of `berth serve`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "berth/appliance/config.hpp"
#include "berth/registry/gc.hpp"

namespace berth::appliance {

/// Run as root on a `path` another user owns (the service user of the package), the process
/// goes on as that user, so everything it creates there stays usable by the service. Does
/// nothing otherwise (not root, `path` missing or root's). Throws Error when switching fails.
void act_as_owner_of(std::filesystem::path const& path);

/// act_as_owner_of() the primary volume: for the registry commands that write.
void act_as_volume_owner(Config const& config);

/// `berth registry ls [NAMESPACE]`: repositories, their tags and sizes. Returns the exit code.
int registry_ls(Config const& config, std::string const& prefix, bool json, std::ostream& out);

/// `berth registry fsck [--repair]`: rehash every blob, check every reference; 1 if anything
/// is (still) damaged. --repair restores damaged or missing blobs from the backup volume's pool.
int registry_fsck(Config const& config, bool repair, std::ostream& out);

struct GcCommandOptions {
  bool dry_run = false;
  bool delete_untagged = false;  ///< on top of registry.gc.delete_untagged
  bool list = false;             ///< print every object removed (always with --dry-run)
};

/// `berth registry gc`: one collection now, while `berth serve` may run. Exit 0, or 1 when a
/// snapshot or another collection holds the lock or the run fails.
int registry_gc(Config const& config, GcCommandOptions const& options, std::ostream& out);

/// One collection holding the backup volume's lock (no snapshot, prune or drill meanwhile).
/// Throws registry::GcBusy when that lock or another collection is busy, Error on failure.
registry::GcReport collect_garbage_locked(Config const& config, registry::Storage& storage,
                                          registry::GcOptions const& options);

/// A job `berth serve` runs on its own thread while it lives: first at `first`, then whenever
/// the job's return value says. Stops (waiting for a run in progress) on destruction.
class PeriodicJob {
public:
  using Clock = std::chrono::system_clock;
  using Run = std::function<Clock::time_point(PeriodicJob&)>;
  PeriodicJob(Clock::time_point first, Run run);
  ~PeriodicJob();
  PeriodicJob(PeriodicJob const&) = delete;
  PeriodicJob& operator=(PeriodicJob const&) = delete;
  /// Waits `duration` inside a run (e.g. to keep a rate); false when the service is stopping.
  bool pause(std::chrono::steady_clock::duration duration);

private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

/// registry.retention then collect_garbage_locked, every registry.gc.interval (a busy lock
/// postpones a run by ten minutes); nullptr when the interval is 0.
std::unique_ptr<PeriodicJob> schedule_gc(Config const& config, registry::Storage& storage);

/// fsck_and_repair from the backup pool every registry.scrub.interval, reading at most
/// registry.scrub.rate bytes per second; nullptr when the interval is 0 (the default).
std::unique_ptr<PeriodicJob> schedule_scrub(Config const& config, registry::Storage& storage);

}  // namespace berth::appliance

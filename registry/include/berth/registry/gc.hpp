// Online garbage collection: mark what the registry's manifests need, sweep the rest, while
// pushes and pulls go on. Nothing is deleted that a manifest refers to, that was pushed, linked
// or re-referenced within the grace period, or that a push takes back while the sweep runs:
// each candidate is first moved aside (one rename), then checked again, and put back if a
// concurrent push pinned it meanwhile (Storage stamps what it links or refers to).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {

/// Another garbage collection holds the registry's gc.lock.
class GcBusy : public Error {
public:
  using Error::Error;
};

struct GcOptions {
  /// Anything written, linked or referred to more recently than this is kept. At least a minute:
  /// a push in flight must never lose a blob it has just checked.
  std::chrono::seconds grace_period{3600};
  /// Also delete manifests that no tag names, no kept index lists and that are not referrers
  /// (OCI subject) of a kept manifest. Off: only blobs no manifest needs go.
  bool delete_untagged = false;
  bool dry_run = false;  ///< report what would go; change nothing
};

struct GcReport {
  std::size_t repositories = 0;
  std::size_t manifests_kept = 0;
  std::size_t manifests_deleted = 0;
  std::size_t links_removed = 0;  ///< repository links to blobs no manifest there needs
  std::size_t blobs_kept = 0;
  std::size_t blobs_deleted = 0;
  std::size_t uploads_expired = 0;  ///< unfinished uploads older than Config::upload_expiry
  std::size_t revived = 0;          ///< candidates a concurrent push took back during the sweep
  std::uint64_t bytes_kept = 0;
  std::uint64_t bytes_reclaimed = 0;  ///< blobs and expired uploads
  /// One line per thing that went (or would go): "manifest api/a@sha256:…", "link api/a sha256:…",
  /// "blob sha256:… (1234 bytes)", "upload 0f…".
  std::vector<std::string> removed;
  std::vector<std::string> warnings;  ///< e.g. a manifest that no longer parses (its repository is kept whole)
  double seconds = 0;
  bool dry_run = false;
};

/// Runs one collection over `storage`, holding <root>/gc.lock (throws GcBusy when another run
/// holds it). Puts back what an interrupted run had moved aside first. Safe while `berth serve`
/// (in this or another process) serves the same root. Throws Error on I/O failure; what was
/// swept until then stays swept, nothing referenced is lost. The caller keeps it from running
/// during a snapshot (the backup volume's lock).
GcReport collect_garbage(Storage& storage, GcOptions const& options);

/// Puts back what a killed collection had moved aside, unless a collection is running now.
/// Returns how many objects. For `berth serve` at start. Throws Error on I/O failure.
std::size_t recover_interrupted_gc(Storage& storage);

/// The last completed collection (not a dry run) and when it finished, as recorded in <root>/gc.json.
struct GcRecord {
  std::chrono::system_clock::time_point finished;
  GcReport report;  ///< without `removed` and `warnings`
};
std::optional<GcRecord> last_gc(Storage const& storage);

/// The report as one JSON object (counts, bytes, seconds; without the `removed` list).
std::string gc_summary_json(GcReport const& report);

}  // namespace berth::registry

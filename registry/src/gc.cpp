// Garbage collection (gc.hpp). The protocol that makes it safe online:
//  - Storage stamps (writes or touches) every link, revision and blob it creates or refers to, so
//    "fresh" (stamped within the grace period) means "in use by a push".
//  - Mark: per repository, the manifests to keep and the blobs they refer to.
//  - Sweep: each candidate is renamed into gc-trash/ (atomic), then checked again: a candidate
//    stamped or linked meanwhile is renamed back. Storage's writers check after their stamp that
//    what they refer to still exists, so every interleaving ends with either the push refused
//    loudly or the object kept.
//  - A run killed mid-sweep leaves its candidates in gc-trash/; the next run (or `berth serve`'s
//    start) puts them back, and they are collected properly next time.
#include "berth/registry/gc.hpp"

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "berth/core/file_lock.hpp"
#include "berth/core/log.hpp"
#include "file_io.hpp"

namespace berth::registry {
namespace fs = std::filesystem;

namespace {

using FileClock = fs::file_time_type::clock;
constexpr auto minimum_grace = std::chrono::minutes(1);

std::vector<std::string> list_names(fs::path const& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  return names;
}

std::optional<FileClock::time_point> modified(fs::path const& path) {
  std::error_code ec;
  auto time = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return time;
}

// gc-trash/ holds each candidate under Storage::gc_trash_path: the path relative to the root
// with '/' as '+' (a character no repository name, tag or digest contains).
class Trash {
public:
  explicit Trash(Storage const& storage) : storage_(storage), root_(storage.config().root), dir_(root_ / "gc-trash") {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw Error("cannot create " + dir_.string() + ": " + ec.message());
  }

  // Moves `path` aside; false when it is not there (any more).
  bool take(fs::path const& path) {
    auto entry = entry_for(path);
    if (::rename(path.c_str(), entry.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw Error("cannot move " + path.string() + " aside: " + std::strerror(errno));
  }

  fs::path entry_for(fs::path const& path) const { return storage_.gc_trash_path(path); }

  // Puts a taken object back where it was, unless something is there now (a push wrote it anew
  // or took it back itself: Storage pins by hard-linking the entry back).
  void put_back(fs::path const& path) {
    auto entry = entry_for(path);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (::link(entry.c_str(), path.c_str()) != 0 && errno != EEXIST)
      throw Error("cannot put " + path.string() + " back from " + entry.string() + ": " + std::strerror(errno));
    sync_directory(path.parent_path());
    fs::remove(entry, ec);
  }

  void discard(fs::path const& path) {
    std::error_code ec;
    fs::remove(entry_for(path), ec);
  }

  // What an interrupted run left: every entry goes back (it may have been stamped meanwhile).
  std::size_t put_back_leftovers() {
    std::size_t count = 0;
    for (auto const& name : list_names(dir_)) {
      auto relative = name;
      std::replace(relative.begin(), relative.end(), '+', '/');
      put_back(root_ / relative);
      ++count;
    }
    return count;
  }

private:
  Storage const& storage_;
  fs::path root_;
  fs::path dir_;
};

struct RepositoryMark {
  std::string name;
  std::vector<std::pair<Digest, std::vector<Digest>>> manifests_to_delete;  // with the blobs each needs
  std::vector<Digest> links_to_remove;
};

class Collector {
public:
  Collector(Storage& storage, GcOptions const& options)
      : storage_(storage),
        options_(options),
        threshold_(FileClock::now() - std::max<std::chrono::seconds>(options.grace_period, minimum_grace)),
        trash_(storage) {}

  GcReport run() {
    auto started = std::chrono::steady_clock::now();
    report_.dry_run = options_.dry_run;
    if (auto left = trash_.put_back_leftovers())
      log_->warn("gc put back {} objects an interrupted collection had moved aside", left);
    std::vector<RepositoryMark> marks;
    for (auto const& repository : storage_.repositories()) marks.push_back(mark(repository));
    report_.repositories = marks.size();
    for (auto const& repo_mark : marks) sweep_repository(repo_mark);
    sweep_blobs();
    expire_uploads();
    report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return std::move(report_);
  }

private:
  bool fresh(fs::path const& path) const {
    auto time = modified(path);
    return time && *time >= threshold_;
  }

  // Which manifests of `repository` stay, and which blobs they need (into live_).
  RepositoryMark mark(std::string const& repository) {
    RepositoryMark result;
    result.name = repository;
    auto manifests = storage_.manifests(repository);
    std::map<Digest, std::optional<Manifest>> parsed;
    bool whole_repository_kept = false;
    for (auto const& digest : manifests) {
      auto stored = storage_.get_manifest(repository, digest);
      try {
        if (!stored) throw ManifestError("its content is missing from the store");
        parsed[digest] = parse_manifest(stored->bytes, stored->media_type);
      } catch (ManifestError const& error) {
        // What it refers to is unknown: keep every blob of the repository rather than guess.
        report_.warnings.push_back(repository + "@" + digest.to_string() + ": " + error.what() + "; nothing in " +
                                   repository + " is collected (see `berth registry fsck`)");
        parsed[digest] = std::nullopt;
        whole_repository_kept = true;
      }
    }

    std::set<Digest> kept;
    if (!options_.delete_untagged || whole_repository_kept) {
      kept.insert(manifests.begin(), manifests.end());
    } else {
      std::vector<Digest> pending;
      auto keep = [&](Digest const& digest) {
        if (kept.insert(digest).second) pending.push_back(digest);
      };
      for (auto const& tag : storage_.tags(repository).value_or(std::vector<std::string>{}))
        if (auto digest = storage_.resolve_tag(repository, tag)) keep(*digest);
      for (auto const& digest : manifests)
        if (fresh(storage_.manifest_revision_path(repository, digest))) keep(digest);
      std::multimap<Digest, Digest> referrers_of;
      for (auto const& [subject, referrer] : storage_.referrer_entries(repository))
        referrers_of.emplace(subject, referrer);
      while (!pending.empty()) {
        auto digest = pending.back();
        pending.pop_back();
        if (auto found = parsed.find(digest); found != parsed.end() && found->second)
          for (auto const& child : found->second->manifests) keep(child.digest);
        for (auto [it, end] = referrers_of.equal_range(digest); it != end; ++it) keep(it->second);
      }
      for (auto const& [digest, manifest] : parsed)
        if (!kept.contains(digest)) result.manifests_to_delete.emplace_back(digest, manifest->required_blobs());
    }

    std::unordered_set<std::string> needed;
    for (auto const& digest : kept) {
      needed.insert(digest.to_string());
      auto found = parsed.find(digest);
      if (found == parsed.end() || !found->second) continue;
      for (auto const& blob : found->second->required_blobs()) needed.insert(blob.to_string());
    }
    report_.manifests_kept += kept.size();
    for (auto const& key : needed) live_.insert(key);

    for (auto const& digest : storage_.linked_blobs(repository)) {
      auto key = digest.to_string();
      if (whole_repository_kept || needed.contains(key) || fresh(storage_.blob_link_path(repository, digest)))
        live_.insert(key);  // a fresh link is a push in flight
      else
        result.links_to_remove.push_back(digest);
    }
    return result;
  }

  // Moves `path` aside and checks it again; true when it is gone for good.
  bool remove_unless_stamped(fs::path const& path) {
    if (fresh(path)) {  // stamped since the mark
      ++report_.revived;
      return false;
    }
    if (!trash_.take(path)) return false;
    if (fresh(trash_.entry_for(path))) {  // stamped just before we took it
      trash_.put_back(path);
      ++report_.revived;
      return false;
    }
    trash_.discard(path);
    return true;
  }

  void sweep_repository(RepositoryMark const& repo_mark) {
    auto const& repository = repo_mark.name;
    std::unordered_set<std::string> rescued;  // blobs of manifests a push took back (e.g. as an index's child)
    for (auto const& [digest, blobs] : repo_mark.manifests_to_delete) {
      auto line = "manifest " + repository + "@" + digest.to_string();
      if (options_.dry_run) {
        report_.removed.push_back(line);
        ++report_.manifests_deleted;
        continue;
      }
      auto stored = storage_.get_manifest(repository, digest);
      if (!remove_unless_stamped(storage_.manifest_revision_path(repository, digest))) {
        live_.insert(digest.to_string());
        for (auto const& blob : blobs) {
          rescued.insert(blob.to_string());
          live_.insert(blob.to_string());
        }
        continue;
      }
      // Its referrer entry goes with it (a tag cannot point at it: tags were read as keep roots,
      // and a new tag comes with a fresh revision, which this run would have kept).
      if (stored) {
        try {
          auto manifest = parse_manifest(stored->bytes, stored->media_type);
          if (manifest.subject) {
            auto const& subject = manifest.subject->digest;
            std::error_code ec;
            fs::remove(storage_.config().root / "repositories" / repository / "_referrers" /
                           std::string(subject.algorithm_name()) / subject.hex() /
                           (std::string(digest.algorithm_name()) + "-" + digest.hex()),
                       ec);
          }
        } catch (ManifestError const&) {
        }
      }
      report_.removed.push_back(line);
      ++report_.manifests_deleted;
      log_->info("gc deleted manifest repo={} digest={}", repository, digest.to_string());
    }
    for (auto const& digest : repo_mark.links_to_remove) {
      if (rescued.contains(digest.to_string())) continue;
      if (options_.dry_run || remove_unless_stamped(storage_.blob_link_path(repository, digest))) {
        report_.removed.push_back("link " + repository + " " + digest.to_string());
        ++report_.links_removed;
      } else {
        live_.insert(digest.to_string());
      }
    }
  }

  void sweep_blobs() {
    struct Candidate {
      Digest digest;
      std::uint64_t size;
    };
    std::vector<Candidate> candidates;
    for (auto const& digest : storage_.stored_blobs()) {
      auto path = storage_.blob_path(digest);
      std::error_code ec;
      auto size = fs::file_size(path, ec);
      if (ec) continue;
      if (live_.contains(digest.to_string()) || fresh(path)) {
        ++report_.blobs_kept;
        report_.bytes_kept += size;
      } else {
        candidates.push_back({digest, size});
      }
    }
    if (options_.dry_run) {
      for (auto const& candidate : candidates) note_blob_removed(candidate.digest, candidate.size);
      return;
    }

    std::unordered_map<std::string, std::size_t> taken;  // digest → index into candidates
    for (std::size_t idx = 0; idx < candidates.size(); ++idx)
      if (trash_.take(storage_.blob_path(candidates[idx].digest)))
        taken.emplace(candidates[idx].digest.to_string(), idx);

    // A push may have linked or referred to a candidate since the mark: it left a link or a
    // revision naming it, which this pass finds in the repositories as they are now.
    std::unordered_set<std::string> claimed;
    auto root = storage_.config().root / "repositories";
    for (auto const& repository : storage_.repositories())
      for (auto const& dir : {root / repository / "_layers", root / repository / "_manifests" / "revisions"})
        for (auto const& algorithm : list_names(dir))
          for (auto const& hex : list_names(dir / algorithm))
            if (auto key = algorithm + ":" + hex; taken.contains(key)) claimed.insert(key);

    for (auto const& [key, idx] : taken) {
      auto const& candidate = candidates[idx];
      auto path = storage_.blob_path(candidate.digest);
      if (claimed.contains(key) || fresh(trash_.entry_for(path))) {
        trash_.put_back(path);
        ++report_.revived;
        ++report_.blobs_kept;
        report_.bytes_kept += candidate.size;
        continue;
      }
      trash_.discard(path);
      note_blob_removed(candidate.digest, candidate.size);
      log_->info("gc deleted blob digest={} bytes={}", key, candidate.size);
    }
  }

  void note_blob_removed(Digest const& digest, std::uint64_t size) {
    report_.removed.push_back("blob " + digest.to_string() + " (" + std::to_string(size) + " bytes)");
    ++report_.blobs_deleted;
    report_.bytes_reclaimed += size;
  }

  // Unfinished uploads nobody has written to for Config::upload_expiry (berth serve also clears
  // them at start; a service that runs for months needs it here).
  void expire_uploads() {
    auto uploads = storage_.config().root / "uploads";
    auto expired_before = FileClock::now() - storage_.config().upload_expiry;
    for (auto const& id : list_names(uploads)) {
      auto data = uploads / id / "data";
      auto time = modified(data);
      if (!time || *time >= expired_before) continue;
      std::error_code ec;
      auto size = fs::file_size(data, ec);
      if (!options_.dry_run) {
        fs::remove_all(uploads / id, ec);
        if (ec) continue;
      }
      report_.removed.push_back("upload " + id + " (" + std::to_string(ec ? 0 : size) + " bytes)");
      ++report_.uploads_expired;
      report_.bytes_reclaimed += ec ? 0 : size;
    }
  }

  Storage& storage_;
  GcOptions options_;
  FileClock::time_point threshold_;
  Trash trash_;
  std::unordered_set<std::string> live_;  // digests some kept manifest or fresh link needs
  GcReport report_;
  std::shared_ptr<spdlog::logger> log_ = logger("registry");
};

nlohmann::json summary_of(GcReport const& report) {
  return {{"repositories", report.repositories},
          {"manifests_kept", report.manifests_kept},
          {"manifests_deleted", report.manifests_deleted},
          {"links_removed", report.links_removed},
          {"blobs_kept", report.blobs_kept},
          {"blobs_deleted", report.blobs_deleted},
          {"uploads_expired", report.uploads_expired},
          {"revived", report.revived},
          {"bytes_kept", report.bytes_kept},
          {"bytes_reclaimed", report.bytes_reclaimed},
          {"warnings", report.warnings.size()},
          {"seconds", report.seconds},
          {"dry_run", report.dry_run}};
}

}  // namespace

GcReport collect_garbage(Storage& storage, GcOptions const& options) {
  auto root = storage.config().root;
  FileLock lock(root / "gc.lock");
  if (!lock.locked())
    throw GcBusy("another garbage collection is running on " + root.string() +
                 "\nHINT: wait for it to finish (`berth status` shows the last run)");
  auto report = Collector(storage, options).run();
  if (!options.dry_run) {
    auto record = summary_of(report);
    record["finished"] =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    write_file_atomically(root / "gc.json", record.dump() + "\n", root / "tmp" / ("gc-" + std::to_string(::getpid())));
  }
  logger("registry")
      ->info(
          "gc finished dry_run={} manifests_deleted={} links_removed={} blobs_deleted={} bytes_reclaimed={} "
          "revived={} seconds={:.2f}",
          report.dry_run, report.manifests_deleted, report.links_removed, report.blobs_deleted, report.bytes_reclaimed,
          report.revived, report.seconds);
  return report;
}

std::size_t recover_interrupted_gc(Storage& storage) {
  auto root = storage.config().root;
  if (!fs::exists(root / "gc-trash")) return 0;
  FileLock lock(root / "gc.lock");
  if (!lock.locked()) return 0;  // a collection is running: its objects are in flight, not left over
  return Trash(storage).put_back_leftovers();
}

std::optional<GcRecord> last_gc(Storage const& storage) {
  auto text = read_small_file(storage.config().root / "gc.json");
  if (!text) return std::nullopt;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  GcRecord record;
  record.finished = std::chrono::system_clock::time_point(std::chrono::seconds(json.value("finished", 0LL)));
  auto& report = record.report;
  report.repositories = json.value("repositories", 0u);
  report.manifests_kept = json.value("manifests_kept", 0u);
  report.manifests_deleted = json.value("manifests_deleted", 0u);
  report.links_removed = json.value("links_removed", 0u);
  report.blobs_kept = json.value("blobs_kept", 0u);
  report.blobs_deleted = json.value("blobs_deleted", 0u);
  report.uploads_expired = json.value("uploads_expired", 0u);
  report.revived = json.value("revived", 0u);
  report.bytes_kept = json.value("bytes_kept", std::uint64_t{0});
  report.bytes_reclaimed = json.value("bytes_reclaimed", std::uint64_t{0});
  report.seconds = json.value("seconds", 0.0);
  return record;
}

std::string gc_summary_json(GcReport const& report) {
  return summary_of(report).dump();
}

}  // namespace berth::registry

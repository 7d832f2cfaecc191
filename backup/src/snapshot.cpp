// Taking and listing snapshots. Order matters for consistency while the service runs: the
// registry metadata is archived before blobs are copied, and the registry commits a blob before
// any metadata refers to it, so every blob the archived metadata names is in the pool.
#include "berth/backup/snapshot.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <set>

#include <nlohmann/json.hpp>

#include "base_backup.hpp"
#include "berth/core/file_lock.hpp"
#include "berth/core/log.hpp"
#include "berth/core/version.hpp"
#include "berth/registry/digest.hpp"
#include "io.hpp"
#include "row_counts.hpp"
#include "snapshot_layout.hpp"

namespace berth::backup {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

std::string format_time(Clock::time_point when, char const* format) {
  std::time_t const seconds = Clock::to_time_t(when);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, format, &utc);
  return text;
}

// "2026-11-27T15:30:00.123456Z"
std::string format_time_precise(Clock::time_point when) {
  auto const micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count() % 1000000;
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%06lld", static_cast<long long>(micros));
  return format_time(when, "%Y-%m-%dT%H:%M:%S") + fraction + "Z";
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Writes files into a tar + zstd archive, recording each entry for the manifest.
class ArchiveWriter {
public:
  explicit ArchiveWriter(fs::path const& file) : archive_(archive_write_new()), file_(file) {
    if (archive_write_add_filter_zstd(archive_) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_open_filename(archive_, file.c_str()) != ARCHIVE_OK)
      fail("cannot create");
  }
  ~ArchiveWriter() { archive_write_free(archive_); }
  ArchiveWriter(ArchiveWriter const&) = delete;
  ArchiveWriter& operator=(ArchiveWriter const&) = delete;

  // Adds `root` recursively under the name `prefix`, leaving out `excluded` (names relative to root).
  void add_tree(fs::path const& root, std::string const& prefix, std::set<std::string> const& excluded) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
    if (ec) return;  // absent: nothing to archive
    for (; it != end; it.increment(ec)) {
      if (ec) {
        logger("backup")->warn("cannot read {}: {}", root.string(), ec.message());
        ec.clear();
        continue;
      }
      auto const relative = it->path().lexically_relative(root).generic_string();
      if (excluded.count(relative)) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      add(it->path(), prefix.empty() ? relative : prefix + "/" + relative);
    }
  }

  // Adds one file, folder or symlink; a file that vanished meanwhile is left out.
  void add(fs::path const& source, std::string const& name) {
    struct stat info {};
    if (::lstat(source.c_str(), &info) != 0) return;
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_perm(entry, info.st_mode & 07777);
    archive_entry_set_mtime(entry, info.st_mtime, 0);
    json record = {{"path", name}, {"mode", info.st_mode & 07777}};
    if (S_ISDIR(info.st_mode)) {
      archive_entry_set_filetype(entry, AE_IFDIR);
      record["type"] = "dir";
      write_header(entry);
    } else if (S_ISLNK(info.st_mode)) {
      archive_entry_set_filetype(entry, AE_IFLNK);
      auto const target = fs::read_symlink(source).string();
      archive_entry_set_symlink(entry, target.c_str());
      record["type"] = "symlink";
      record["target"] = target;
      write_header(entry);
    } else if (S_ISREG(info.st_mode)) {
      // Files are replaced by rename, never rewritten: the open descriptor keeps one version.
      int const fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        archive_entry_free(entry);
        if (errno == ENOENT) return;
        throw Error(detail::errno_message("cannot open " + source.string()));
      }
      struct stat opened {};
      ::fstat(fd, &opened);
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, opened.st_size);
      write_header(entry);
      registry::Hasher hasher;
      std::uint64_t written = 0;
      std::array<char, 1 << 16> buffer{};
      while (written < static_cast<std::uint64_t>(opened.st_size)) {
        auto const n =
            ::read(fd, buffer.data(),
                   std::min<std::uint64_t>(buffer.size(), static_cast<std::uint64_t>(opened.st_size) - written));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          ::close(fd);
          archive_entry_free(entry);
          throw Error("cannot read " + source.string() + ": it shrank while being archived");
        }
        if (archive_write_data(archive_, buffer.data(), static_cast<std::size_t>(n)) < 0) {
          ::close(fd);
          archive_entry_free(entry);
          fail("cannot write");
        }
        hasher.update({buffer.data(), static_cast<std::size_t>(n)});
        written += static_cast<std::uint64_t>(n);
      }
      ::close(fd);
      record["type"] = "file";
      record["size"] = written;
      record["sha256"] = hasher.finish().hex();
    } else {
      archive_entry_free(entry);
      return;  // sockets, fifos: nothing to keep
    }
    archive_entry_free(entry);
    entries_.push_back(std::move(record));
  }

  json finish() {
    if (archive_write_close(archive_) != ARCHIVE_OK) fail("cannot finish");
    return std::move(entries_);
  }

private:
  void write_header(archive_entry* entry) {
    if (archive_write_header(archive_, entry) != ARCHIVE_OK) {
      archive_entry_free(entry);
      fail("cannot write");
    }
  }
  [[noreturn]] void fail(std::string const& what) {
    throw Error(what + " archive " + file_.string() + ": " +
                (archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error"));
  }

  archive* archive_;
  fs::path file_;
  json entries_ = json::array();
};

// Copies a blob that is not in the pool yet: to a temporary name, hashed as it is written and
// fsync'ed, then renamed. Hashing the very bytes written checks what a re-read would (it would
// come from the page cache, not the disk; `backup verify` reads the disk). The folder's fsync is
// left to the caller, once per folder: until then a crash loses only the name, and no snapshot
// that names the blob is published before it. Returns the bytes added (0: the source vanished,
// deleted by garbage collection meanwhile).
std::uint64_t copy_to_pool(fs::path const& source, fs::path const& pooled, std::string const& algorithm,
                           std::string const& hex, detail::VolumeOwner const& owner) {
  auto const folder = pooled.parent_path();
  if (fs::create_directories(folder)) {
    owner.give(folder.parent_path());
    owner.give(folder);
  }
  // Checked first: some filesystems report a full disk mid-copy as an I/O error.
  std::error_code size_error;
  auto const needed = fs::file_size(source, size_error);
  struct statvfs space {};
  if (!size_error && ::statvfs(folder.c_str(), &space) == 0 &&
      static_cast<std::uint64_t>(space.f_bavail) * space.f_frsize < needed)
    throw Error("cannot copy blob " + algorithm + ":" + hex + " (" + std::to_string(needed) + " bytes) into " +
                folder.string() + ": " + std::strerror(ENOSPC));
  auto const staging = folder / (".tmp-" + hex);
  std::optional<detail::Hashed> copied;
  try {
    copied = detail::copy_hashing(source, staging, algorithm == "sha512", true);
  } catch (Error const& e) {
    std::error_code ignored;
    fs::remove(staging, ignored);  // half a copy only takes space
    if (!fs::exists(source)) return 0;
    throw Error("cannot copy blob " + algorithm + ":" + hex + " to " + staging.string() + ": " + e.what());
  }
  if (!copied) return 0;
  if (copied->hex != hex) {
    fs::remove(staging);
    throw Error("blob " + algorithm + ":" + hex + " copied from " + source.string() + " hashes to " + copied->hex +
                "\nHINT: run `berth registry fsck` to check the registry's storage");
  }
  owner.give(staging);
  fs::rename(staging, pooled);
  return copied->size;
}

// Removes what a killed run left: .partial-* folders and pool staging files.
void remove_leftovers(fs::path const& volume) {
  auto const log = logger("backup");
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(volume / "snapshots", ec)) {
    if (entry.path().filename().string().rfind(".partial-", 0) == 0) {
      log->info("removing unfinished snapshot {}", entry.path().string());
      fs::remove_all(entry.path());
    }
  }
  for (auto it = fs::recursive_directory_iterator(volume / "pool", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().rfind(".tmp-", 0) == 0) fs::remove(it->path(), ec);
  }
}

// Runs a query job, turning libpqxx's exceptions into an Error that says what was being done.
template <class Job>
auto run_query(std::string const& what, Job job) {
  try {
    return job();
  } catch (Error const&) {
    throw;
  } catch (std::exception const& e) {
    std::string message = e.what();
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error("cannot " + what + " for the snapshot: " + message +
                "\nHINT: check that PostgreSQL is running (`berth status`)");
  }
}

SnapshotInfo info_of(json const& manifest) {
  SnapshotInfo info;
  info.id = manifest.at("id");
  info.started = manifest.at("started");
  info.finished = manifest.at("finished");
  info.duration_seconds = manifest.at("durations").at("total");
  for (auto const& [part, seconds] : manifest.at("durations").items())
    if (part != "total") info.part_seconds[part] = seconds.get<double>();
  info.bytes_added = manifest.at("bytes_added");
  info.bytes_total = manifest.at("bytes_total");
  info.blobs = manifest.at("blobs").size();
  info.blobs_copied = manifest.at("blobs_copied");
  info.has_database = manifest.contains("postgres");
  return info;
}

}  // namespace

namespace detail {

fs::path pool_path(fs::path const& volume, std::string const& digest) {
  auto const colon = digest.find(':');
  auto const hex = digest.substr(colon + 1);
  return volume / "pool" / digest.substr(0, colon) / hex.substr(0, 2) / hex;
}

json read_manifest(Config const& config, std::string const& id) {
  auto const file = config.volume / "snapshots" / id / "manifest.json";
  if (id.empty() || id.find('/') != std::string::npos || id[0] == '.' || !fs::exists(file))
    throw Error("snapshot " + id + " does not exist on " + config.volume.string() +
                "\nHINT: `berth backup list` shows the snapshots");
  try {
    return json::parse(read_text(file));
  } catch (json::exception const& e) {
    throw Error("cannot read " + file.string() + ": " + e.what());
  }
}

}  // namespace detail

namespace {

SnapshotInfo snapshot_onto_volume(Config const& config, std::optional<DatabaseSource> const& database,
                                  ProgressFunction const& progress) {
  auto const tell = [&](Progress const& state) {
    if (progress) progress(state);
  };
  auto const log = logger("backup");
  auto const began = Clock::now();
  auto const volume = config.volume;
  fs::create_directories(volume / "snapshots");
  fs::create_directories(volume / "pool");
  FileLock lock(volume / ".lock");
  if (!lock.locked())
    throw Busy("another backup job holds " + (volume / ".lock").string() +
               "\nHINT: wait for it to finish (`berth backup list` shows finished snapshots)");
  // Run as root on a volume the service user owns, what this run creates goes to that user.
  detail::VolumeOwner const owner(volume);
  for (auto const* name : {"snapshots", "pool", ".lock"}) owner.give(volume / name);
  remove_leftovers(volume);

  // The id is the start time; a second run in the same second takes the next free second.
  auto stamp = began;
  std::string id = format_time(stamp, "%Y%m%dT%H%M%SZ");
  while (fs::exists(volume / "snapshots" / id)) {
    stamp += std::chrono::seconds(1);
    id = format_time(stamp, "%Y%m%dT%H%M%SZ");
  }
  auto const work = volume / "snapshots" / (".partial-" + id);
  fs::create_directories(work);
  // A failed run gives its space back at once (the pool keeps the blobs it verified); a killed
  // one is cleaned by the next run.
  struct RemovedUnlessPublished {
    fs::path work;
    bool published = false;
    ~RemovedUnlessPublished() {
      std::error_code ignored;
      if (!published) fs::remove_all(work, ignored);
    }
  } unfinished{work};
  log->info("snapshot started id={} primary={}", id, config.primary.string());

  json manifest = {{"format", 1},
                   {"id", id},
                   {"berth_version", berth::version},
                   {"started", format_time(began, "%Y-%m-%dT%H:%M:%SZ")}};
  json durations = json::object();

  // Everything but the server's live state, the cluster (base backup below), blobs (the pool),
  // upload sessions in flight, and the backup volume itself when it lies inside the primary.
  std::set<std::string> excluded = {"run", "postgres", "registry/blobs", "registry/uploads", "registry/tmp"};
  auto const primary = fs::weakly_canonical(config.primary);
  auto const inside = fs::weakly_canonical(volume).lexically_relative(primary).generic_string();
  if (!inside.empty() && inside != "." && inside.rfind("..", 0) != 0) excluded.insert(inside);
  // The base backup runs meanwhile: pg_basebackup is a process of its own that compresses while
  // this one archives files and copies blobs, so a snapshot takes about as long as the longer of
  // the two. The counts follow the base backup at once, in the same thread (row_counts.hpp says
  // why). Should the rest fail, leaving the scope waits for this part before the folder goes.
  struct DatabasePart {
    json postgres;
    double backup_seconds = 0;
    double counts_seconds = 0;
  };
  std::future<DatabasePart> database_part;
  if (database) {
    database_part = std::async(std::launch::async, [&database, &work] {
      DatabasePart part;
      auto const started = Clock::now();
      auto const xmin_before = run_query("read the oldest running transaction", [&] {
        return detail::oldest_running_xid(detail::connection_string(*database, "postgres"));
      });
      auto const base = detail::take_base_backup(*database, work);
      part.postgres = {{"version", base.version},
                       {"file", base.file},
                       {"start_lsn", base.start_lsn},
                       {"stop_lsn", base.stop_lsn},
                       {"timeline", base.timeline},
                       {"start_wal", base.start_wal},
                       // the earliest moment a point-in-time recovery from this snapshot can reach
                       {"stop_time", format_time_precise(Clock::now())}};
      auto const counted = Clock::now();
      part.backup_seconds = seconds_between(started, counted);
      part.postgres["counts"] =
          run_query("count the rows of every table", [&] { return detail::count_rows(*database, xmin_before); });
      part.counts_seconds = seconds_between(counted, Clock::now());
      return part;
    });
  }

  auto phase = Clock::now();
  tell({"files", 0, 0, 0});
  ArchiveWriter writer(work / "files.tar.zst");
  writer.add_tree(primary, "", excluded);
  for (auto const& extra : config.extra) {
    auto const absolute = fs::weakly_canonical(extra);
    auto const relative = absolute.lexically_relative(primary).generic_string();
    if (!relative.empty() && relative.rfind("..", 0) != 0) continue;  // already archived with the primary volume
    auto const name = "extra" + absolute.generic_string();
    writer.add(absolute, name);
    if (fs::is_directory(absolute)) writer.add_tree(absolute, name, {});
  }
  manifest["entries"] = writer.finish();
  detail::fsync_path(work / "files.tar.zst");
  durations["files"] = seconds_between(phase, Clock::now());

  // Blobs after the metadata: the registry commits a blob before anything refers to it.
  phase = Clock::now();
  auto const blob_root = primary / "registry" / "blobs";
  struct Found {
    std::string digest, algorithm, hex;
    fs::path source, pooled;
    std::uint64_t pooled_size = 0;  ///< its size in the pool, once there
    bool in_pool = false;
    bool copied = false;
  };
  // Listed first, so that progress knows the total. A blob already in the pool is not read
  // again: pool names are digests, and a name appears only after its copy was checked.
  std::vector<Found> found;
  std::vector<std::size_t> missing;  // indexes into found
  std::error_code ec;
  for (auto const& algorithm : fs::directory_iterator(blob_root, ec)) {
    for (auto const& prefix : fs::directory_iterator(algorithm.path())) {
      for (auto const& blob : fs::directory_iterator(prefix.path())) {
        auto const hex = blob.path().filename().string();
        if (hex.size() < 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
        Found item;
        item.algorithm = algorithm.path().filename().string();
        item.hex = hex;
        item.digest = item.algorithm + ":" + hex;
        item.source = blob.path();
        item.pooled = detail::pool_path(volume, item.digest);
        struct stat pooled_info {};
        if (::stat(item.pooled.c_str(), &pooled_info) == 0) {
          item.in_pool = true;
          item.pooled_size = static_cast<std::uint64_t>(pooled_info.st_size);
        } else {
          missing.push_back(found.size());
        }
        found.push_back(std::move(item));
      }
    }
  }
  Progress blob_progress{"blobs", found.size() - missing.size(), found.size(), 0};
  tell(blob_progress);
  std::atomic<std::size_t> blobs_done{blob_progress.done};
  std::atomic<std::uint64_t> bytes_copied{0};
  detail::run_in_parallel(
      missing.size(),
      [&](std::size_t index) {
        auto& blob = found[missing[index]];
        auto const added = copy_to_pool(blob.source, blob.pooled, blob.algorithm, blob.hex, owner);
        blob.copied = blob.in_pool = added > 0 || fs::exists(blob.pooled);
        blob.pooled_size = added;
        bytes_copied += added;
        ++blobs_done;
      },
      [&] {
        blob_progress.done = blobs_done;
        blob_progress.bytes = bytes_copied;
        tell(blob_progress);
      });
  // The new names, durable before any manifest refers to them: one fsync per folder.
  std::set<fs::path> folders;
  for (auto const index : missing) {
    if (!found[index].copied) continue;
    folders.insert(found[index].pooled.parent_path());                // the blob's name
    folders.insert(found[index].pooled.parent_path().parent_path());  // its folder's, when new
  }
  if (!folders.empty()) folders.insert(volume / "pool");
  for (auto const& folder : folders) detail::fsync_path(folder);

  json blobs = json::array();
  std::uint64_t bytes_added = 0;
  std::uint64_t bytes_total = 0;
  std::size_t copied_count = 0;
  for (auto const& blob : found) {
    if (!blob.in_pool) continue;  // vanished before it was copied
    if (blob.copied && blob.pooled_size > 0) {
      ++copied_count;
      bytes_added += blob.pooled_size;
    }
    bytes_total += blob.pooled_size;
    blobs.push_back({{"digest", blob.digest}, {"size", blob.pooled_size}});
  }
  manifest["blobs"] = std::move(blobs);
  manifest["blobs_copied"] = copied_count;
  durations["blobs"] = seconds_between(phase, Clock::now());

  if (database) {
    tell({"postgres", 0, 0, 0});
    auto part = database_part.get();
    manifest["postgres"] = std::move(part.postgres);
    durations["postgres"] = part.backup_seconds;
    durations["row_counts"] = part.counts_seconds;
  }

  json files = json::array();
  for (std::string const name : {"files.tar.zst", "postgres.tar.zst", "postgres.tar.gz"}) {
    if (!fs::exists(work / name)) continue;
    auto const hashed = detail::hash_file(work / name);
    files.push_back({{"path", name}, {"size", hashed.size}, {"sha256", hashed.hex}});
    bytes_added += hashed.size;
    bytes_total += hashed.size;
  }
  manifest["files"] = std::move(files);
  manifest["bytes_added"] = bytes_added;
  manifest["bytes_total"] = bytes_total;
  auto const finished = Clock::now();
  durations["total"] = seconds_between(began, finished);
  manifest["durations"] = durations;
  manifest["finished"] = format_time(finished, "%Y-%m-%dT%H:%M:%SZ");

  // Publish: the manifest last inside the working folder, then the folder under its id.
  detail::write_file_durably(work / "manifest.json", manifest.dump(2) + "\n");
  owner.give_tree(work);
  fs::rename(work, volume / "snapshots" / id);
  unfinished.published = true;
  detail::fsync_path(volume / "snapshots");
  auto const info = info_of(manifest);
  log->info("snapshot done id={} blobs={} blobs_copied={} bytes_added={} bytes_total={} seconds={:.1f}", id, info.blobs,
            info.blobs_copied, info.bytes_added, info.bytes_total, info.duration_seconds);
  return info;
}

}  // namespace

SnapshotInfo take_snapshot(Config const& config, std::optional<DatabaseSource> const& database,
                           ProgressFunction const& progress) {
  try {
    return snapshot_onto_volume(config, database, progress);
  } catch (std::exception const& error) {
    // A full backup volume is the likeliest failure of a nightly run: say so plainly.
    std::string const message = error.what();
    if (message.find(std::strerror(ENOSPC)) == std::string::npos) throw;
    throw Error("cannot take a snapshot: the backup volume " + config.volume.string() +
                " is full: " + message.substr(0, message.find('\n')) +
                "\nHINT: free space on it (`berth backup prune`, or lower backup.keep_*), or move volumes.backup to a "
                "larger disk; the primary volume was not changed");
  }
}

std::vector<SnapshotInfo> list_snapshots(Config const& config) {
  std::vector<SnapshotInfo> result;
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(config.volume / "snapshots", ec)) {
    auto const name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !fs::exists(entry.path() / "manifest.json")) continue;
    result.push_back(info_of(detail::read_manifest(config, name)));
  }
  std::sort(result.begin(), result.end(), [](auto const& a, auto const& b) { return a.id < b.id; });
  return result;
}

}  // namespace berth::backup

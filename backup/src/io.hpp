// File helpers of the backup module: durable writes, hashing, the volume lock. Private.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

namespace berth::backup::detail {

struct Hashed {
  std::uint64_t size = 0;
  std::string hex;  ///< lowercase hex digest
};

/// Size and digest (sha256 unless `sha512`) of the file's bytes. Throws Error when it cannot be read.
Hashed hash_file(std::filesystem::path const& path, bool sha512 = false);

/// Copies `source` to `destination` (created or truncated, with the source's mode) in large
/// blocks, hashing the bytes as they are written, and fsyncs the copy when `durable`. Returns
/// nullopt when `source` does not exist (deleted meanwhile). Throws Error on any other failure.
std::optional<Hashed> copy_hashing(std::filesystem::path const& source, std::filesystem::path const& destination,
                                   bool sha512, bool durable);

/// Threads for copying and hashing: sha256 keeps one core busy per stream, and two streams
/// already saturate a disk; more would only compete with the service.
inline constexpr unsigned copy_threads = 2;

/// Calls `work(index)` for every index below `count` on up to copy_threads threads, the caller's
/// among them, each taking the next index as it finishes one. `after_each` (may be empty) runs
/// on the caller's thread after each item it did, for progress. The first exception stops the
/// others taking items and is rethrown once all have stopped.
void run_in_parallel(std::size_t count, std::function<void(std::size_t)> const& work,
                     std::function<void()> const& after_each = {});

/// fsync of a file or folder. Throws Error.
void fsync_path(std::filesystem::path const& path);

/// Writes `text` to path.tmp, fsyncs it, renames it to `path` and fsyncs the folder. Throws Error.
void write_file_durably(std::filesystem::path const& path, std::string const& text);

std::string read_text(std::filesystem::path const& path);

/// A secret file's content without its trailing newline (a password file). Throws Error.
std::string read_secret(std::filesystem::path const& path);

/// "what: strerror(errno)".
std::string errno_message(std::string const& what);

/// Who owns the backup volume's folder. A job run by root (a root shell, a drill by hand) gives
/// what it creates on the volume to that owner, so that the service user can still write there
/// later; otherwise it changes nothing.
class VolumeOwner {
public:
  /// Reads the folder's owner. Throws Error when it cannot be read.
  explicit VolumeOwner(std::filesystem::path const& volume);
  /// Gives `path` (not followed when a symlink) to the owner when we are root and the owner is
  /// not. Throws Error when that fails.
  void give(std::filesystem::path const& path) const;
  /// give() for `path` and everything under it.
  void give_tree(std::filesystem::path const& path) const;

private:
  bool active_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace berth::backup::detail

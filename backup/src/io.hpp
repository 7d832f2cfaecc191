// File helpers of the backup module: durable writes, hashing, the volume lock. Private.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace berth::backup::detail {

struct Hashed {
  std::uint64_t size = 0;
  std::string hex;  ///< lowercase hex digest
};

/// Size and digest (sha256 unless `sha512`) of the file's bytes. Throws Error when it cannot be read.
Hashed hash_file(std::filesystem::path const& path, bool sha512 = false);

/// fsync of a file or folder. Throws Error.
void fsync_path(std::filesystem::path const& path);

/// Writes `text` to path.tmp, fsyncs it, renames it to `path` and fsyncs the folder. Throws Error.
void write_file_durably(std::filesystem::path const& path, std::string const& text);

std::string read_text(std::filesystem::path const& path);

/// A secret file's content without its trailing newline (a password file). Throws Error.
std::string read_secret(std::filesystem::path const& path);

/// "what: strerror(errno)".
std::string errno_message(std::string const& what);

/// An exclusive flock on a file, held for the object's life.
class FileLock {
public:
  /// Takes the lock without waiting; `locked()` says whether it was free. Throws Error when the
  /// file cannot be opened.
  explicit FileLock(std::filesystem::path const& file);
  ~FileLock();
  FileLock(FileLock const&) = delete;
  FileLock& operator=(FileLock const&) = delete;
  bool locked() const { return locked_; }

private:
  int fd_ = -1;
  bool locked_ = false;
};

}  // namespace berth::backup::detail

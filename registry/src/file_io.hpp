// Small POSIX file helpers with error messages that name the file: the registry's storage is
// built from exactly these steps (write, fsync, rename, fsync the directory).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace berth::registry {

/// An open file descriptor, closed on destruction.
class File {
public:
  File() = default;
  /// Opens `path` with open(2) `flags`; throws berth::Error naming the file.
  File(std::filesystem::path path, int flags, unsigned mode = 0640);
  ~File();
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  std::filesystem::path const& path() const { return path_; }
  /// Writes everything (retrying short writes); throws berth::Error, e.g. on a full disk.
  void write_all(std::span<char const> bytes);
  /// Reads up to buffer.size() bytes at `offset`; returns 0 at end of file.
  std::size_t read_at(std::span<char> buffer, std::uint64_t offset) const;
  std::uint64_t size() const;
  void truncate(std::uint64_t size);
  void sync();
  void close();

private:
  int fd_ = -1;
  std::filesystem::path path_;
};

/// Throws the error for a failed file operation: StorageFull when the volume is full (ENOSPC,
/// EDQUOT, EFBIG), else berth::Error; both name the file.
[[noreturn]] void throw_file_error(std::string const& what, std::filesystem::path const& path, int error);

/// Makes a rename or creation in `directory` durable.
void sync_directory(std::filesystem::path const& directory);

/// The whole content of a small file, or nullopt if it does not exist. Throws on other errors.
std::optional<std::string> read_small_file(std::filesystem::path const& path);

/// Replaces `target` with `content` atomically and durably: write to `staging` (a file name in
/// a staging directory on the same filesystem), fsync, rename over `target`, fsync its directory.
/// Creates missing parent directories of `target`.
void write_file_atomically(std::filesystem::path const& target, std::string_view content,
                           std::filesystem::path const& staging);

}  // namespace berth::registry

#include "file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <utility>

#include "berth/core/error.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {
namespace {

[[noreturn]] void fail(std::string const& what, std::filesystem::path const& path, int error = errno) {
  throw_file_error(what, path, error);
}

}  // namespace

void throw_file_error(std::string const& what, std::filesystem::path const& path, int error) {
  std::string message = "cannot " + what + " " + path.string() + ": " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT || error == EFBIG)
    throw StorageFull(message + "\nHINT: the primary volume is full; free space or run garbage collection");
  throw Error(message);
}

File::File(std::filesystem::path path, int flags, unsigned mode) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), flags | O_CLOEXEC, mode);
  if (fd_ < 0) fail("open", path_);
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File::File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

void File::write_all(std::span<char const> bytes) {
  while (!bytes.empty()) {
    auto written = ::write(fd_, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) fail("write", path_);
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
}

std::size_t File::read_at(std::span<char> buffer, std::uint64_t offset) const {
  for (;;) {
    auto got = ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("read", path_);
    return static_cast<std::size_t>(got);
  }
}

std::uint64_t File::size() const {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) fail("stat", path_);
  return static_cast<std::uint64_t>(info.st_size);
}

void File::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) fail("truncate", path_);
}

void File::sync() {
  if (::fsync(fd_) != 0) fail("fsync", path_);
}

void File::close() {
  if (fd_ >= 0 && ::close(std::exchange(fd_, -1)) != 0) fail("close", path_);
}

void sync_directory(std::filesystem::path const& directory) {
  File dir(directory, O_RDONLY | O_DIRECTORY);
  dir.sync();
}

std::optional<std::string> read_small_file(std::filesystem::path const& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail("open", path);
  }
  std::string content;
  char buffer[8192];
  for (;;) {
    auto got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int error = errno;
      ::close(fd);
      fail("read", path, error);
    }
    if (got == 0) break;
    content.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return content;
}

void write_file_atomically(std::filesystem::path const& target, std::string_view content,
                           std::filesystem::path const& staging) {
  {
    File file(staging, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL);
    file.write_all(content);
    file.sync();
    file.close();
  }
  auto parent = target.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    ::unlink(staging.c_str());
    fail("create directory", parent, ec.value());
  }
  if (::rename(staging.c_str(), target.c_str()) != 0) {
    int error = errno;
    ::unlink(staging.c_str());
    fail("rename into place", target, error);
  }
  sync_directory(parent);
}

}  // namespace berth::registry

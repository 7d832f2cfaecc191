#include "io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/registry/digest.hpp"

namespace berth::backup::detail {

namespace fs = std::filesystem;

std::string errno_message(std::string const& what) {
  return what + ": " + std::strerror(errno);
}

namespace {

// Large blocks: fewer system calls, and the hash runs over long stretches of memory.
constexpr std::size_t block_bytes = 1 << 20;

// Closes a descriptor however the scope ends.
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

registry::Hasher hasher_for(bool sha512) {
  return registry::Hasher(sha512 ? registry::DigestAlgorithm::sha512 : registry::DigestAlgorithm::sha256);
}

}  // namespace

Hashed hash_file(fs::path const& path, bool sha512) {
  int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(errno_message("cannot open " + path.string()));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto hasher = hasher_for(sha512);
  Hashed result;
  std::vector<char> buffer(block_bytes);
  for (;;) {
    auto const n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto const message = errno_message("cannot read " + path.string());
      ::close(fd);
      throw Error(message);
    }
    if (n == 0) break;
    hasher.update({buffer.data(), static_cast<std::size_t>(n)});
    result.size += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  result.hex = hasher.finish().hex();
  return result;
}

void fsync_path(fs::path const& path) {
  int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(errno_message("cannot open " + path.string()));
  int const rc = ::fsync(fd);
  auto const message = errno_message("cannot fsync " + path.string());
  ::close(fd);
  if (rc != 0) throw Error(message);
}

void write_file_durably(fs::path const& path, std::string const& text) {
  auto const tmp = fs::path(path.string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write " + tmp.string());
  }
  fsync_path(tmp);
  fs::rename(tmp, path);
  fsync_path(path.parent_path());
}

std::string read_text(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(errno_message("cannot read " + path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string read_secret(fs::path const& path) {
  auto text = read_text(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

VolumeOwner::VolumeOwner(fs::path const& volume) {
  struct stat info {};
  if (::stat(volume.c_str(), &info) != 0) throw Error(errno_message("cannot read the owner of " + volume.string()));
  active_ = ::geteuid() == 0 && info.st_uid != 0;
  uid_ = info.st_uid;
  gid_ = info.st_gid;
}

void VolumeOwner::give(fs::path const& path) const {
  if (!active_) return;
  if (::lchown(path.c_str(), uid_, gid_) != 0)
    throw Error(errno_message("cannot give " + path.string() + " to the owner of the backup volume (uid " +
                              std::to_string(uid_) + ")"));
}

void VolumeOwner::give_tree(fs::path const& path) const {
  if (!active_) return;
  give(path);
  if (!fs::is_directory(fs::symlink_status(path))) return;
  for (auto const& entry : fs::recursive_directory_iterator(path)) give(entry.path());
}

std::optional<Hashed> copy_hashing(fs::path const& source, fs::path const& destination, bool sha512, bool durable) {
  Descriptor in{::open(source.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(errno_message("cannot open " + source.string()));
  }
  struct stat info {};
  if (::fstat(in.fd, &info) != 0) throw Error(errno_message("cannot read " + source.string()));
  ::posix_fadvise(in.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Descriptor out{::open(destination.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, info.st_mode & 07777)};
  if (out.fd < 0) throw Error(errno_message("cannot create " + destination.string()));
  if (::fchmod(out.fd, info.st_mode & 07777) != 0)  // an existing file, or the umask, gave another mode
    throw Error(errno_message("cannot set the mode of " + destination.string()));
  auto hasher = hasher_for(sha512);
  Hashed result;
  std::vector<char> buffer(block_bytes);
  for (;;) {
    auto const n = ::read(in.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(errno_message("cannot read " + source.string()));
    if (n == 0) break;
    hasher.update({buffer.data(), static_cast<std::size_t>(n)});
    for (std::size_t written = 0; written < static_cast<std::size_t>(n);) {
      auto const w = ::write(out.fd, buffer.data() + written, static_cast<std::size_t>(n) - written);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw Error(errno_message("cannot write " + destination.string()));
      written += static_cast<std::size_t>(w);
    }
    result.size += static_cast<std::uint64_t>(n);
  }
  if (durable && ::fsync(out.fd) != 0) throw Error(errno_message("cannot fsync " + destination.string()));
  if (::close(out.fd) != 0) {
    out.fd = -1;
    throw Error(errno_message("cannot write " + destination.string()));
  }
  out.fd = -1;
  result.hex = hasher.finish().hex();
  return result;
}

void run_in_parallel(std::size_t count, std::function<void(std::size_t)> const& work,
                     std::function<void()> const& after_each) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto const drain = [&](bool caller) {
    for (std::size_t index; !failed && (index = next++) < count;) {
      try {
        work(index);
        if (caller && after_each) after_each();
      } catch (...) {
        std::lock_guard guard(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (unsigned thread_idx = 1; thread_idx < copy_threads && thread_idx < count; ++thread_idx)
    helpers.emplace_back(drain, false);
  drain(true);
  for (auto& helper : helpers) helper.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace berth::backup::detail

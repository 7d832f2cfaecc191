#include "io.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "berth/core/error.hpp"
#include "berth/registry/digest.hpp"

namespace berth::backup::detail {

namespace fs = std::filesystem;

std::string errno_message(std::string const& what) {
  return what + ": " + std::strerror(errno);
}

Hashed hash_file(fs::path const& path, bool sha512) {
  int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(errno_message("cannot open " + path.string()));
  registry::Hasher hasher(sha512 ? registry::DigestAlgorithm::sha512 : registry::DigestAlgorithm::sha256);
  Hashed result;
  std::array<char, 1 << 16> buffer{};
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

FileLock::FileLock(fs::path const& file) {
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error(errno_message("cannot open " + file.string()));
  locked_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace berth::backup::detail

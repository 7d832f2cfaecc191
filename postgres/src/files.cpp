#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "berth/core/error.hpp"

namespace berth::postgres::detail {

namespace fs = std::filesystem;

std::string read_trimmed(fs::path const& file) {
  std::ifstream in(file);
  if (!in) throw Error("cannot read " + file.string() + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  auto value = text.str();
  value.erase(value.find_last_not_of(" \t\r\n") + 1);
  return value;
}

void fsync_path(fs::path const& path) {
  int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_private_file(fs::path const& file, std::string const& text, OsUser const* owner) {
  auto const temp = fs::path(file.string() + ".tmp");
  int const fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot write " + temp.string() + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int const saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(temp.c_str());
    throw Error("cannot write " + temp.string() + ": " + std::strerror(saved));
  }
  if (owner) give_to(*owner, temp);
  if (::rename(temp.c_str(), file.c_str()) != 0)
    throw Error("cannot rename " + temp.string() + " to " + file.string() + ": " + std::strerror(errno));
  fsync_path(file.parent_path());
}

}  // namespace berth::postgres::detail

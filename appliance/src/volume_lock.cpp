#include "volume_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "berth/core/error.hpp"
#include "berth/core/log.hpp"

namespace berth::appliance {

namespace fs = std::filesystem;

namespace {

int open_lock_file(fs::path const& file) {
  std::error_code ignored;
  fs::create_directories(file.parent_path(), ignored);
  int const fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw Error("cannot open lock file " + file.string() + ": " + std::strerror(errno));
  return fd;
}

std::optional<pid_t> recorded_pid(int fd) {
  char text[32] = {};
  auto const got = ::pread(fd, text, sizeof text - 1, 0);
  if (got <= 0) return std::nullopt;
  auto const pid = std::atol(text);
  return pid > 0 ? std::optional<pid_t>(static_cast<pid_t>(pid)) : std::nullopt;
}

}  // namespace

VolumeLock::VolumeLock(int fd, fs::path const& file) : fd_(fd) {
  auto const pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
    logger("berth")->warn("cannot record pid in lock file {}", file.string());
}

VolumeLock::VolumeLock(fs::path const& file) : VolumeLock(acquire_or_throw(file), file) {}

int VolumeLock::acquire_or_throw(fs::path const& file) {
  int const fd = open_lock_file(file);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto const pid = recorded_pid(fd);
    ::close(fd);
    throw Error("another berth serve is already running on this volume (lock " + file.string() +
                (pid ? ", pid " + std::to_string(*pid) : std::string()) +
                ")\nHINT: stop it first (systemctl stop berth), or give this one another --data");
  }
  return fd;
}

VolumeLock::~VolumeLock() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<VolumeLock> VolumeLock::try_acquire(fs::path const& file) {
  int const fd = open_lock_file(file);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<VolumeLock>(new VolumeLock(fd, file));
}

std::optional<pid_t> VolumeLock::holder(fs::path const& file) {
  int const fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<pid_t> pid;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) pid = recorded_pid(fd).value_or(0);
  ::close(fd);
  return pid;
}

}  // namespace berth::appliance

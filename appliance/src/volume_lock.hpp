// The exclusive lock `berth serve` holds on its primary volume (run/berth.lock) for as long as it
// lives: two services on one volume would corrupt each other's state. Other commands probe it to
// learn whether the service is running.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>

namespace berth::appliance {

class VolumeLock {
public:
  /// Takes the lock and writes this pid into the file. Throws Error naming the holder's pid
  /// when another process holds it.
  explicit VolumeLock(std::filesystem::path const& file);
  ~VolumeLock();
  VolumeLock(VolumeLock const&) = delete;
  VolumeLock& operator=(VolumeLock const&) = delete;

  /// The lock when it is free, or nullptr when a running service holds it (nothing written).
  /// Creates the file's directory. Throws Error when the file cannot be opened.
  static std::unique_ptr<VolumeLock> try_acquire(std::filesystem::path const& file);

  /// The pid recorded by the process that holds the lock, or nullopt when nobody holds it.
  static std::optional<pid_t> holder(std::filesystem::path const& file);

private:
  VolumeLock(int fd, std::filesystem::path const& file);
  static int acquire_or_throw(std::filesystem::path const& file);
  int fd_ = -1;
};

}  // namespace berth::appliance

// An exclusive flock(2) on a file: how berth's maintenance jobs (snapshot, prune, drill, registry
// garbage collection) keep out of each other's way, across processes.
#pragma once

#include <filesystem>

namespace berth {

class FileLock {
public:
  /// Takes the lock without waiting; `locked()` says whether it was free. Creates the file (mode
  /// 0600) when missing. Throws Error when it cannot be opened.
  explicit FileLock(std::filesystem::path const& file);
  ~FileLock();
  FileLock(FileLock const&) = delete;
  FileLock& operator=(FileLock const&) = delete;
  bool locked() const { return locked_; }

private:
  int fd_ = -1;
  bool locked_ = false;
};

}  // namespace berth

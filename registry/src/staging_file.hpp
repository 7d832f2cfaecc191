// The data file of an upload session, appended to with O_DIRECT where the filesystem allows it:
// pushed bytes go from berth's buffer to the disk without a copy into the page cache, and the
// fsync at commit has almost nothing left to write. Filesystems without O_DIRECT (tmpfs) get
// ordinary buffered writes.
//
// Written bytes are not yet durable: the device still has to flush its cache, which costs about
// as much as the writing (an fsync of a freshly written 128 MiB upload took 0.1 s, all of it
// waited for at commit). So every few MiB the file's own syncer thread runs fdatasync while the
// upload goes on, and the fsync at commit finds almost nothing left to flush.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include "file_io.hpp"

namespace berth::registry {

class StagingFile {
public:
  /// Opens `path`, which holds `size` bytes, for appending. Throws berth::Error.
  StagingFile(std::filesystem::path path, std::uint64_t size);
  /// Stops the syncer thread (without waiting for a sync it has not begun).
  ~StagingFile();
  StagingFile(StagingFile const&) = delete;
  StagingFile& operator=(StagingFile const&) = delete;

  /// Appends; full blocks are written as they fill. Throws berth::Error (e.g. disk full); the
  /// file then holds an unknown prefix of what was given, which the caller must re-read.
  void append(std::span<char const> bytes);
  /// The buffer's free space: bytes placed at its start and then given to append() are taken
  /// without a copy. Valid until the next append() or flush().
  std::span<char> free_space() { return {buffer_.get() + pending_, capacity - pending_}; }
  /// Writes what is still buffered, so the file holds every byte appended.
  void flush();
  /// flush() and fsync. Throws berth::Error, also for a failed background sync.
  void sync();
  std::uint64_t size() const { return written_ + pending_; }

  static constexpr std::size_t capacity = 1024 * 1024;     ///< one direct write per MiB
  static constexpr std::size_t sync_every = 8 * capacity;  ///< background fdatasync interval

private:
  void write_out(std::size_t bytes);
  void request_sync();
  void sync_behind();  // the syncer thread

  std::filesystem::path path_;
  File file_;     // O_DIRECT when direct_, else buffered
  File tail_fd_;  // buffered, for a last partial block (opened on demand)
  bool direct_ = false;
  std::unique_ptr<char, void (*)(void*)> buffer_;
  std::size_t pending_ = 0;    // bytes in buffer_, not all on disk
  std::uint64_t written_ = 0;  // file offset of buffer_[0]; block-aligned when direct_
  std::size_t unsynced_ = 0;   // bytes written since the last sync was requested

  std::mutex mutex_;  // guards the syncer's state below
  std::condition_variable changed_;
  bool sync_requested_ = false;
  bool syncing_ = false;
  bool stopping_ = false;
  std::exception_ptr sync_error_;
  std::thread syncer_;  // started by the first request
};

}  // namespace berth::registry

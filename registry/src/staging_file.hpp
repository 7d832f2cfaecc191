// The data file of an upload session, appended to with O_DIRECT where the filesystem allows it:
// pushed bytes go from berth's buffer to the disk without a copy into the page cache, and the
// fsync at commit has almost nothing left to write. Filesystems without O_DIRECT (tmpfs) get
// ordinary buffered writes.
//
// Full buffers are written by a writer thread of the file's own (started with the first full
// buffer, so small blobs never start one) while the caller fills the next buffer: the network
// and the disk work at the same time instead of taking turns, and uploads in parallel keep
// several writes in flight, which the disk needs to reach its throughput.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "file_io.hpp"

namespace berth::registry {

class StagingFile {
public:
  /// Opens `path`, which holds `size` bytes, for appending. Throws berth::Error.
  StagingFile(std::filesystem::path path, std::uint64_t size);
  /// Waits for the writes in flight (their errors are dropped: call flush() to see them).
  ~StagingFile();
  StagingFile(StagingFile const&) = delete;
  StagingFile& operator=(StagingFile const&) = delete;

  /// Appends; full buffers are handed to the writer thread as they fill. Throws berth::Error
  /// (e.g. disk full, possibly from an earlier buffer's write); the file then holds an unknown
  /// prefix of what was appended, which the caller must re-read.
  void append(std::span<char const> bytes);
  /// Writes what is still buffered or in flight, so the file holds every byte appended. Throws
  /// as append() does.
  void flush();
  /// flush() and fsync.
  void sync();
  std::uint64_t size() const { return written_ + pending_; }

  using Buffer = std::unique_ptr<char, void (*)(void*)>;

private:
  struct Write {
    Buffer buffer;
    std::size_t length;
    std::uint64_t offset;
  };

  void hand_over();                    // queues the full current buffer, takes a free one
  void wait_idle();                    // until the writer has nothing queued or in flight
  void throw_if_failed();              // the writer's first error, if any
  void write_here(std::size_t bytes);  // synchronous write of buffer_'s first `bytes`
  void run_writer();

  std::filesystem::path path_;
  File file_;     // O_DIRECT when direct_, else buffered
  File tail_fd_;  // buffered, for a last partial block (opened on demand)
  bool direct_ = false;
  Buffer buffer_;              // being filled by the caller
  std::size_t pending_ = 0;    // bytes in buffer_, not all on disk
  std::uint64_t written_ = 0;  // file offset of buffer_[0]; block-aligned when direct_

  // Shared with the writer thread, under mutex_.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Write> queue_;    // full buffers, oldest first; the front one is being written
  std::vector<Buffer> spare_;  // written buffers, ready to be filled again
  std::size_t buffers_ = 1;    // allocated so far (buffer_ included)
  int error_ = 0;              // errno of the first failed write
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace berth::registry

#include "staging_file.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "berth/core/error.hpp"

namespace berth::registry {
namespace {

constexpr std::size_t block_bytes = 4096;          // O_DIRECT alignment of offsets, sizes and memory
constexpr std::size_t buffer_bytes = 1024 * 1024;  // one direct write per MiB
// Buffers per file: one being filled, the rest queued or being written. Bounds the memory of
// an upload (4 MiB) and how far the network may run ahead of the disk.
constexpr std::size_t max_buffers = 4;

StagingFile::Buffer aligned_buffer() {
  void* memory = nullptr;
  if (::posix_memalign(&memory, block_bytes, buffer_bytes) != 0) throw std::bad_alloc();
  return {static_cast<char*>(memory), std::free};
}

// Writes everything; returns 0 or the errno of the failure.
int pwrite_fully(int fd, char const* data, std::size_t length, std::uint64_t offset) {
  while (length > 0) {
    auto done = ::pwrite(fd, data, length, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return errno;
    data += done;
    length -= static_cast<std::size_t>(done);
    offset += static_cast<std::uint64_t>(done);
  }
  return 0;
}

void pwrite_all(File const& file, char const* data, std::size_t length, std::uint64_t offset) {
  if (int error = pwrite_fully(file.fd(), data, length, offset)) throw_file_error("write", file.path(), error);
}

}  // namespace

StagingFile::StagingFile(std::filesystem::path path, std::uint64_t size)
    : path_(std::move(path)), buffer_(aligned_buffer()) {
  int fd = ::open(path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    file_ = File(path_, O_WRONLY | O_DIRECT);
    direct_ = true;
  } else {
    file_ = File(path_, O_WRONLY);  // no O_DIRECT here (tmpfs): buffered, same results
  }
  written_ = size;
  if (direct_ && size % block_bytes != 0) {
    // Direct writes start on a block boundary: take the last partial block back into the buffer
    // and write it again with what follows.
    pending_ = size % block_bytes;
    written_ = size - pending_;
    File reader(path_, O_RDONLY);
    if (reader.read_at({buffer_.get(), pending_}, written_) != pending_)
      throw Error("upload file " + path_.string() + " is shorter than " + std::to_string(size) + " bytes");
  }
}

StagingFile::~StagingFile() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  writer_.join();
}

void StagingFile::run_writer() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;
    auto& write = queue_.front();
    if (error_ == 0) {  // after a failure the file's end is unknown: write nothing more
      lock.unlock();
      int error = pwrite_fully(file_.fd(), write.buffer.get(), write.length, write.offset);
      lock.lock();
      if (error_ == 0) error_ = error;
    }
    spare_.push_back(std::move(write.buffer));
    queue_.pop_front();
    changed_.notify_all();
  }
}

void StagingFile::throw_if_failed() {
  int error;
  {
    std::lock_guard lock(mutex_);
    error = error_;
  }
  if (error) throw_file_error("write", path_, error);
}

void StagingFile::hand_over() {
  std::unique_lock lock(mutex_);
  if (error_) {
    lock.unlock();
    throw_if_failed();
  }
  queue_.push_back(Write{std::move(buffer_), pending_, written_});
  written_ += pending_;
  pending_ = 0;
  if (!writer_.joinable()) writer_ = std::thread([this] { run_writer(); });
  changed_.notify_all();
  if (spare_.empty() && buffers_ < max_buffers) {
    ++buffers_;
    lock.unlock();
    buffer_ = aligned_buffer();
    return;
  }
  // The disk is behind by max_buffers - 1 buffers: wait for it (TCP pushes back on the client).
  changed_.wait(lock, [this] { return !spare_.empty() || error_; });
  if (spare_.empty()) {
    lock.unlock();
    throw_if_failed();
  }
  buffer_ = std::move(spare_.back());
  spare_.pop_back();
}

void StagingFile::wait_idle() {
  if (!writer_.joinable()) return;
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return queue_.empty(); });
}

void StagingFile::write_here(std::size_t bytes) {
  pwrite_all(file_, buffer_.get(), bytes, written_);
  written_ += bytes;
  pending_ -= bytes;
  if (pending_) std::memmove(buffer_.get(), buffer_.get() + bytes, pending_);
}

void StagingFile::append(std::span<char const> bytes) {
  while (!bytes.empty()) {
    auto take = std::min(bytes.size(), buffer_bytes - pending_);
    std::memcpy(buffer_.get() + pending_, bytes.data(), take);
    pending_ += take;
    bytes = bytes.subspan(take);
    if (pending_ == buffer_bytes) hand_over();
  }
}

void StagingFile::flush() {
  wait_idle();
  throw_if_failed();
  if (pending_ == 0) return;
  if (!direct_) return write_here(pending_);
  if (auto whole = pending_ - pending_ % block_bytes) write_here(whole);
  if (pending_ == 0) return;
  // A last partial block cannot be written directly: write it buffered, and keep it in the
  // buffer, because the next direct write has to start at its block boundary.
  if (!tail_fd_.is_open()) tail_fd_ = File(path_, O_WRONLY);
  pwrite_all(tail_fd_, buffer_.get(), pending_, written_);
}

void StagingFile::sync() {
  flush();
  file_.sync();  // fsync covers the inode, whichever descriptor wrote
}

}  // namespace berth::registry

#include "staging_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "berth/core/error.hpp"

namespace berth::registry {
namespace {

constexpr std::size_t block_bytes = 4096;  // O_DIRECT alignment of offsets, sizes and memory

char* aligned_buffer() {
  void* memory = nullptr;
  if (::posix_memalign(&memory, block_bytes, StagingFile::capacity) != 0) throw std::bad_alloc();
  return static_cast<char*>(memory);
}

void pwrite_all(File const& file, char const* data, std::size_t length, std::uint64_t offset) {
  while (length > 0) {
    auto done = ::pwrite(file.fd(), data, length, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) throw_file_error("write", file.path(), errno);
    data += done;
    length -= static_cast<std::size_t>(done);
    offset += static_cast<std::uint64_t>(done);
  }
}

}  // namespace

StagingFile::StagingFile(std::filesystem::path path, std::uint64_t size)
    : path_(std::move(path)), buffer_(aligned_buffer(), std::free) {
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
  if (!syncer_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  syncer_.join();
}

void StagingFile::write_out(std::size_t bytes) {
  pwrite_all(file_, buffer_.get(), bytes, written_);
  written_ += bytes;
  pending_ -= bytes;
  if (pending_) std::memmove(buffer_.get(), buffer_.get() + bytes, pending_);
  if ((unsynced_ += bytes) >= sync_every) request_sync();
}

void StagingFile::request_sync() {
  unsynced_ = 0;
  {
    std::lock_guard lock(mutex_);
    sync_requested_ = true;  // a sync already running may have missed these bytes: run again after it
  }
  if (syncer_.joinable())
    changed_.notify_all();
  else {
    syncer_ = std::thread([this] { sync_behind(); });
    // Named here, not by the thread itself: the name is there as soon as the thread is (as top
    // and perf show it).
    ::pthread_setname_np(syncer_.native_handle(), "upload-sync");
  }
}

void StagingFile::sync_behind() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return sync_requested_ || stopping_; });
    if (stopping_) return;  // the owner no longer needs it: sync() is the one that counts
    sync_requested_ = false;
    syncing_ = true;
    lock.unlock();
    int error = ::fdatasync(file_.fd()) == 0 ? 0 : errno;
    lock.lock();
    syncing_ = false;
    if (error && !sync_error_) {
      try {
        throw_file_error("sync", path_, error);
      } catch (...) {
        sync_error_ = std::current_exception();
      }
    }
    changed_.notify_all();
  }
}

void StagingFile::append(std::span<char const> bytes) {
  if (bytes.data() == buffer_.get() + pending_ && bytes.size() <= capacity - pending_) {  // free_space()
    pending_ += bytes.size();
    if (pending_ == capacity) write_out(capacity);
    return;
  }
  while (!bytes.empty()) {
    auto take = std::min(bytes.size(), capacity - pending_);
    std::memcpy(buffer_.get() + pending_, bytes.data(), take);
    pending_ += take;
    bytes = bytes.subspan(take);
    if (pending_ == capacity) write_out(capacity);
  }
}

void StagingFile::flush() {
  if (pending_ == 0) return;
  if (!direct_) return write_out(pending_);
  if (auto whole = pending_ - pending_ % block_bytes) write_out(whole);
  if (pending_ == 0) return;
  // A last partial block cannot be written directly: write it buffered, and keep it in the
  // buffer, because the next direct write has to start at its block boundary.
  if (!tail_fd_.is_open()) tail_fd_ = File(path_, O_WRONLY);
  pwrite_all(tail_fd_, buffer_.get(), pending_, written_);
}

void StagingFile::sync() {
  flush();
  {
    std::unique_lock lock(mutex_);
    sync_requested_ = false;  // the fsync below covers it
    changed_.wait(lock, [&] { return !syncing_; });
    if (sync_error_) std::rethrow_exception(sync_error_);
  }
  file_.sync();  // fsync covers the inode, whichever descriptor wrote
}

}  // namespace berth::registry

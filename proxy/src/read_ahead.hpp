// Keeping the disk ahead of the sender of a big file (sendfile, or the TLS path's reads). Blobs
// are written around the page cache (O_DIRECT), so a big blob pulled soon after its push is read
// from the disk, and the sender then waits on the kernel's page-by-page readahead: measured
// here, a 512 MiB pull took 1-2 s longer cold than warm. Asking for the next steps with
// readahead(2) before they are sent keeps the disk busy while the network drains, and the pages
// land in the cache as usual (a second pull, or a concurrent one, is served from memory).
// Ranges the cache already holds cost one probe.
#pragma once

#include <cstdint>

namespace berth::proxy {

/// True when the page cache holds the byte at `offset` of `fd`, found with a one-byte read that
/// never waits for the disk. Also true where the kernel cannot tell.
bool page_cached(int fd, std::uint64_t offset);

/// Starts reads of the range [begin, end) of `fd` ahead of a sequential sender; does nothing
/// for a range of at most min_range_bytes (the kernel's own readahead serves those). Not
/// thread-safe.
class ReadAhead {
public:
  static constexpr std::uint64_t step_bytes = 8 << 20;
  static constexpr std::uint64_t min_range_bytes = 1 << 20;

  ReadAhead(int fd, std::uint64_t begin, std::uint64_t end)
      : fd_(fd), next_(end - begin > min_range_bytes ? begin : end), end_(end) {}

  /// The sender is about to send from `offset`: reads are started, step by step, for what the
  /// cache lacks up to two steps past it. Errors are ignored (sendfile reads anyway).
  void before_sending(std::uint64_t offset);

private:
  int fd_;
  std::uint64_t next_;  // reads have been asked for (or found cached) up to here
  std::uint64_t end_;
};

}  // namespace berth::proxy

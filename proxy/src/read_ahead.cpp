#include "read_ahead.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <algorithm>
#include <cerrno>

namespace berth::proxy {

bool page_cached(int fd, std::uint64_t offset) {
  char byte;
  iovec one{&byte, 1};
  for (;;) {
    auto got = ::preadv2(fd, &one, 1, static_cast<off_t>(offset), RWF_NOWAIT);
    if (got >= 0) return true;  // served from the cache (0: past the end, nothing to read)
    if (errno == EINTR) continue;
    return errno != EAGAIN;  // EAGAIN: only the disk has it; anything else: cannot tell
  }
}

void ReadAhead::before_sending(std::uint64_t offset) {
  auto const until = std::min(end_, offset + 2 * step_bytes);
  while (next_ < until) {
    auto const step = std::min(step_bytes, end_ - next_);
    if (!page_cached(fd_, next_) || !page_cached(fd_, next_ + step - 1))
      ::readahead(fd_, static_cast<off_t>(next_), step);
    next_ += step;
  }
}

}  // namespace berth::proxy

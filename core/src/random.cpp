#include "berth/core/random.hpp"

#include <sys/random.h>
#include <cerrno>
#include <cstring>
#include <vector>

#include "berth/core/error.hpp"

namespace berth {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> random(bytes);
  std::size_t filled = 0;
  while (filled < bytes) {
    auto got = ::getrandom(random.data() + filled, bytes - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(std::string("cannot get random bytes: getrandom: ") + std::strerror(errno));
    filled += static_cast<std::size_t>(got);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes * 2);
  for (auto byte : random) {
    hex += digits[byte >> 4];
    hex += digits[byte & 15];
  }
  return hex;
}

}  // namespace berth

// Sizes and ages as berth prints them for people (CLI output, error messages).
#pragma once

#include <cstdint>
#include <string>

namespace berth {

/// "512 B", "1.5 MiB".
std::string human_size(std::uint64_t bytes);
/// "45s", "12m", "3h 5m", "2d 4h".
std::string human_age(std::int64_t seconds);

}  // namespace berth

// Sizes and ages as berth prints them for people (CLI output, error messages).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace berth {

/// "512 B", "1.5 MiB".
std::string human_size(std::uint64_t bytes);
/// "45s", "12m", "3h 5m", "2d 4h".
std::string human_age(std::int64_t seconds);
/// `when` in UTC, by strftime's `format`: "2026-12-07T23:10:05Z" by default.
std::string utc_time(std::chrono::system_clock::time_point when, char const* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace berth

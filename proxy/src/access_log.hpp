// The access log line: one JSON object per request, written by the server on the "access"
// logger. Built by hand rather than through a JSON library because it runs on every request.
// It holds what an operator needs to trace a request and nothing secret: no headers at all (so
// no Authorization), and no query string on /token (it can carry credentials-like scope data).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace berth::proxy {

struct AccessRecord {
  std::chrono::system_clock::time_point time = {};
  std::string_view remote_ip = {};
  std::string_view user = {};  ///< empty: anonymous (written as "-")
  std::string_view method = {};
  std::string_view path = {};
  std::string_view query = {};       ///< dropped for /token
  std::string_view repository = {};  ///< empty: not known (omitted)
  std::string_view action = {};      ///< empty: not known (omitted)
  int status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  double duration_ms = 0;
  std::string_view request_id = {};
};

/// The record as one line of JSON (no newline). Thread-safe.
std::string format_access_record(AccessRecord const& record);

}  // namespace berth::proxy

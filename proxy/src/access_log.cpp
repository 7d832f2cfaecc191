#include "access_log.hpp"

#include <ctime>

#include <spdlog/fmt/fmt.h>

namespace berth::proxy {
namespace {

// JSON string contents: quotes, backslashes and control characters escaped. Bytes >= 0x80 pass
// through (paths are percent-encoded; user names are what the operator configured).
void append_escaped(std::string& out, std::string_view text) {
  for (char ch : text) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20)
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(ch));
        else
          out += ch;
    }
  }
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":\"";
  append_escaped(out, value);
  out += '"';
}

}  // namespace

std::string format_access_record(AccessRecord const& record) {
  std::string out;
  out.reserve(256);
  auto since_epoch = record.time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  std::time_t whole = seconds.count();
  std::tm utc{};
  ::gmtime_r(&whole, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  fmt::format_to(std::back_inserter(out), "{{\"time\":\"{}.{:03}Z\"", stamp, millis);
  append_field(out, "remote_ip", record.remote_ip);
  append_field(out, "user", record.user.empty() ? std::string_view("-") : record.user);
  append_field(out, "method", record.method);
  append_field(out, "path", record.path);
  if (!record.query.empty() && record.path != "/token") append_field(out, "query", record.query);
  if (!record.repository.empty()) append_field(out, "repository", record.repository);
  if (!record.action.empty()) append_field(out, "action", record.action);
  fmt::format_to(std::back_inserter(out), ",\"status\":{},\"bytes_in\":{},\"bytes_out\":{},\"duration_ms\":{:.3f}",
                 record.status, record.bytes_in, record.bytes_out, record.duration_ms);
  append_field(out, "request_id", record.request_id);
  out += '}';
  return out;
}

}  // namespace berth::proxy

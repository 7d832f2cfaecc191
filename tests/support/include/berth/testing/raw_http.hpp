// A deliberately small HTTP/1.1 client over a plain TCP socket, for tests: it sends exactly
// the bytes given (so tests can send malformed, pipelined or slow requests) and parses the
// responses that come back (Content-Length, chunked, or read-to-close bodies).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::testing {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< empty when a body callback consumed it
  std::uint64_t body_bytes = 0;
  /// The first header called `name` (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
};

class RawConnection {
public:
  /// Connects to host:port (an IPv4 or IPv6 literal). Throws std::runtime_error on failure.
  RawConnection(std::string const& host, std::uint16_t port);
  ~RawConnection();
  RawConnection(RawConnection const&) = delete;
  RawConnection& operator=(RawConnection const&) = delete;

  /// Sends all of `bytes`; false if the peer closed or reset the connection.
  bool send(std::string_view bytes);
  /// Reads one response. With `on_body`, body bytes go there instead of HttpResponse::body.
  /// `head_request`: the response has no body whatever its headers say. nullopt when the
  /// connection closes or `timeout` passes before a whole response arrives.
  std::optional<HttpResponse> read_response(bool head_request = false,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                            std::function<void(std::string_view)> const& on_body = {});
  /// Reads raw bytes up to and including `terminator`; nullopt on close or timeout.
  std::optional<std::string> read_until(std::string_view terminator, std::chrono::milliseconds timeout);
  /// True if the peer closes the connection (EOF or reset) within `timeout`, discarding data.
  bool wait_closed(std::chrono::milliseconds timeout);
  void shutdown_write();

private:
  bool fill(std::chrono::steady_clock::time_point deadline);  // reads more into buffer_
  std::optional<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
};

/// One request on a fresh connection; convenient for simple GETs.
std::optional<HttpResponse> http_request(std::string const& host, std::uint16_t port, std::string const& method,
                                         std::string const& target, std::string const& body = {},
                                         std::vector<std::pair<std::string, std::string>> const& headers = {});

}  // namespace berth::testing

// A small blocking HTTP/1.1 client for talking to other registries and the AWS APIs: plain http
// or https (system CA store plus an optional extra CA file, SNI, hostname or IP verification),
// keep-alive connections reused across requests, request bodies streamed from a file (memory
// stays flat whatever the size), and a deadline on every step. Response bodies are read into
// memory up to a limit: it is meant for manifests and JSON answers, not for pulling layers.
// Not a general-purpose client: no redirects, no proxies, no cookies, no HTTP/2.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/core/error.hpp"

namespace berth::registry::http {

/// The request could not be carried out: DNS, connect, TLS handshake or verification, a
/// timeout, or the connection broke. The message names the host and the step that failed.
class TransportError : public Error {
public:
  using Error::Error;
};

/// The server answered TLS with something else (a plain-HTTP registry behind an https:// URL):
/// trying again cannot help, so it is never retried.
class ProtocolMismatch : public TransportError {
public:
  using TransportError::TransportError;
};

/// "scheme://host[:port]/target" split up. Throws berth::Error on anything but http or https
/// URLs with a host.
struct Url {
  std::string scheme;  ///< "http" or "https"
  std::string host;    ///< without brackets for IPv6
  std::uint16_t port = 0;
  std::string target = "/";  ///< path and query as sent on the wire

  static Url parse(std::string_view text);
  /// "host" or "host:port" when the port is not the scheme's default (the Host header).
  std::string authority() const;
  /// "scheme://authority"
  std::string origin() const;
};

struct ClientConfig {
  /// PEM file with more CA certificates to trust besides the system store (self-signed targets).
  std::optional<std::filesystem::path> extra_ca_file{};
  std::chrono::seconds connect_timeout{30};  ///< DNS, TCP connect and TLS handshake
  std::chrono::seconds io_timeout{120};      ///< a read or write making no progress for this long fails
  std::size_t max_response_body = 16 * 1024 * 1024;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;   ///< absolute: "https://host:port/path?query"
  Fields headers{};  ///< Host, Content-Length and Connection are set by the client
  std::string body{};
  /// When set, the body is this file's content, streamed (and `body` is ignored).
  std::optional<std::filesystem::path> body_file{};
};

struct Response {
  int status = 0;
  Fields headers;
  std::string body;  ///< empty for HEAD

  /// The first value of header `name` (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
  /// Every value of header `name`, in order.
  std::vector<std::string> headers_named(std::string_view name) const;
};

/// Sends requests, keeping idle connections per origin for reuse. Thread-safe: concurrent
/// send() calls each use their own connection. Blocks the calling thread.
class Client {
public:
  /// Throws berth::Error when the extra CA file cannot be loaded.
  explicit Client(ClientConfig config = {});
  ~Client();
  Client(Client const&) = delete;
  Client& operator=(Client const&) = delete;

  /// Sends `request` and reads the whole response (any status). A request on a reused
  /// connection that the server had closed is sent once more on a new connection. Throws
  /// TransportError on network, TLS or timeout failures; berth::Error on a bad URL or an
  /// unreadable body file, or a response body over the limit.
  Response send(Request const& request);

  /// Connections opened so far (for tests of keep-alive reuse). Thread-safe.
  std::uint64_t connections_opened() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Standard base64 (with padding) of `bytes`, as Basic credentials need.
std::string base64(std::string_view bytes);

}  // namespace berth::registry::http

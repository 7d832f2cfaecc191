// The HTTP vocabulary handlers are written in: a request's head, a response, and the two
// streaming interfaces. A handler is plain synchronous code: it sees the request head, and
// either answers at once or hands back a BodySink that the server feeds the request body to,
// chunk by chunk, as it arrives. Responses carry a small string body or a BodySource the
// server pulls from while it writes. Neither side ever holds a whole body in memory unless the
// handler asks for that (see buffered()). No Beast or Asio types appear here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "berth/core/error.hpp"

namespace berth::proxy {

enum class Method { get, head, post, put, patch, delete_, options, other };

/// "GET", "HEAD", ... ("OTHER" for anything else).
std::string_view to_string(Method method);

/// Header fields in arrival order; names compare case-insensitively.
class Headers {
public:
  /// The first value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  /// Replaces every field called `name` with one of value `value`.
  void set(std::string_view name, std::string value);
  /// Appends a field, keeping others of the same name (Link, WWW-Authenticate).
  void add(std::string_view name, std::string value);
  void erase(std::string_view name);
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// A request's head as the handler sees it. The body, if any, is not here: a handler that
/// wants it returns a BodySink.
struct Request {
  Method method = Method::get;
  std::string method_name;  ///< as sent, e.g. "PROPFIND" when method is Method::other
  std::string target;       ///< raw request-target, e.g. "/v2/api/app/tags/list?n=10"
  std::string path;         ///< target before '?', still percent-encoded
  std::string query;        ///< target after '?', without it
  Headers headers;
  std::optional<std::uint64_t> content_length;  ///< absent when chunked or no body
  bool has_body = false;                        ///< true when a body (possibly empty) follows
  std::string remote_address;                   ///< "ip:port" of the peer

  /// The percent-decoded value of query parameter `name`, if present.
  std::optional<std::string> query_param(std::string_view name) const;
};

/// A body that is a range of an open file, which the server may send without copying it
/// through user space (sendfile(2)).
struct FileSpan {
  int fd = -1;               ///< owned by the BodySource, open while it lives
  std::uint64_t offset = 0;  ///< where the body starts in the file
};

/// Pulled by the server to produce a response body of any size with constant memory.
class BodySource {
public:
  virtual ~BodySource() = default;
  /// Fills `buffer` with the next bytes; returns how many, 0 at the end. May throw berth::Error,
  /// which aborts the connection (the status line has already gone out).
  virtual std::size_t read(std::span<char> buffer) = 0;
  /// The file behind the body, if there is one and read() has not been called; the server then
  /// sends Response::stream_length bytes from it directly.
  virtual std::optional<FileSpan> file_span() const { return std::nullopt; }
};

struct Response {
  int status = 200;
  Headers headers;
  /// A small body, or a source streamed to the client.
  std::variant<std::string, std::unique_ptr<BodySource>> body;
  /// Length of a streamed body: sent as Content-Length when known, else the body is chunked.
  std::optional<std::uint64_t> stream_length;
};

/// Receives a request body as it arrives. Called on one thread at a time, in order.
class BodySink {
public:
  virtual ~BodySink() = default;  ///< Destroyed without finish(): the client went away; clean up.
  /// Takes the next chunk of the body. May throw (HttpError or berth::Error) to refuse the
  /// rest; the server then answers with that error and closes the connection.
  virtual void write(std::span<char const> chunk) = 0;
  /// Where the server may read the next body bytes into, sparing a copy (e.g. the sink's own
  /// aligned write buffer); write() is then called with a prefix of this span. Empty (the
  /// default): the server reads into its own buffer. Valid until the next write().
  virtual std::span<char> receive_buffer() { return {}; }
  /// The whole body has arrived; returns the response to send.
  virtual Response finish() = 0;
};

/// What a handler returns: an answer now, or a sink for the body and an answer later.
using Reply = std::variant<Response, std::unique_ptr<BodySink>>;

/// A handler runs on the connection's strand; it may block briefly on local disk I/O.
using Handler = std::function<Reply(Request const&)>;

/// An error that becomes an HTTP response with a JSON body
/// {"errors":[{"code":code,"message":message}]} (the OCI error envelope, used for all of
/// berth's HTTP errors). Extra headers (e.g. WWW-Authenticate) can be attached.
class HttpError : public Error {
public:
  HttpError(int status, std::string code, std::string const& message)
      : Error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  std::string const& code() const { return code_; }
  Headers headers;

private:
  int status_;
  std::string code_;
};

/// A JSON response with the given status and body, Content-Type application/json.
Response json_response(int status, std::string body);

/// The response for an HttpError (its status, headers and JSON envelope).
Response error_response(HttpError const& error);

/// A handler that receives the whole body as a string, refusing (413) bodies over `max_bytes`,
/// whether announced by Content-Length or discovered while reading a chunked body.
Handler buffered(std::size_t max_bytes, std::function<Response(Request const&, std::string body)> handle);

}  // namespace berth::proxy

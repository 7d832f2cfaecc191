// The HTTP/1.1 server on Beast and C++20 coroutines. Each I/O thread runs its own io_context
// and owns the connections it accepted, so a request never hops threads (no strands, no
// cross-thread wake-ups). Timeouts are one coarse deadline per connection, watched by a timer
// that rarely fires, instead of a timer armed around every read and write. Request logic lives
// in the Router's handlers; this file only moves bytes, enforces limits and timeouts, and shuts
// down gracefully. The connection code is a template over the stream: plain TCP (which keeps
// sendfile) or TLS over TCP, so the plain path pays nothing for TLS.
#include "berth/proxy/server.hpp"

#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "access_log.hpp"
#include "asio.hpp"
#include "berth/core/log.hpp"
#include "berth/core/random.hpp"
#include "berth/core/version.hpp"
#include "rate_limit.hpp"
#include "read_ahead.hpp"
#include "request_notes.hpp"
#include "reverse_proxy.hpp"
#include "tls_context.hpp"
#include "tls_stream.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using net::use_awaitable;
using Clock = std::chrono::steady_clock;

// Body I/O goes through one buffer per connection, allocated on first use.
constexpr std::size_t body_chunk_bytes = 256 * 1024;
// Responses up to this size go out in a single write together with their head.
constexpr std::uint64_t small_body_bytes = 64 * 1024;
// A body the handler did not read is drained to keep the connection, up to this size.
constexpr std::uint64_t drain_limit_bytes = 64 * 1024;
// After an error response to an unread body: how long and how much we read and discard so the
// client sees our response instead of a connection reset (a "lingering close").
constexpr auto linger_time = 2s;
constexpr std::uint64_t linger_limit_bytes = 16 * 1024 * 1024;
// Connections refused over the per-address cap are logged at most this often (a flood would
// otherwise flood the journal too).
constexpr auto refusal_log_interval = 10s;

template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, TlsStream>;

// What the watchdog and a shutdown need from a connection, whatever its stream.
struct ConnectionBase {
  explicit ConnectionBase(net::any_io_executor executor) : watchdog(std::move(executor)) {}
  virtual ~ConnectionBase() = default;
  ConnectionBase(ConnectionBase const&) = delete;
  ConnectionBase& operator=(ConnectionBase const&) = delete;

  /// The TCP socket at the bottom of the stream.
  virtual tcp::socket& socket() = 0;

  // The connection is closed when the clock passes `deadline`; every I/O step moves it (a plain
  // store: the watchdog looks at it at least once a second).
  void expires_after(std::chrono::seconds timeout) { expires_at(Clock::now() + timeout); }
  void expires_at(Clock::time_point when) { deadline = when; }

  // Closing the TCP socket aborts any TLS operation in progress too. No TLS close_notify is
  // sent: every response is delimited by Content-Length or chunking, so a client cannot
  // mistake a truncation for the end, and waiting for the peer's close_notify would hold the
  // connection open for nothing.
  void close() {
    if (closed) return;
    closed = true;
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    watchdog.cancel();
  }

  net::steady_timer watchdog;
  net::ip::address peer;  // counted against server.max_connections_per_ip while open
  Clock::time_point deadline = Clock::time_point::max();
  bool busy = false;    // a request is being handled
  bool closed = false;  // all of this is touched only on the connection's own thread
  std::vector<char> chunk;

  std::span<char> body_buffer() {
    if (chunk.empty()) chunk.resize(body_chunk_bytes);
    return chunk;
  }
};

template <class Stream>
struct Connection final : ConnectionBase {
  explicit Connection(tcp::socket s) : ConnectionBase(s.get_executor()), stream(std::move(s)) {}
  Connection(tcp::socket s, std::shared_ptr<ssl::context> tls)
      : ConnectionBase(s.get_executor()), context(std::move(tls)), stream(std::move(s), context->native_handle()) {}
  tcp::socket& socket() override { return beast::get_lowest_layer(stream); }

  std::shared_ptr<ssl::context> context;  // TLS: kept alive by its connections across a reload
  Stream stream;
};

Method to_method(http::verb verb) {
  switch (verb) {
    case http::verb::get: return Method::get;
    case http::verb::head: return Method::head;
    case http::verb::post: return Method::post;
    case http::verb::put: return Method::put;
    case http::verb::patch: return Method::patch;
    case http::verb::delete_: return Method::delete_;
    case http::verb::options: return Method::options;
    default: return Method::other;
  }
}

std::string format_endpoint(tcp::endpoint const& endpoint) {
  auto address = endpoint.address();
  auto host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

// Parse errors are the client's fault (answer 400); anything else is the connection failing.
bool is_parse_error(beast::error_code const& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// A TLS record of type handshake (22), version 3.x: a ClientHello sent to a plain-HTTP port.
bool starts_tls_handshake(beast::flat_buffer const& buffer) {
  auto const bytes = static_cast<unsigned char const*>(buffer.data().data());
  return buffer.size() >= 2 && bytes[0] == 0x16 && bytes[1] == 0x03;
}

// Closes the connection when its deadline passes, checking at most a second late. Costs one
// wake-up per second per connection instead of a timer armed around every read and write.
net::awaitable<void> watch_deadline(std::shared_ptr<ConnectionBase> connection) {
  while (!connection->closed) {
    connection->watchdog.expires_at(std::min(connection->deadline, Clock::now() + 1s));
    beast::error_code ec;
    co_await connection->watchdog.async_wait(net::redirect_error(use_awaitable, ec));
    if (connection->closed) co_return;
    if (Clock::now() >= connection->deadline) connection->close();
  }
}

// The request body, as it arrives: read straight from the socket into the connection's buffer
// when its length is known, through Beast's parser when it is chunked.
template <class Stream>
class BodyReader {
public:
  BodyReader(Connection<Stream>& connection, beast::flat_buffer& buffer,
             http::request_parser<http::empty_body>&& header)
      : connection_(connection), buffer_(buffer) {
    if (header.is_done()) {
      done_ = true;
    } else if (header.content_length()) {
      remaining_ = *header.content_length();
    } else {
      chunked_.emplace(std::move(header));
      chunked_->body_limit(std::numeric_limits<std::uint64_t>::max());
    }
  }

  bool done() const { return done_; }
  std::uint64_t received() const { return received_; }
  /// Bytes still expected, when the body has a length.
  std::optional<std::uint64_t> remaining() const {
    return chunked_ ? std::nullopt : std::optional<std::uint64_t>(remaining_);
  }

  /// The next piece of the body, read into `into` (else the connection's buffer); empty at the
  /// end. Sets `error` when the client fails to deliver (disconnect, timeout, bad chunking).
  net::awaitable<std::span<char const>> next(std::chrono::seconds timeout, beast::error_code& error,
                                             std::span<char> into = {}) {
    if (done_) co_return std::span<char const>{};
    auto space = into.empty() ? connection_.body_buffer() : into;
    if (chunked_) {
      for (;;) {
        chunked_->get().body().data = space.data();
        chunked_->get().body().size = space.size();
        connection_.expires_after(timeout);
        co_await http::async_read_some(connection_.stream, buffer_, *chunked_,
                                       net::redirect_error(use_awaitable, error));
        if (error == http::error::need_buffer) error = {};
        if (error) co_return std::span<char const>{};
        auto got = space.size() - chunked_->get().body().size;
        if (chunked_->is_done()) done_ = true;
        received_ += got;
        if (got || done_) co_return std::span<char const>(space.data(), got);
      }
    }
    std::size_t got = 0;
    if (buffer_.size() > 0) {  // bytes that arrived with the head
      got = static_cast<std::size_t>(std::min<std::uint64_t>({buffer_.size(), remaining_, space.size()}));
      net::buffer_copy(net::buffer(space.data(), got), buffer_.data());
      buffer_.consume(got);
    } else {
      connection_.expires_after(timeout);
      auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, space.size()));
      got = co_await connection_.stream.async_read_some(net::buffer(space.data(), want),
                                                        net::redirect_error(use_awaitable, error));
      if (error == net::error::eof) error = http::error::partial_message;
      if (error) co_return std::span<char const>{};
    }
    remaining_ -= got;
    received_ += got;
    done_ = remaining_ == 0;
    co_return std::span<char const>(space.data(), got);
  }

private:
  Connection<Stream>& connection_;
  beast::flat_buffer& buffer_;
  std::optional<http::request_parser<http::buffer_body>> chunked_;
  std::uint64_t remaining_ = 0;
  std::uint64_t received_ = 0;
  bool done_ = false;
};

}  // namespace

struct Server::State {
  State(ServerConfig cfg, std::shared_ptr<Metrics> counters)
      : config(std::move(cfg)),
        metrics(counters ? std::move(counters) : std::make_shared<Metrics>()),
        limiter(config.rate_limit),
        request_id_prefix(random_hex(4)),
        log(logger("http")),
        access(logger("access")) {
    unsigned count = config.threads ? config.threads : std::max(2u, std::thread::hardware_concurrency());
    for (unsigned worker_idx = 0; worker_idx < count; ++worker_idx) workers.push_back(std::make_unique<Worker>());
    control.emplace(workers.front()->ioc.get_executor());
    grace_timer.emplace(*control);
    if (!config.routes.empty()) reverse_proxy = std::make_unique<ReverseProxy>(config, metrics);
  }

  struct Worker {
    net::io_context ioc{1};  // one thread each: no locking inside Asio
    std::optional<net::executor_work_guard<net::io_context::executor_type>> keep_running;
    std::atomic<bool> probe_answered{true};  // the heartbeat's probe ran on this thread
  };

  // A bound socket and what it serves. The first one is the main listener (TLS when
  // configured); others are plain HTTP.
  struct Listener {
    explicit Listener(net::strand<net::io_context::executor_type> const& executor) : acceptor(executor) {}
    tcp::acceptor acceptor;
    Router router;
    bool tls = false;
    std::string address;
  };

  ServerConfig config;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls_context;  // replaced by reload_tls(); guarded by tls_mutex
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<std::size_t> next_worker{0};
  std::optional<net::strand<net::io_context::executor_type>> control;  // acceptors, signals, shutdown
  std::vector<std::unique_ptr<Listener>> listeners;
  std::optional<net::signal_set> signals;
  std::optional<net::signal_set> reload_signals;
  std::function<void()> on_reload;
  std::optional<net::steady_timer> grace_timer;
  std::function<void()> on_stopping;
  std::chrono::milliseconds heartbeat_interval{0};
  std::function<void()> on_heartbeat;
  std::optional<net::steady_timer> heartbeat_timer;
  std::atomic<bool> stopping{false};
  bool stopped = false;    // every connection is gone; on `control`
  std::uint16_t port = 0;  // of the main listener

  mutable std::mutex connections_mutex;
  std::set<std::shared_ptr<ConnectionBase>> connections;
  std::map<net::ip::address, std::uint32_t> connections_by_peer;  // guarded by connections_mutex

  std::shared_ptr<Metrics> metrics;
  std::unique_ptr<ReverseProxy> reverse_proxy;  // null without routes
  RateLimiter limiter;
  std::string request_id_prefix;  // random per start, so ids from different runs do not collide
  std::atomic<std::uint64_t> next_request_id{1};
  Clock::time_point last_refusal_log;   // on `control`
  std::uint64_t refused_since_log = 0;  // on `control`

  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> access;

  /// Binds host:port and adds it to `listeners`; throws berth::Error naming the address.
  Listener& listen(std::string const& host, std::uint16_t port, Router router);

  // --- runs on `control` ---
  void begin_stop(std::string const& reason);
  void finish_stop();
  void close_connections(bool idle_only);

  // --- any thread ---
  void remove(std::shared_ptr<ConnectionBase> const& connection);
};

namespace {

template <class Stream>
net::awaitable<void> write_status(Connection<Stream>& connection, unsigned version, http::status status,
                                  std::string const& code, std::string const& message, std::chrono::seconds timeout) {
  HttpError error(static_cast<int>(status), code, message);
  auto reply = error_response(error);
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::get<std::string>(reply.body);
  res.keep_alive(false);
  res.prepare_payload();
  connection.expires_after(timeout);
  beast::error_code ec;
  co_await http::async_write(connection.stream, res, net::redirect_error(use_awaitable, ec));
}

// Sends `length` bytes of `span.fd` from `span.offset` with sendfile(2): no copy through user
// space. A big file is read ahead of the sender (read_ahead.hpp). Plain TCP only.
net::awaitable<std::uint64_t> send_file(Connection<tcp::socket>& connection, FileSpan span, std::uint64_t length,
                                        std::chrono::seconds timeout) {
  auto& socket = connection.stream;
  socket.native_non_blocking(true);
  off_t offset = static_cast<off_t>(span.offset);
  ReadAhead read_ahead(span.fd, span.offset, span.offset + length);
  std::uint64_t sent = 0;
  while (sent < length) {
    connection.expires_after(timeout);
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length - sent, 4 << 20));
    read_ahead.before_sending(static_cast<std::uint64_t>(offset));
    auto n = ::sendfile(socket.native_handle(), span.fd, &offset, want);
    if (n > 0) {
      sent += static_cast<std::uint64_t>(n);
    } else if (n == 0) {
      throw Error("file ended after " + std::to_string(sent) + " of " + std::to_string(length) + " bytes");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await socket.async_wait(tcp::socket::wait_write, use_awaitable);
    } else if (errno != EINTR) {
      throw beast::system_error(beast::error_code(errno, beast::system_category()));
    }
  }
  co_return sent;
}

// Writes the response; returns body bytes sent. Throws on a broken connection or a failing
// body source (the caller then drops the connection: the status line is already out).
// Under TLS, file bodies are read into the connection's buffer and written in large chunks:
// sendfile cannot encrypt, and each chunk leaves in one send.
template <class Stream>
net::awaitable<std::uint64_t> write_response(Connection<Stream>& connection, Response& response, unsigned version,
                                             bool head_only, bool keep_alive, std::chrono::seconds timeout) {
  auto& stream = connection.stream;
  if (auto* text = std::get_if<std::string>(&response.body)) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    for (auto const& [name, value] : response.headers) res.insert(name, value);
    res.keep_alive(keep_alive);
    auto explicit_length = response.headers.get("Content-Length");
    auto length = text->size();
    res.body() = std::move(*text);
    if (!head_only || !explicit_length) res.content_length(length);
    connection.expires_after(timeout);
    if (head_only) {
      http::response_serializer<http::string_body> serializer{res};
      co_await http::async_write_header(stream, serializer, use_awaitable);
      co_return 0;
    }
    co_await http::async_write(stream, res, use_awaitable);
    co_return length;
  }

  auto& source = std::get<std::unique_ptr<BodySource>>(response.body);
  auto const& length = response.stream_length;
  http::response<http::buffer_body> res{static_cast<http::status>(response.status), version};
  for (auto const& [name, value] : response.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
  if (length)
    res.content_length(*length);
  else
    res.chunked(true);
  auto chunk = connection.body_buffer();

  // A small body of known length goes out with its head in one write.
  if (length && *length <= small_body_bytes && !head_only) {
    std::size_t filled = 0;
    while (filled < *length) {
      auto got = source->read(chunk.subspan(filled, static_cast<std::size_t>(*length) - filled));
      if (got == 0) break;
      filled += got;
    }
    if (filled != *length || source->read(chunk.subspan(filled, 1)) != 0)
      throw Error("response body does not have its announced " + std::to_string(*length) + " bytes");
    res.body().data = chunk.data();
    res.body().size = filled;
    res.body().more = false;
    connection.expires_after(timeout);
    co_await http::async_write(stream, res, use_awaitable);
    co_return filled;
  }

  res.body().data = nullptr;
  res.body().more = true;
  http::response_serializer<http::buffer_body> serializer{res};
  if (head_only) {
    connection.expires_after(timeout);
    co_await http::async_write_header(stream, serializer, use_awaitable);
    co_return 0;
  }
  if constexpr (!is_tls<Stream>) {
    if (auto span = source->file_span(); span && length) {
      connection.expires_after(timeout);
      co_await http::async_write_header(stream, serializer, use_awaitable);
      co_return co_await send_file(connection, *span, *length, timeout);
    }
  }
  // Otherwise the head goes out with the first chunk of the body, in one write (under TLS one
  // send(2) of many records: see tls_stream.hpp). A big file is read ahead here too.
  std::optional<ReadAhead> read_ahead;
  std::uint64_t file_offset = 0;
  if (auto span = source->file_span(); span && length) {
    read_ahead.emplace(span->fd, span->offset, span->offset + *length);
    file_offset = span->offset;
  }

  std::uint64_t sent = 0;
  for (;;) {
    if (read_ahead) read_ahead->before_sending(file_offset + sent);
    std::size_t produced = source->read(chunk);
    if (length && sent + produced > *length)
      throw Error("response body is longer than its announced " + std::to_string(*length) + " bytes");
    res.body().data = produced ? chunk.data() : nullptr;
    res.body().size = produced;
    res.body().more = produced != 0;
    if (!produced && length && sent != *length)
      throw Error("response body ended after " + std::to_string(sent) + " of " + std::to_string(*length) + " bytes");
    beast::error_code ec;
    connection.expires_after(timeout);
    co_await http::async_write(stream, serializer, net::redirect_error(use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw beast::system_error(ec);
    sent += produced;
    if (!produced) co_return sent;
  }
}

HttpError too_many_requests(std::chrono::seconds wait) {
  HttpError error(429, "TOOMANYREQUESTS",
                  "too many requests; retry after " + std::to_string(wait.count()) + " seconds");
  error.headers.set("Retry-After", std::to_string(wait.count()));
  return error;
}

// Routes the request with `notes` visible to the layers above (authentication notes the user).
Reply dispatch_noting(Router const& router, Request const& request, RequestNotes& notes) {
  struct Reset {
    ~Reset() { current_request_notes = nullptr; }
  } reset;
  current_request_notes = &notes;
  return router.dispatch(request);
}

Request make_request(http::request_parser<http::empty_body> const& parser, std::string const& remote) {
  auto const& head = parser.get();
  Request request;
  request.method = to_method(head.method());
  request.method_name = std::string(head.method_string());
  request.target = std::string(head.target());
  auto question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);
  for (auto const& field : head) request.headers.add(std::string(field.name_string()), std::string(field.value()));
  if (auto length = parser.content_length()) request.content_length = *length;
  request.has_body = !parser.is_done();
  request.remote_address = remote;
  return request;
}

// Serves requests on one connection until the client leaves, an error ends it, or the server
// is stopping. Runs on the connection's thread.
template <class Stream>
net::awaitable<void> serve_http(Server::State& state, Router const& router,
                                std::shared_ptr<Connection<Stream>> connection) {
  auto const& config = state.config;
  auto& stream = connection->stream;
  beast::error_code ec;
  auto remote_endpoint = connection->socket().remote_endpoint(ec);
  std::string remote = ec ? std::string("unknown") : format_endpoint(remote_endpoint);
  std::string remote_ip = ec ? std::string("unknown") : remote_endpoint.address().to_string();
  std::string const failures_key = "unverified:" + remote_ip;  // rate limit bucket, see below
  beast::flat_buffer buffer;
  bool first_request = true;

  if constexpr (is_tls<Stream>) {
    // The handshake counts as part of the first request's head: a client that opens the
    // connection and never finishes it is dropped like one that never sends a request line.
    connection->expires_after(config.header_timeout);
    co_await stream.async_handshake(net::redirect_error(use_awaitable, ec));
    if (ec) {
      state.log->debug("tls handshake failed remote={} error=\"{}\"", remote, ec.message());
      co_return;
    }
  }

  while (!state.stopping) {
    connection->busy = false;
    if (buffer.size() == 0) {
      // Wait for the first byte of the next request under the idle timeout; only then does
      // the stricter header timeout start, and does a shutdown treat us as busy.
      connection->expires_after(first_request ? config.header_timeout : config.idle_timeout);
      auto received = co_await stream.async_read_some(buffer.prepare(config.max_header_bytes + 1),
                                                      net::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      buffer.commit(received);
    }
    connection->busy = true;
    first_request = false;

    http::request_parser<http::empty_body> header_parser;
    header_parser.header_limit(config.max_header_bytes);
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    connection->expires_after(config.header_timeout);
    co_await http::async_read_header(stream, buffer, header_parser, net::redirect_error(use_awaitable, ec));
    if (ec == http::error::header_limit) {
      state.log->info("request head too large remote={} limit={}", remote, config.max_header_bytes);
      co_await write_status(*connection, 11, http::status::request_header_fields_too_large, "SIZE_INVALID",
                            "request head exceeds " + std::to_string(config.max_header_bytes) + " bytes",
                            config.io_timeout);
      co_return;
    }
    if (ec && is_parse_error(ec)) {
      // Every client probes https first (skopeo, podman, docker with an insecure registry): on the
      // plain port that is routine, not news. The 400 still goes out: Go clients turn it into
      // "server gave HTTP response to HTTPS client", which tells the user what to change.
      if (starts_tls_handshake(buffer))
        state.log->debug("tls handshake on a plain-http listener remote={}: answered 400", remote);
      else
        state.log->info("malformed request remote={} error=\"{}\"", remote, ec.message());
      co_await write_status(*connection, 11, http::status::bad_request, "BAD_REQUEST",
                            "malformed HTTP request: " + ec.message(), config.io_timeout);
      co_return;
    }
    if (ec) co_return;  // closed, reset or timed out between requests: nothing to answer

    // Requests for a route's host go to its upstream, on the main listener only.
    if (auto const* route = state.reverse_proxy && &router == &state.listeners.front()->router
                                ? state.reverse_proxy->match(header_parser.get())
                                : nullptr) {
      ClientSide side{connection->deadline, connection->body_buffer(), remote_ip};
      if (!co_await state.reverse_proxy->forward(stream, buffer, header_parser, *route, side)) co_return;
      continue;
    }

    auto started = Clock::now();
    Request request = make_request(header_parser, remote);
    unsigned version = header_parser.get().version();
    bool keep_alive = header_parser.get().keep_alive();
    bool expects_continue = false;
    if (auto expect = request.headers.get("Expect"))
      expects_continue = beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue");
    BodyReader<Stream> body(*connection, buffer, std::move(header_parser));

    Response response;
    bool client_failed = false;  // the client broke off its request: nothing to answer
    RequestNotes notes;
    notes.limiter = &state.limiter;
    bool const has_credentials = request.headers.get("Authorization").has_value();
    try {
      // Anonymous clients are limited by address before anything runs. A client with credentials
      // is charged to its user once authentication has verified who it is (note_user). Requests
      // whose credentials were not verified are charged below to a failures bucket of their
      // address, checked here first, so guessing passwords is limited too (before the costly
      // bcrypt), without anonymous traffic from a shared address starving signed-in users.
      if (state.limiter.enabled()) {
        auto wait = has_credentials ? state.limiter.check(failures_key) : state.limiter.take(remote_ip);
        if (wait) throw too_many_requests(*wait);
      }
      Reply reply = dispatch_noting(router, request, notes);
      if (auto* sink = std::get_if<std::unique_ptr<BodySink>>(&reply)) {
        if (expects_continue && !body.done()) {
          http::response<http::empty_body> go_on{http::status::continue_, version};
          connection->expires_after(config.io_timeout);
          co_await http::async_write(stream, go_on, use_awaitable);
        }
        beast::error_code body_error;
        while (!body.done()) {
          auto piece = co_await body.next(config.io_timeout, body_error, (*sink)->receive_buffer());
          if (body_error) break;
          if (!piece.empty()) (*sink)->write(piece);
        }
        if (!body_error) {
          response = (*sink)->finish();
        } else if (is_parse_error(body_error)) {
          throw HttpError(400, "BAD_REQUEST", "malformed request body: " + body_error.message());
        } else {
          client_failed = true;
          state.log->info("request body not delivered remote={} target={} received={} error=\"{}\"", remote,
                          request.target, body.received(), body_error.message());
        }
      } else {
        response = std::move(std::get<Response>(reply));
      }
    } catch (HttpError const& error) {
      response = error_response(error);
    } catch (std::exception const& error) {
      state.log->error("request failed method={} target={} error=\"{}\"", request.method_name, request.target,
                       error.what());
      response = error_response(HttpError(500, "INTERNAL_ERROR", "internal error; see the berth log"));
    }
    if (has_credentials && !notes.user && state.limiter.enabled()) state.limiter.take(failures_key);
    if (client_failed) co_return;  // destroys the sink, which discards what it received
    auto request_id =
        fmt::format("{}-{:x}", state.request_id_prefix, state.next_request_id.fetch_add(1, std::memory_order_relaxed));
    response.headers.set("X-Request-Id", request_id);

    // A body nobody read: drain a small one to keep the connection, else close after answering.
    if (!body.done() && body.remaining().value_or(0) <= drain_limit_bytes) {
      auto limit = body.received() + drain_limit_bytes;
      beast::error_code drain_error;
      while (!body.done() && !drain_error && body.received() <= limit)
        co_await body.next(config.io_timeout, drain_error);
    }
    bool unread_body = !body.done();
    if (unread_body || state.stopping) keep_alive = false;

    std::uint64_t bytes_out = 0;
    bool head_only = request.method == Method::head;
    int status = response.status;
    bool write_failed = false;
    try {
      bytes_out = co_await write_response(*connection, response, version, head_only, keep_alive, config.io_timeout);
    } catch (std::exception const& error) {
      write_failed = true;
      state.log->info("response not delivered remote={} target={} error=\"{}\"", remote, request.target, error.what());
    }
    auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    state.metrics->record_request(classify_route(request.path), status, body.received(), bytes_out, elapsed);
    if (status == 401 && has_credentials) state.metrics->record_auth_failure();
    if (config.access_log && state.access->should_log(spdlog::level::info)) {
      AccessRecord record{.time = std::chrono::system_clock::now(),
                          .remote_ip = remote_ip,
                          .user = notes.user ? std::string_view(*notes.user) : std::string_view(),
                          .method = request.method_name,
                          .path = request.path,
                          .query = request.query,
                          .repository = notes.repository,
                          .action = notes.action,
                          .status = status,
                          .bytes_in = body.received(),
                          .bytes_out = bytes_out,
                          .duration_ms = elapsed * 1000,
                          .request_id = request_id};
      state.access->info("{}", format_access_record(record));
    }
    if (write_failed) co_return;

    if (!keep_alive) {
      if (unread_body) {
        // Half-close and swallow what the client is still sending, so it reads our answer
        // rather than a reset. Under TLS too the bytes are discarded undecrypted, straight
        // from the TCP socket.
        auto& tcp_socket = connection->socket();
        tcp_socket.shutdown(tcp::socket::shutdown_send, ec);
        auto linger_until = Clock::now() + linger_time;
        connection->expires_at(linger_until);
        std::uint64_t discarded = 0;
        auto space = connection->body_buffer();
        while (discarded < linger_limit_bytes && Clock::now() < linger_until) {
          discarded += co_await tcp_socket.async_read_some(net::buffer(space.data(), space.size()),
                                                           net::redirect_error(use_awaitable, ec));
          if (ec) break;
        }
      }
      co_return;
    }
  }
}

template <class Stream>
void start_connection(Server::State& state, Router const& router, net::io_context& ioc,
                      std::shared_ptr<Connection<Stream>> connection) {
  {
    std::lock_guard lock(state.connections_mutex);
    state.connections.insert(connection);
  }
  state.metrics->connection_opened();
  net::co_spawn(ioc, watch_deadline(connection), net::detached);
  net::co_spawn(ioc, serve_http(state, router, connection), [&state, connection](std::exception_ptr failure) {
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (std::exception const& error) {
        state.log->warn("connection ended by error=\"{}\"", error.what());
      }
    }
    connection->close();
    state.remove(connection);
  });
}

// Counts a new connection from `peer`; false when that address already has the most allowed.
bool admit(Server::State& state, net::ip::address const& peer) {
  std::lock_guard lock(state.connections_mutex);
  auto& open = state.connections_by_peer[peer];
  if (state.config.max_connections_per_ip && open >= state.config.max_connections_per_ip) return false;
  ++open;
  return true;
}

// Closes a connection over the per-address cap right after accept. A plain-HTTP client first
// gets a 429 in the OCI error envelope: one non-blocking write into the fresh socket's empty send
// buffer, which cannot stall the acceptor. A TLS client just sees the connection close.
template <class Socket>  // the accepted socket, bound to its worker's io_context
void refuse_connection(Server::State& state, Socket& socket, bool tls, net::ip::address const& peer) {
  static std::string const answer = [] {
    std::string body = R"({"errors":[{"code":"TOOMANYREQUESTS","message":"too many connections from your address"}]})";
    return "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  beast::error_code ignored;
  if (!tls) {
    socket.non_blocking(true, ignored);
    socket.write_some(net::buffer(answer), ignored);
  }
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  ++state.refused_since_log;
  auto now = Clock::now();
  if (now - state.last_refusal_log >= refusal_log_interval) {
    state.log->warn("connection refused: too many from one address remote={} limit={} refused_since_last_warning={}",
                    peer.to_string(), state.config.max_connections_per_ip, state.refused_since_log);
    state.last_refusal_log = now;
    state.refused_since_log = 0;
  }
}

net::awaitable<void> accept_loop(Server::State& state, Server::State::Listener& listener) {
  auto& acceptor = listener.acceptor;
  for (;;) {
    auto& worker = *state.workers[state.next_worker++ % state.workers.size()];
    beast::error_code ec;
    auto socket = co_await acceptor.async_accept(worker.ioc, net::redirect_error(use_awaitable, ec));
    if (!acceptor.is_open() || ec == net::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors or similar: say so and back off instead of spinning.
      state.log->warn("accept failed error=\"{}\"", ec.message());
      net::steady_timer backoff(*state.control, 100ms);
      co_await backoff.async_wait(net::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto peer = socket.remote_endpoint(ec);
    if (ec) continue;  // gone already
    if (!admit(state, peer.address())) {
      refuse_connection(state, socket, listener.tls, peer.address());
      continue;
    }
    if (listener.tls) {
      std::shared_ptr<ssl::context> context;
      {
        std::lock_guard lock(state.tls_mutex);
        context = state.tls_context;
      }
      auto connection = std::make_shared<Connection<TlsStream>>(std::move(socket), std::move(context));
      connection->peer = peer.address();
      start_connection(state, listener.router, worker.ioc, std::move(connection));
    } else {
      auto connection = std::make_shared<Connection<tcp::socket>>(std::move(socket));
      connection->peer = peer.address();
      start_connection(state, listener.router, worker.ioc, std::move(connection));
    }
  }
}

net::awaitable<void> watch_signals(Server::State& state) {
  while (!state.stopped) {  // re-arming after the stop finished would keep run() from returning
    beast::error_code ec;
    int signal_number = co_await state.signals->async_wait(net::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    if (!state.stopping) {
      state.begin_stop("signal " + std::to_string(signal_number));
    } else {
      state.log->warn("second signal {}: closing all connections now", signal_number);
      state.close_connections(false);
    }
  }
}

// SIGHUP: the callback reloads what it reloads (the certificate); a failure is logged there.
net::awaitable<void> watch_reload_signal(Server::State& state) {
  while (!state.stopped) {
    beast::error_code ec;
    co_await state.reload_signals->async_wait(net::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    state.log->info("reload requested signal=SIGHUP");
    state.on_reload();
  }
}

// Beats only while every I/O thread runs the probe posted at the previous beat, so a thread stuck
// in a handler (or a lost event loop) stops the beats instead of hiding behind the others.
net::awaitable<void> heartbeat(Server::State& state) {
  while (!state.stopped) {
    bool all_answered = true;
    for (auto& worker : state.workers) all_answered = worker->probe_answered.exchange(false) && all_answered;
    if (all_answered) state.on_heartbeat();
    for (auto& worker : state.workers)
      net::post(worker->ioc, [answered = &worker->probe_answered] { answered->store(true); });
    state.heartbeat_timer->expires_after(state.heartbeat_interval);
    beast::error_code ec;
    co_await state.heartbeat_timer->async_wait(net::redirect_error(use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace

void Server::State::begin_stop(std::string const& reason) {
  if (stopping.exchange(true)) return;
  std::size_t open;
  {
    std::lock_guard lock(connections_mutex);
    open = connections.size();
  }
  log->info("stopping reason=\"{}\" open_connections={} grace_seconds={}", reason, open, config.shutdown_grace.count());
  if (on_stopping) on_stopping();
  beast::error_code ignored;
  for (auto& listener : listeners) listener->acceptor.close(ignored);
  close_connections(true);
  grace_timer->expires_after(config.shutdown_grace);
  grace_timer->async_wait([this](beast::error_code ec) {
    if (ec) return;
    log->warn("shutdown grace period over: closing the remaining connections");
    close_connections(false);
  });
  if (open == 0) finish_stop();
}

void Server::State::finish_stop() {
  stopped = true;
  grace_timer->cancel();
  if (heartbeat_timer) heartbeat_timer->cancel();
  if (signals) signals->cancel();
  if (reload_signals) reload_signals->cancel();
  for (auto& worker : workers) worker->keep_running.reset();  // let each thread run out of work
}

void Server::State::close_connections(bool idle_only) {
  std::lock_guard lock(connections_mutex);
  for (auto const& connection : connections) {
    // The connection's own thread decides: a request in progress is left to finish.
    net::post(connection->watchdog.get_executor(), [connection, idle_only] {
      if (!idle_only || !connection->busy) connection->close();
    });
  }
}

void Server::State::remove(std::shared_ptr<ConnectionBase> const& connection) {
  bool last;
  {
    std::lock_guard lock(connections_mutex);
    connections.erase(connection);
    last = connections.empty();
    if (auto open = connections_by_peer.find(connection->peer);
        open != connections_by_peer.end() && --open->second == 0)
      connections_by_peer.erase(open);
  }
  metrics->connection_closed();
  if (last && stopping) net::post(*control, [this] { finish_stop(); });
}

Server::State::Listener& Server::State::listen(std::string const& host, std::uint16_t port, Router router) {
  auto where = host + ":" + std::to_string(port);
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(workers.front()->ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) throw Error("cannot listen on " + where + ": cannot resolve host: " + ec.message());
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, port);
  auto fail = [&](std::string const& step) {
    std::string message = "cannot listen on " + where + ": " + step + ": " + ec.message();
    if (ec == net::error::address_in_use)
      message += "\nHINT: another process holds the port (see `ss -ltnp`); stop it or change server.listen";
    else if (ec == net::error::access_denied)
      message += "\nHINT: ports below 1024 need root or CAP_NET_BIND_SERVICE";
    return Error(message);
  };
  auto listener = std::make_unique<Listener>(*control);
  auto& acceptor = listener->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) throw fail("open");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) throw fail("bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw fail("listen");
  listener->address = format_endpoint(acceptor.local_endpoint());
  listener->router = std::move(router);
  listeners.push_back(std::move(listener));
  return *listeners.back();
}

Server::Server(ServerConfig config, Router router, std::shared_ptr<Metrics> metrics)
    : state_(std::make_unique<State>(std::move(config), std::move(metrics))) {
  auto& state = *state_;
  // Certificate problems are start-up errors, before the port is taken.
  if (state.config.tls.enabled) state.tls_context = std::make_shared<ssl::context>(make_tls_context(state.config.tls));
  auto& listener = state.listen(state.config.host, state.config.port, std::move(router));
  listener.tls = state.config.tls.enabled;
  state.port = listener.acceptor.local_endpoint().port();
}

std::string Server::add_plain_listener(std::string const& host, std::uint16_t port, Router router) {
  return state_->listen(host, port, std::move(router)).address;
}

Server::~Server() = default;

std::string Server::local_address() const {
  return state_->listeners.front()->address;
}

std::uint16_t Server::local_port() const {
  return state_->port;
}

void Server::reload_tls(TlsConfig const& tls) {
  if (!state_->tls_context) throw Error("cannot reload the TLS certificate: this server does not serve TLS");
  auto fresh = std::make_shared<ssl::context>(make_tls_context(tls));
  {
    std::lock_guard lock(state_->tls_mutex);
    state_->tls_context = std::move(fresh);
  }
  state_->log->info("tls certificate loaded certificate={} key={}", tls.cert_chain.string(), tls.private_key.string());
}

void Server::on_sighup(std::function<void()> callback) {
  state_->on_reload = std::move(callback);
  state_->reload_signals.emplace(*state_->control, SIGHUP);
}

void Server::stop_on_signals() {
  state_->signals.emplace(*state_->control, SIGTERM, SIGINT);
}

void Server::on_heartbeat(std::chrono::milliseconds interval, std::function<void()> callback) {
  state_->heartbeat_interval = interval;
  state_->on_heartbeat = std::move(callback);
  state_->heartbeat_timer.emplace(*state_->control);
}

void Server::on_stopping(std::function<void()> callback) {
  state_->on_stopping = std::move(callback);
}

std::size_t Server::connection_count() const {
  std::lock_guard lock(state_->connections_mutex);
  return state_->connections.size();
}

void Server::stop() {
  net::post(*state_->control, [state = state_.get()] { state->begin_stop("stop requested"); });
}

void Server::run() {
  auto& state = *state_;
  auto log_failure = [&state](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (std::exception const& error) {
      state.log->error("server task failed error=\"{}\"", error.what());
    }
  };
  for (auto& worker : state.workers) worker->keep_running.emplace(worker->ioc.get_executor());
  for (auto& listener : state.listeners) net::co_spawn(*state.control, accept_loop(state, *listener), log_failure);
  if (state.signals) net::co_spawn(*state.control, watch_signals(state), log_failure);
  if (state.reload_signals) net::co_spawn(*state.control, watch_reload_signal(state), log_failure);
  if (state.heartbeat_timer) net::co_spawn(*state.control, heartbeat(state), log_failure);
  auto const& main = *state.listeners.front();
  state.log->info("listening address={} threads={} tls={}", main.address, state.workers.size(),
                  main.tls ? "on" : "off");
  for (std::size_t listener_idx = 1; listener_idx < state.listeners.size(); ++listener_idx)
    state.log->info("plain http listener address={}", state.listeners[listener_idx]->address);

  std::vector<std::thread> pool;
  for (std::size_t worker_idx = 1; worker_idx < state.workers.size(); ++worker_idx)
    pool.emplace_back([&state, worker_idx] { state.workers[worker_idx]->ioc.run(); });
  state.workers.front()->ioc.run();
  for (auto& thread : pool) thread.join();
  state.log->info("stopped address={}", main.address);
}

void note_user(std::string const& user) {
  auto* notes = current_request_notes;
  if (!notes) return;
  notes->user = user;
  if (notes->limiter && notes->limiter->enabled()) {
    if (auto wait = notes->limiter->take("user:" + user)) throw too_many_requests(*wait);
  }
}

void note_access(std::string_view repository, std::string_view action) {
  if (auto* notes = current_request_notes) {
    notes->repository = repository;
    notes->action = action;
  }
}

}  // namespace berth::proxy

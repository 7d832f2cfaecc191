// The HTTP/1.1 server on Beast and C++20 coroutines. One strand per connection; the accept
// loop, signal watcher and shutdown timer share one more. Request logic lives in the Router's
// handlers; this file only moves bytes, enforces limits and timeouts, and shuts down gracefully.
#include "berth/proxy/server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "asio.hpp"
#include "berth/core/log.hpp"
#include "berth/core/version.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using net::use_awaitable;

constexpr std::size_t body_chunk_bytes = 64 * 1024;
// A body the handler did not read is drained to keep the connection, up to this size.
constexpr std::uint64_t drain_limit_bytes = 64 * 1024;
// After an error response to an unread body: how long and how much we read and discard so the
// client sees our response instead of a connection reset (a "lingering close").
constexpr auto linger_time = 2s;
constexpr std::uint64_t linger_limit_bytes = 16 * 1024 * 1024;

struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool busy = false;  // a request is being handled; only touched on the connection's strand
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

void close_now(Connection& connection) {
  beast::error_code ignored;
  connection.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  connection.stream.close();
}

}  // namespace

struct Server::State {
  State(ServerConfig cfg, Router routes)
      : config(std::move(cfg)),
        router(std::move(routes)),
        control(net::make_strand(ioc)),
        acceptor(control),
        grace_timer(control),
        log(logger("http")),
        access(logger("access")) {}

  ServerConfig config;
  Router router;
  net::io_context ioc;
  net::strand<net::io_context::executor_type> control;  // acceptor, signals, shutdown
  tcp::acceptor acceptor;
  std::optional<net::signal_set> signals;
  net::steady_timer grace_timer;
  std::function<void()> on_stopping;
  std::atomic<bool> stopping{false};
  bool stopped = false;  // every connection is gone; on `control`
  std::string address;
  std::uint16_t port = 0;

  mutable std::mutex connections_mutex;
  std::set<std::shared_ptr<Connection>> connections;

  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> access;

  // --- runs on `control` ---
  void begin_stop(std::string const& reason);
  void finish_stop();
  void close_connections(bool idle_only);

  // --- any thread ---
  void remove(std::shared_ptr<Connection> const& connection);
};

namespace {

template <class Stream>
net::awaitable<void> write_status(Stream& stream, unsigned version, http::status status, std::string const& code,
                                  std::string const& message, std::chrono::seconds timeout) {
  HttpError error(static_cast<int>(status), code, message);
  auto reply = error_response(error);
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::get<std::string>(reply.body);
  res.keep_alive(false);
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(timeout);
  beast::error_code ec;
  co_await http::async_write(stream, res, net::redirect_error(use_awaitable, ec));
}

// Feeds the request body to the sink. Returns false if the client failed to deliver it
// (disconnect, timeout, malformed chunking: `error` says which).
template <class Stream>
net::awaitable<bool> read_body(Stream& stream, beast::flat_buffer& buffer,
                               http::request_parser<http::buffer_body>& parser, std::vector<char>& chunk,
                               std::chrono::seconds timeout, BodySink* sink, std::uint64_t& bytes_in,
                               std::uint64_t max_bytes, beast::error_code& error) {
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::get_lowest_layer(stream).expires_after(timeout);
    co_await http::async_read_some(stream, buffer, parser, net::redirect_error(use_awaitable, error));
    if (error == http::error::need_buffer) error = {};
    if (error) co_return false;
    auto received = chunk.size() - parser.get().body().size;
    bytes_in += received;
    if (sink && received) sink->write({chunk.data(), received});
    if (bytes_in > max_bytes) co_return false;
  }
  co_return true;
}

// Writes the response; returns body bytes sent. Throws on a broken connection or a failing
// body source (the caller then drops the connection: the status line is already out).
template <class Stream>
net::awaitable<std::uint64_t> write_response(Stream& stream, Response& response, unsigned version, bool head_only,
                                             bool keep_alive, std::vector<char>& chunk, std::chrono::seconds timeout) {
  auto& lowest = beast::get_lowest_layer(stream);
  if (auto* text = std::get_if<std::string>(&response.body)) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    for (auto const& [name, value] : response.headers) res.insert(name, value);
    res.keep_alive(keep_alive);
    auto explicit_length = response.headers.get("Content-Length");
    auto length = text->size();
    res.body() = std::move(*text);
    if (!head_only || !explicit_length) res.content_length(length);
    lowest.expires_after(timeout);
    if (head_only) {
      http::response_serializer<http::string_body> serializer{res};
      co_await http::async_write_header(stream, serializer, use_awaitable);
      co_return 0;
    }
    co_await http::async_write(stream, res, use_awaitable);
    co_return length;
  }

  auto& source = std::get<std::unique_ptr<BodySource>>(response.body);
  http::response<http::buffer_body> res{static_cast<http::status>(response.status), version};
  for (auto const& [name, value] : response.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
  if (response.stream_length)
    res.content_length(*response.stream_length);
  else
    res.chunked(true);
  res.body().data = nullptr;
  res.body().more = true;
  http::response_serializer<http::buffer_body> serializer{res};
  lowest.expires_after(timeout);
  co_await http::async_write_header(stream, serializer, use_awaitable);
  if (head_only) co_return 0;

  std::uint64_t sent = 0;
  for (;;) {
    std::size_t produced = source->read(chunk);
    if (response.stream_length && sent + produced > *response.stream_length)
      throw Error("response body is longer than its announced " + std::to_string(*response.stream_length) + " bytes");
    res.body().data = produced ? chunk.data() : nullptr;
    res.body().size = produced;
    res.body().more = produced != 0;
    if (!produced && response.stream_length && sent != *response.stream_length)
      throw Error("response body ended after " + std::to_string(sent) + " of " +
                  std::to_string(*response.stream_length) + " bytes");
    beast::error_code ec;
    lowest.expires_after(timeout);
    co_await http::async_write(stream, serializer, net::redirect_error(use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw beast::system_error(ec);
    sent += produced;
    if (!produced) co_return sent;
  }
}

Request make_request(http::request_parser<http::empty_body> const& parser, std::string remote) {
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
  request.remote_address = std::move(remote);
  return request;
}

// Serves requests on one connection until the client leaves, an error ends it, or the server
// is stopping. Runs on the connection's strand.
template <class Stream>
net::awaitable<void> serve_http(Server::State& state, std::shared_ptr<Connection> connection, Stream& stream) {
  auto const& config = state.config;
  auto& lowest = beast::get_lowest_layer(stream);
  beast::error_code ec;
  auto remote_endpoint = lowest.socket().remote_endpoint(ec);
  std::string remote = ec ? std::string("unknown") : format_endpoint(remote_endpoint);
  beast::flat_buffer buffer;
  std::vector<char> chunk(body_chunk_bytes);
  bool first_request = true;

  while (!state.stopping) {
    connection->busy = false;
    if (buffer.size() == 0) {
      // Wait for the first byte of the next request under the idle timeout; only then does
      // the stricter header timeout start, and does a shutdown treat us as busy.
      lowest.expires_after(first_request ? config.header_timeout : config.idle_timeout);
      auto received = co_await lowest.async_read_some(buffer.prepare(config.max_header_bytes + 1),
                                                      net::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      buffer.commit(received);
    }
    connection->busy = true;
    first_request = false;

    http::request_parser<http::empty_body> header_parser;
    header_parser.header_limit(config.max_header_bytes);
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest.expires_after(config.header_timeout);
    co_await http::async_read_header(stream, buffer, header_parser, net::redirect_error(use_awaitable, ec));
    if (ec == http::error::header_limit) {
      state.log->info("request head too large remote={} limit={}", remote, config.max_header_bytes);
      co_await write_status(stream, 11, http::status::request_header_fields_too_large, "SIZE_INVALID",
                            "request head exceeds " + std::to_string(config.max_header_bytes) + " bytes",
                            config.io_timeout);
      co_return;
    }
    if (ec && is_parse_error(ec)) {
      state.log->info("malformed request remote={} error=\"{}\"", remote, ec.message());
      co_await write_status(stream, 11, http::status::bad_request, "BAD_REQUEST",
                            "malformed HTTP request: " + ec.message(), config.io_timeout);
      co_return;
    }
    if (ec) co_return;  // closed, reset or timed out between requests: nothing to answer

    auto started = std::chrono::steady_clock::now();
    Request request = make_request(header_parser, remote);
    unsigned version = header_parser.get().version();
    bool keep_alive = header_parser.get().keep_alive();
    bool expects_continue = false;
    if (auto expect = request.headers.get("Expect"))
      expects_continue = beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue");
    http::request_parser<http::buffer_body> parser(std::move(header_parser));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());

    Response response;
    std::uint64_t bytes_in = 0;
    bool client_failed = false;  // the client broke off its request: nothing to answer
    try {
      Reply reply = state.router.dispatch(request);
      if (auto* sink = std::get_if<std::unique_ptr<BodySink>>(&reply)) {
        if (expects_continue && !parser.is_done()) {
          http::response<http::empty_body> go_on{http::status::continue_, version};
          lowest.expires_after(config.io_timeout);
          co_await http::async_write(stream, go_on, use_awaitable);
        }
        beast::error_code body_error;
        if (co_await read_body(stream, buffer, parser, chunk, config.io_timeout, sink->get(), bytes_in,
                               std::numeric_limits<std::uint64_t>::max(), body_error)) {
          response = (*sink)->finish();
        } else if (is_parse_error(body_error)) {
          throw HttpError(400, "BAD_REQUEST", "malformed request body: " + body_error.message());
        } else {
          client_failed = true;
          state.log->info("request body not delivered remote={} target={} received={} error=\"{}\"", remote,
                          request.target, bytes_in, body_error.message());
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
    if (client_failed) co_return;  // destroys the sink, which discards what it received

    // A body nobody read: drain a small one to keep the connection, else close after answering.
    bool unread_body = !parser.is_done();
    if (unread_body && (!request.content_length || *request.content_length - bytes_in <= drain_limit_bytes)) {
      beast::error_code drain_error;
      if (co_await read_body(stream, buffer, parser, chunk, config.io_timeout, nullptr, bytes_in,
                             bytes_in + drain_limit_bytes, drain_error))
        unread_body = false;
    }
    if (unread_body) keep_alive = false;
    if (state.stopping) keep_alive = false;

    std::uint64_t bytes_out = 0;
    bool head_only = request.method == Method::head;
    int status = response.status;
    std::exception_ptr write_failure;
    try {
      bytes_out = co_await write_response(stream, response, version, head_only, keep_alive, chunk, config.io_timeout);
    } catch (std::exception const& error) {
      write_failure = std::current_exception();
      state.log->info("response not delivered remote={} target={} error=\"{}\"", remote, request.target, error.what());
    }
    auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
    state.access->info("{} \"{} {}\" {} in={} out={} ms={:.1f}", remote, request.method_name, request.target, status,
                       bytes_in, bytes_out, elapsed.count());
    if (write_failure) co_return;

    if (!keep_alive) {
      if (unread_body) {
        // Half-close and swallow what the client is still sending, so it reads our answer
        // rather than a reset.
        lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
        auto deadline = std::chrono::steady_clock::now() + linger_time;
        std::uint64_t discarded = 0;
        while (discarded < linger_limit_bytes && std::chrono::steady_clock::now() < deadline) {
          lowest.expires_at(deadline);
          discarded += co_await lowest.async_read_some(net::buffer(chunk), net::redirect_error(use_awaitable, ec));
          if (ec) break;
        }
      }
      co_return;
    }
  }
}

net::awaitable<void> accept_loop(Server::State& state) {
  for (;;) {
    beast::error_code ec;
    auto socket =
        co_await state.acceptor.async_accept(net::make_strand(state.ioc), net::redirect_error(use_awaitable, ec));
    if (!state.acceptor.is_open() || ec == net::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors or similar: say so and back off instead of spinning.
      state.log->warn("accept failed error=\"{}\"", ec.message());
      net::steady_timer backoff(state.control, 100ms);
      co_await backoff.async_wait(net::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>(std::move(socket));
    {
      std::lock_guard lock(state.connections_mutex);
      state.connections.insert(connection);
    }
    net::co_spawn(connection->stream.get_executor(), serve_http(state, connection, connection->stream),
                  [&state, connection](std::exception_ptr failure) {
                    if (failure) {
                      try {
                        std::rethrow_exception(failure);
                      } catch (std::exception const& error) {
                        state.log->warn("connection ended by error=\"{}\"", error.what());
                      }
                    }
                    state.remove(connection);
                  });
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
  acceptor.close(ignored);
  close_connections(true);
  grace_timer.expires_after(config.shutdown_grace);
  grace_timer.async_wait([this](beast::error_code ec) {
    if (ec) return;
    log->warn("shutdown grace period over: closing the remaining connections");
    close_connections(false);
  });
  if (open == 0) finish_stop();
}

void Server::State::finish_stop() {
  stopped = true;
  grace_timer.cancel();
  if (signals) signals->cancel();
}

void Server::State::close_connections(bool idle_only) {
  std::lock_guard lock(connections_mutex);
  for (auto const& connection : connections) {
    // The connection's own strand decides: a request in progress is left to finish.
    net::post(connection->stream.get_executor(), [connection, idle_only] {
      if (!idle_only || !connection->busy) close_now(*connection);
    });
  }
}

void Server::State::remove(std::shared_ptr<Connection> const& connection) {
  bool last;
  {
    std::lock_guard lock(connections_mutex);
    connections.erase(connection);
    last = connections.empty();
  }
  if (last && stopping) net::post(control, [this] { finish_stop(); });
}

Server::Server(ServerConfig config, Router router)
    : state_(std::make_unique<State>(std::move(config), std::move(router))) {
  auto& state = *state_;
  auto where = state.config.host + ":" + std::to_string(state.config.port);
  beast::error_code ec;
  auto address = net::ip::make_address(state.config.host, ec);
  if (ec) {
    tcp::resolver resolver(state.ioc);
    auto results = resolver.resolve(state.config.host, std::to_string(state.config.port), ec);
    if (ec || results.empty()) throw Error("cannot listen on " + where + ": cannot resolve host: " + ec.message());
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, state.config.port);
  auto fail = [&](std::string const& step) {
    std::string message = "cannot listen on " + where + ": " + step + ": " + ec.message();
    if (ec == net::error::address_in_use)
      message += "\nHINT: another process holds the port (see `ss -ltnp`); stop it or change server.listen";
    else if (ec == net::error::access_denied)
      message += "\nHINT: ports below 1024 need root or CAP_NET_BIND_SERVICE";
    return Error(message);
  };
  state.acceptor.open(endpoint.protocol(), ec);
  if (ec) throw fail("open");
  state.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  state.acceptor.bind(endpoint, ec);
  if (ec) throw fail("bind");
  state.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw fail("listen");
  auto local = state.acceptor.local_endpoint();
  state.address = format_endpoint(local);
  state.port = local.port();
}

Server::~Server() = default;

std::string Server::local_address() const {
  return state_->address;
}

std::uint16_t Server::local_port() const {
  return state_->port;
}

void Server::stop_on_signals() {
  state_->signals.emplace(state_->control, SIGTERM, SIGINT);
}

void Server::on_stopping(std::function<void()> callback) {
  state_->on_stopping = std::move(callback);
}

std::size_t Server::connection_count() const {
  std::lock_guard lock(state_->connections_mutex);
  return state_->connections.size();
}

void Server::stop() {
  net::post(state_->control, [state = state_.get()] { state->begin_stop("stop requested"); });
}

void Server::run() {
  auto& state = *state_;
  unsigned threads = state.config.threads ? state.config.threads : std::max(2u, std::thread::hardware_concurrency());
  auto log_failure = [&state](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (std::exception const& error) {
      state.log->error("server task failed error=\"{}\"", error.what());
    }
  };
  net::co_spawn(state.control, accept_loop(state), log_failure);
  if (state.signals) net::co_spawn(state.control, watch_signals(state), log_failure);
  state.log->info("listening address={} threads={}", state.address, threads);

  std::vector<std::thread> pool;
  for (unsigned thread_idx = 1; thread_idx < threads; ++thread_idx) pool.emplace_back([&state] { state.ioc.run(); });
  state.ioc.run();
  for (auto& thread : pool) thread.join();
  state.log->info("stopped address={}", state.address);
}

}  // namespace berth::proxy

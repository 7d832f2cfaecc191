// The reverse proxy for `routes:`. One upstream connection per request (Connection: close), so
// a slow or broken app can never poison a pool shared with other clients. Bodies go through
// the client connection's one buffer in chunks, in both directions, so a body of any size costs
// the same memory. Request and response run one after the other, as HTTP/1.1 allows: the whole
// request body goes up before the answer is read. After a 101 Switching Protocols (WebSocket),
// bytes are relayed both ways until either side closes or the route's timeout passes in silence.
#include "reverse_proxy.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <type_traits>

#include <spdlog/fmt/fmt.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "access_log.hpp"
#include "berth/core/log.hpp"
#include "berth/core/random.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using net::use_awaitable;
using Clock = std::chrono::steady_clock;

constexpr std::size_t read_room_bytes = 64 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return result;
}

// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus every header the
// Connection header names.
bool is_hop_by_hop(std::string_view name, std::vector<std::string> const& named_by_connection) {
  static constexpr std::string_view fixed[] = {
      "connection", "keep-alive",        "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
      "trailer",    "transfer-encoding", "upgrade"};
  for (auto hop : fixed)
    if (iequals(name, hop)) return true;
  for (auto const& named : named_by_connection)
    if (iequals(name, named)) return true;
  return false;
}

template <class Fields>
std::vector<std::string> connection_tokens(Fields const& fields) {
  std::vector<std::string> tokens;
  for (auto const& field : fields) {
    if (field.name() != http::field::connection) continue;
    for (auto token : http::token_list(field.value()))
      tokens.push_back(lowercase(std::string_view(token.data(), token.size())));
  }
  return tokens;
}

bool has_token(std::vector<std::string> const& tokens, std::string_view token) {
  return std::find(tokens.begin(), tokens.end(), token) != tokens.end();
}

std::string_view view(beast::string_view text) {
  return {text.data(), text.size()};
}

bool is_timeout(beast::error_code const& ec) {
  return ec == beast::error::timeout;
}

// Moves bytes from `from` to `to` until either fails or `stop` is set; each transfer pushes the
// client connection's deadline out by `idle`, so a silent tunnel is closed by the server.
template <class From, class To>
net::awaitable<void> relay(From& from, To& to, std::span<char> space, Clock::time_point& deadline,
                           std::chrono::seconds idle, bool const& stop, std::uint64_t& moved) {
  while (!stop) {
    beast::error_code ec;
    auto got =
        co_await from.async_read_some(net::buffer(space.data(), space.size()), net::redirect_error(use_awaitable, ec));
    if (ec || stop) co_return;
    deadline = Clock::now() + idle;
    co_await net::async_write(to, net::buffer(space.data(), got), net::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    moved += got;
    deadline = Clock::now() + idle;
  }
}

// Answers the client with one of berth's own errors (JSON envelope); returns whether the
// connection may carry another request.
template <class Stream>
net::awaitable<bool> write_error(Stream& client, unsigned version, int code, std::string error_code,
                                 std::string message, std::string request_id, bool keep_alive) {
  auto reply = error_response(HttpError(code, std::move(error_code), message));
  http::response<http::string_body> res{static_cast<http::status>(code), version};
  res.set(http::field::content_type, "application/json");
  res.set("X-Request-Id", request_id);
  res.body() = std::get<std::string>(reply.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(client, res, net::redirect_error(use_awaitable, ec));
  co_return !ec && keep_alive;
}

}  // namespace

std::string Route::upstream_url() const {
  bool const ipv6 = upstream_host.find(':') != std::string::npos;
  return "http://" + (ipv6 ? "[" + upstream_host + "]" : upstream_host) + ":" + std::to_string(upstream_port);
}

Route const* match_route(std::vector<Route> const& routes, std::string_view host_header, std::string_view path) {
  // "app.example.com:8443" and "[::1]:5000" name the hosts app.example.com and ::1.
  auto host = host_header;
  if (host.starts_with('[')) {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // fully qualified "example.com."
  Route const* best = nullptr;
  for (auto const& route : routes) {
    if (!iequals(route.host, host)) continue;
    auto const& prefix = route.path_prefix;
    if (!path.starts_with(prefix)) continue;
    // "/app" takes /app and /app/x, not /apple.
    bool const at_boundary = prefix.ends_with('/') || path.size() == prefix.size() || path[prefix.size()] == '/';
    if (!at_boundary) continue;
    if (!best || prefix.size() > best->path_prefix.size()) best = &route;
  }
  return best;
}

std::string upstream_target(Route const& route, std::string_view target) {
  if (!route.strip_prefix || route.path_prefix == "/") return std::string(target);
  auto prefix = std::string_view(route.path_prefix);
  if (prefix.ends_with('/')) prefix.remove_suffix(1);  // keep the slash that starts the rest
  auto rest = target.substr(std::min(prefix.size(), target.size()));
  if (rest.empty() || rest.front() != '/') return "/" + std::string(rest);
  return std::string(rest);
}

std::optional<std::string> probe_upstream(Route const& route, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code result = net::error::would_block;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(route.upstream_host, std::to_string(route.upstream_port), ec);
  if (ec) return "cannot resolve " + route.upstream_host + ": " + ec.message();
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&result](beast::error_code error, tcp::endpoint const&) { result = error; });
  ioc.run();
  if (!result) return std::nullopt;
  if (is_timeout(result)) return "no answer within " + std::to_string(timeout.count()) + "ms";
  return result.message();
}

ReverseProxy::ReverseProxy(ServerConfig const& config, std::shared_ptr<Metrics> metrics)
    : routes_(config.routes),
      trusted_proxies_(config.trusted_proxies),
      io_timeout_(config.io_timeout),
      access_log_(config.access_log),
      metrics_(std::move(metrics)),
      log_(logger("http")),
      access_(logger("access")),
      request_id_prefix_(random_hex(4)) {}

Route const* ReverseProxy::match(http::request_header<> const& head) const {
  auto host = head[http::field::host];
  if (host.empty()) return nullptr;
  auto target = view(head.target());
  return match_route(routes_, view(host), target.substr(0, target.find('?')));
}

template <class Stream>
net::awaitable<bool> ReverseProxy::forward(Stream& client, beast::flat_buffer& buffer,
                                           http::request_parser<http::empty_body>& head, Route const& route,
                                           ClientSide side) {
  constexpr bool client_tls = !std::is_same_v<Stream, tcp::socket>;
  auto const started = Clock::now();
  auto request_id = fmt::format("{}-p{:x}", request_id_prefix_, next_request_id_.fetch_add(1));
  // The connection's watchdog must not fire while we wait on the upstream, whose own timeout
  // comes first and becomes a 504.
  auto hold_client = [&side](std::chrono::seconds how_long) { side.deadline = Clock::now() + how_long; };
  auto const upstream_wait = route.timeout + 5s;

  http::request_parser<http::buffer_body> request(std::move(head));
  request.body_limit(std::numeric_limits<std::uint64_t>::max());
  auto const& in = request.get();
  auto const client_version = in.version();
  bool client_keep_alive = in.keep_alive();
  auto const tokens = connection_tokens(in);
  bool const upgrade = has_token(tokens, "upgrade") && !in[http::field::upgrade].empty();
  bool const expects_continue = iequals(view(in[http::field::expect]), "100-continue");
  std::string const target(view(in.target()));
  std::string const method(view(in.method_string()));
  std::string const path = target.substr(0, target.find('?'));
  std::string const query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);

  // The request as the upstream sees it: the same method, end-to-end headers and Host, and
  // who really asked (X-Forwarded-*), over HTTP/1.1 on a connection used once.
  http::request<http::buffer_body> out;
  out.version(11);
  out.method_string(in.method_string());
  out.target(upstream_target(route, target));
  std::string forwarded_for;
  for (auto const& field : in) {
    auto name = view(field.name_string());
    if (is_hop_by_hop(name, tokens) || field.name() == http::field::expect) continue;
    if (iequals(name, "X-Forwarded-For")) {
      bool const trusted =
          std::find(trusted_proxies_.begin(), trusted_proxies_.end(), side.remote_ip) != trusted_proxies_.end();
      if (trusted) forwarded_for += (forwarded_for.empty() ? "" : ", ") + std::string(view(field.value()));
      continue;
    }
    if (iequals(name, "X-Forwarded-Proto") || iequals(name, "X-Forwarded-Host") || iequals(name, "X-Request-Id"))
      continue;
    out.insert(field.name_string(), field.value());
  }
  out.set("X-Forwarded-For", (forwarded_for.empty() ? "" : forwarded_for + ", ") + side.remote_ip);
  out.set("X-Forwarded-Proto", client_tls ? "https" : "http");
  out.set("X-Forwarded-Host", in[http::field::host]);
  out.set("X-Request-Id", request_id);
  if (upgrade) {
    out.set(http::field::connection, "Upgrade");
    out.set(http::field::upgrade, in[http::field::upgrade]);
  } else {
    out.set(http::field::connection, "close");
  }
  bool const has_body = !request.is_done();
  if (has_body && request.content_length())
    out.content_length(*request.content_length());
  else if (has_body)
    out.chunked(true);

  int status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool head_sent = false;  // past this point a failure can only close the client connection
  bool keep_client = false;
  auto space = side.buffer;

  beast::tcp_stream upstream(co_await net::this_coro::executor);
  beast::error_code ec;
  std::string failure;  // why the exchange failed, for the log; empty when it did not

  // Connect, resolving a host name each time (a home network's names change rarely but do).
  hold_client(upstream_wait);
  tcp::resolver resolver(upstream.get_executor());
  auto endpoints = co_await resolver.async_resolve(route.upstream_host, std::to_string(route.upstream_port),
                                                   net::redirect_error(use_awaitable, ec));
  if (!ec) {
    upstream.expires_after(route.timeout);
    co_await upstream.async_connect(endpoints, net::redirect_error(use_awaitable, ec));
  }
  if (ec) {
    failure = "cannot connect: " + ec.message();
    log_->warn("upstream unreachable host={} upstream={} error=\"{}\" request_id={}", route.host, route.upstream_url(),
               is_timeout(ec) ? "timed out" : ec.message(), request_id);
    status = is_timeout(ec) ? 504 : 502;
    auto message =
        "upstream " + route.upstream_url() + " for " + route.host +
        (is_timeout(ec) ? " did not accept a connection within " + std::to_string(route.timeout.count()) + "s"
                        : " is unreachable: " + ec.message());
    hold_client(io_timeout_);
    keep_client =
        co_await write_error(client, client_version, status, is_timeout(ec) ? "GATEWAY_TIMEOUT" : "BAD_GATEWAY",
                             message, request_id, client_keep_alive && request.is_done());
  }

  // The request head, then its body chunk by chunk, as the client sends it.
  bool upstream_write_failed = false;
  if (failure.empty()) {
    http::request_serializer<http::buffer_body> serializer{out};
    out.body().data = nullptr;
    out.body().more = has_body;
    upstream.expires_after(route.timeout);
    co_await http::async_write_header(upstream, serializer, net::redirect_error(use_awaitable, ec));
    if (ec) upstream_write_failed = true;
    if (!ec && has_body && expects_continue) {
      http::response<http::empty_body> go_on{http::status::continue_, client_version};
      hold_client(io_timeout_);
      co_await http::async_write(client, go_on, net::redirect_error(use_awaitable, ec));
      if (ec) failure = "client went away: " + ec.message();
    }
    if (!request.is_done()) buffer.reserve(read_room_bytes);
    while (failure.empty() && !upstream_write_failed && !request.is_done()) {
      request.get().body().data = space.data();
      request.get().body().size = space.size();
      hold_client(io_timeout_);
      co_await http::async_read(client, buffer, request, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        failure = "request body not delivered: " + ec.message();
        break;
      }
      auto got = space.size() - request.get().body().size;
      bytes_in += got;
      out.body().data = space.data();
      out.body().size = got;
      out.body().more = true;
      hold_client(upstream_wait);
      upstream.expires_after(route.timeout);
      co_await http::async_write(upstream, serializer, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) upstream_write_failed = true;
    }
    if (failure.empty() && !upstream_write_failed && has_body) {
      out.body().data = nullptr;
      out.body().size = 0;
      out.body().more = false;
      upstream.expires_after(route.timeout);
      co_await http::async_write(upstream, serializer, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) upstream_write_failed = true;
    }
    // An upstream that stopped reading may still have answered (413 before the body, say);
    // try to read that answer, and do not reuse the client connection after it.
    if (upstream_write_failed) client_keep_alive = false;
    if (!failure.empty()) client_keep_alive = false;
  }

  // The response head; informational answers other than 101 are dropped.
  // Beast reads into a flat buffer only as much as it has room for: without room, 512 bytes per
  // read (64 KiB is Beast's largest read).
  beast::flat_buffer upstream_buffer;
  upstream_buffer.reserve(read_room_bytes);
  std::optional<http::response_parser<http::buffer_body>> response;
  if (failure.empty()) {
    for (;;) {
      response.emplace();
      response->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (in.method() == http::verb::head) response->skip(true);
      hold_client(upstream_wait);
      upstream.expires_after(route.timeout);
      co_await http::async_read_header(upstream, upstream_buffer, *response, net::redirect_error(use_awaitable, ec));
      if (ec) break;
      auto code = response->get().result_int();
      if (code >= 100 && code < 200 && code != 101) continue;
      if (code == 101 && !upgrade) ec = http::error::bad_value;
      break;
    }
    if (ec) {
      failure = "no response: " + ec.message();
      log_->warn("upstream failed host={} upstream={} error=\"{}\" request_id={}", route.host, route.upstream_url(),
                 is_timeout(ec) ? "timed out" : ec.message(), request_id);
      status = is_timeout(ec) ? 504 : 502;
      auto message = "upstream " + route.upstream_url() + " for " + route.host +
                     (is_timeout(ec) ? " did not answer within " + std::to_string(route.timeout.count()) + "s"
                                     : " did not send a valid response: " + ec.message());
      hold_client(io_timeout_);
      keep_client =
          co_await write_error(client, client_version, status, is_timeout(ec) ? "GATEWAY_TIMEOUT" : "BAD_GATEWAY",
                               message, request_id, client_keep_alive && request.is_done());
    }
  }

  if (failure.empty()) {
    auto& got = response->get();
    status = got.result_int();
    bool const switching = status == 101;
    bool const head_only = in.method() == http::verb::head;
    bool const body_follows = !response->is_done() && !head_only;
    auto const upstream_tokens = connection_tokens(got);
    http::response<http::buffer_body> res{got.result(), client_version};
    res.reason(got.reason());
    for (auto const& field : got) {
      auto name = view(field.name_string());
      if (is_hop_by_hop(name, upstream_tokens)) continue;
      if (body_follows && field.name() == http::field::content_length) continue;  // set below
      res.insert(field.name_string(), field.value());
    }
    res.set("X-Request-Id", request_id);
    if (switching) {
      res.set(http::field::connection, "Upgrade");
      res.set(http::field::upgrade, got[http::field::upgrade]);
    } else {
      if (body_follows && response->content_length())
        res.content_length(*response->content_length());
      else if (body_follows && client_version >= 11)
        res.chunked(true);
      else if (body_follows)
        client_keep_alive = false;  // HTTP/1.0 and a body of unknown length: ends at close
      if (!request.is_done()) client_keep_alive = false;
      res.keep_alive(client_keep_alive);
    }
    http::response_serializer<http::buffer_body> serializer{res};
    res.body().data = nullptr;
    res.body().more = body_follows;
    hold_client(io_timeout_);
    co_await http::async_write_header(client, serializer, net::redirect_error(use_awaitable, ec));
    head_sent = true;
    if (ec) failure = "client went away: " + ec.message();

    while (failure.empty() && body_follows && !response->is_done()) {
      got.body().data = space.data();
      got.body().size = space.size();
      hold_client(upstream_wait);
      upstream.expires_after(route.timeout);
      co_await http::async_read(upstream, upstream_buffer, *response, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        failure = "response body broke off: " + ec.message();
        log_->warn("upstream response broke off host={} upstream={} sent={} error=\"{}\" request_id={}", route.host,
                   route.upstream_url(), bytes_out, is_timeout(ec) ? "timed out" : ec.message(), request_id);
        break;
      }
      auto produced = space.size() - got.body().size;
      res.body().data = space.data();
      res.body().size = produced;
      res.body().more = true;
      hold_client(io_timeout_);
      co_await http::async_write(client, serializer, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) failure = "client went away: " + ec.message();
      bytes_out += produced;
    }
    if (failure.empty() && body_follows) {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
      hold_client(io_timeout_);
      co_await http::async_write(client, serializer, net::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) failure = "client went away: " + ec.message();
    }
    keep_client = failure.empty() && client_keep_alive && !switching;

    if (failure.empty() && switching) {
      // Bytes that came along with either head belong to the new protocol.
      if (upstream_buffer.size() > 0) {
        hold_client(io_timeout_);
        auto n = co_await net::async_write(client, upstream_buffer.data(), net::redirect_error(use_awaitable, ec));
        bytes_out += n;
      }
      if (!ec && buffer.size() > 0) {
        upstream.expires_after(route.timeout);
        auto n = co_await net::async_write(upstream, buffer.data(), net::redirect_error(use_awaitable, ec));
        buffer.consume(n);
        bytes_in += n;
      }
      if (!ec) {
        // One direction runs in a coroutine of its own, the other here; whichever ends first
        // stops the other: closing the upstream ends the one, cancelling the client's read the other.
        upstream.expires_never();
        auto& upstream_socket = upstream.socket();
        auto& client_socket = beast::get_lowest_layer(client);
        auto half = space.size() / 2;
        bool stop = false;
        bool down_finished = false;
        net::steady_timer wake(upstream.get_executor(), Clock::time_point::max());
        hold_client(route.timeout);
        net::co_spawn(
            upstream.get_executor(),
            relay(upstream_socket, client, space.subspan(0, half), side.deadline, route.timeout, stop, bytes_out),
            [&](std::exception_ptr) {
              down_finished = true;
              stop = true;
              beast::error_code ignored;
              client_socket.cancel(ignored);
              wake.cancel();
            });
        co_await relay(client, upstream_socket, space.subspan(half), side.deadline, route.timeout, stop, bytes_in);
        stop = true;
        upstream_socket.shutdown(tcp::socket::shutdown_both, ec);
        upstream_socket.close(ec);
        while (!down_finished) co_await wake.async_wait(net::redirect_error(use_awaitable, ec));
      }
    }
  }

  auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  if (status != 0) metrics_->record_request(RouteClass::upstream, status, bytes_in, bytes_out, elapsed);
  if (!failure.empty() && head_sent)
    log_->info("proxied exchange ended early host={} error=\"{}\" request_id={}", route.host, failure, request_id);
  if (status != 0 && access_log_ && access_->should_log(spdlog::level::info)) {
    AccessRecord record{.time = std::chrono::system_clock::now(),
                        .remote_ip = side.remote_ip,
                        .method = method,
                        .path = path,
                        .query = query,
                        .status = status,
                        .bytes_in = bytes_in,
                        .bytes_out = bytes_out,
                        .duration_ms = elapsed * 1000,
                        .request_id = request_id};
    access_->info("{}", format_access_record(record));
  }
  co_return keep_client;
}

template net::awaitable<bool> ReverseProxy::forward(tcp::socket&, beast::flat_buffer&,
                                                    http::request_parser<http::empty_body>&, Route const&, ClientSide);
template net::awaitable<bool> ReverseProxy::forward(TlsStream&, beast::flat_buffer&,
                                                    http::request_parser<http::empty_body>&, Route const&, ClientSide);

}  // namespace berth::proxy

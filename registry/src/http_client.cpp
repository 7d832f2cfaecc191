// The blocking HTTP/1.1 client on Beast. Each connection owns a small io_context and every step
// runs as an asynchronous operation driven to completion on the calling thread: that is what
// gives Beast's tcp_stream deadlines (the synchronous calls have none). Bodies from files go
// out in 1 MiB pieces, each with its own deadline, so a stalled peer is detected per piece
// and a 50 GB layer needs no more memory than a small one.
#include "berth/registry/http_client.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <variant>

namespace berth::registry::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_ip_literal(std::string const& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

constexpr char network_hint[] =
    "\nHINT: check the address and that the registry is reachable from this host; the command can be run again";

// Runs the asynchronous operation `start` begins on `ioc` until it completes; returns its error.
template <class Start>
beast::error_code complete(net::io_context& ioc, Start&& start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

std::string describe(beast::error_code const& ec) {
  if (ec == beast::error::timeout) return "timed out";
  return ec.message();
}

struct FileDescriptor {
  explicit FileDescriptor(int descriptor) : fd(descriptor) {}
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  FileDescriptor(FileDescriptor const&) = delete;
  FileDescriptor& operator=(FileDescriptor const&) = delete;
  int fd;
};

struct Connection {
  net::io_context ioc;
  std::variant<std::monostate, beast::tcp_stream, ssl::stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  std::string origin;
  std::string authority;
};

}  // namespace

Url Url::parse(std::string_view text) {
  Url url;
  auto const bad = [&] {
    return Error("bad url \"" + std::string(text) + "\": expected http://HOST[:PORT]/... or https://HOST[:PORT]/...");
  };
  auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) throw bad();
  url.scheme = std::string(text.substr(0, scheme_end));
  for (auto& c : url.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme != "http" && url.scheme != "https") throw bad();
  auto rest = text.substr(scheme_end + 3);
  auto path_start = rest.find_first_of("/?");
  auto authority = rest.substr(0, path_start);
  url.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (url.target.front() == '?') url.target.insert(0, "/");
  std::string_view port_text;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad();
    url.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw bad();
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty() || url.host.find_first_of(" \t\r\n/@") != std::string::npos) throw bad();
  if (port_text.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
  } else {
    unsigned value = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') throw bad();
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (value > 65535) throw bad();
    }
    if (value == 0) throw bad();
    url.port = static_cast<std::uint16_t>(value);
  }
  return url;
}

std::string Url::authority() const {
  auto host_part = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool const default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return default_port ? host_part : host_part + ":" + std::to_string(port);
}

std::string Url::origin() const {
  return scheme + "://" + authority();
}

std::optional<std::string> Response::header(std::string_view name) const {
  for (auto const& [field, value] : headers)
    if (iequals(field, name)) return value;
  return std::nullopt;
}

std::vector<std::string> Response::headers_named(std::string_view name) const {
  std::vector<std::string> values;
  for (auto const& [field, value] : headers)
    if (iequals(field, name)) values.push_back(value);
  return values;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  auto length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<unsigned char const*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

struct Client::State {
  ClientConfig config;
  ssl::context tls{ssl::context::tls_client};
  std::mutex mutex;
  std::multimap<std::string, std::unique_ptr<Connection>> idle;
  std::atomic<std::uint64_t> opened{0};

  std::unique_ptr<Connection> take_idle(std::string const& origin) {
    std::lock_guard lock(mutex);
    auto found = idle.find(origin);
    if (found == idle.end()) return nullptr;
    auto connection = std::move(found->second);
    idle.erase(found);
    return connection;
  }

  void give_back(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex);
    if (idle.size() >= 32) return;  // enough for every worker; close the rest
    auto origin = connection->origin;
    idle.emplace(std::move(origin), std::move(connection));
  }

  std::unique_ptr<Connection> open(Url const& url) {
    auto connection = std::make_unique<Connection>();
    connection->origin = url.origin();
    connection->authority = url.authority();
    auto const where = url.host + ":" + std::to_string(url.port);
    tcp::resolver resolver(connection->ioc);
    tcp::resolver::results_type endpoints;
    auto ec = complete(connection->ioc, [&](auto handler) {
      resolver.async_resolve(url.host, std::to_string(url.port),
                             [&endpoints, handler](beast::error_code e, tcp::resolver::results_type results) mutable {
                               endpoints = std::move(results);
                               handler(e);
                             });
    });
    if (ec) throw TransportError("cannot resolve " + url.host + ": " + describe(ec) + network_hint);
    beast::tcp_stream tcp_stream(connection->ioc);
    tcp_stream.expires_after(config.connect_timeout);
    ec = complete(connection->ioc, [&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
    if (ec) throw TransportError("cannot connect to " + where + ": " + describe(ec) + network_hint);
    tcp_stream.socket().set_option(tcp::no_delay(true));
    ++opened;
    if (url.scheme == "http") {
      connection->stream.emplace<beast::tcp_stream>(std::move(tcp_stream));
      return connection;
    }
    auto& stream = connection->stream.emplace<ssl::stream<beast::tcp_stream>>(std::move(tcp_stream), tls);
    auto* handle = stream.native_handle();
    auto* param = SSL_get0_param(handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_literal(url.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(handle, url.host.c_str());  // SNI: only for names, never for IPs
      X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
    }
    beast::get_lowest_layer(stream).expires_after(config.connect_timeout);
    ec = complete(connection->ioc, [&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
    if (ec) {
      auto const verify = SSL_get_verify_result(handle);
      if (verify != X509_V_OK)
        throw TransportError("tls handshake with " + where + " failed: the certificate is not trusted (" +
                             X509_verify_cert_error_string(verify) +
                             ")\nHINT: give the file of the CA that signed it as the target's ca_file (or --ca-file), "
                             "or add that CA to the system store");
      // What OpenSSL says when the answer to its ClientHello is not TLS: usually "HTTP/1.1 400".
      if (ec.category() == boost::asio::error::get_ssl_category() &&
          (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER ||
           ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_PACKET_LENGTH_TOO_LONG))
        throw ProtocolMismatch("tls handshake with " + where + " failed: this registry speaks plain HTTP, not HTTPS" +
                               "\nHINT: use http://" + where + " (its traffic, credentials included, is unencrypted)");
      throw TransportError("tls handshake with " + where + " failed: " + describe(ec) + network_hint);
    }
    return connection;
  }
};

namespace {

template <class Stream, class Body>
void write_message(Connection& connection, Stream& stream, bhttp::request<Body>& message,
                   std::chrono::seconds io_timeout, std::string const& what) {
  bhttp::request_serializer<Body> serializer(message);
  while (!serializer.is_done()) {
    beast::get_lowest_layer(stream).expires_after(io_timeout);
    auto ec = complete(connection.ioc,
                       [&](auto handler) { bhttp::async_write_some(stream, serializer, std::move(handler)); });
    if (ec) throw TransportError("cannot send " + what + ": " + describe(ec) + network_hint);
  }
}

template <class Stream>
Response exchange(Connection& connection, Stream& stream, Request const& request, Url const& url,
                  ClientConfig const& config, bool& keep_alive, bool& response_started) {
  auto const what = request.method + " " + url.origin() + url.target;
  auto const fill = [&](auto& message) {
    message.version(11);
    message.method_string(request.method);
    message.target(url.target);
    message.set(bhttp::field::host, url.authority());
    message.set(bhttp::field::user_agent, "berth");
    for (auto const& [name, value] : request.headers) message.insert(name, value);
  };
  if (request.body_file) {
    // The header, then the file in large pieces: Beast's file_body reads 4 KiB at a time,
    // which costs a system call and a deadline per 4 KiB and halves throughput on big layers.
    FileDescriptor file(::open(request.body_file->c_str(), O_RDONLY | O_CLOEXEC));
    struct stat info {};
    if (file.fd < 0 || ::fstat(file.fd, &info) != 0)
      throw Error("cannot read " + request.body_file->string() + ": " + std::strerror(errno));
    auto const size = static_cast<std::uint64_t>(info.st_size);
    bhttp::request<bhttp::empty_body> message;
    fill(message);
    message.content_length(size);
    bhttp::request_serializer<bhttp::empty_body> serializer(message);
    beast::get_lowest_layer(stream).expires_after(config.io_timeout);
    auto ec = complete(connection.ioc,
                       [&](auto handler) { bhttp::async_write_header(stream, serializer, std::move(handler)); });
    if (ec) throw TransportError("cannot send " + what + ": " + describe(ec) + network_hint);
    std::vector<char> piece(1024 * 1024);
    for (std::uint64_t sent = 0; sent < size;) {
      auto const got = ::read(file.fd, piece.data(), std::min<std::uint64_t>(piece.size(), size - sent));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        throw Error("cannot read " + request.body_file->string() + ": " +
                    (got == 0 ? std::string("the file shrank while it was sent") : std::strerror(errno)));
      beast::get_lowest_layer(stream).expires_after(config.io_timeout);
      ec = complete(connection.ioc, [&](auto handler) {
        net::async_write(stream, net::buffer(piece.data(), static_cast<std::size_t>(got)), std::move(handler));
      });
      if (ec) throw TransportError("cannot send " + what + ": " + describe(ec) + network_hint);
      sent += static_cast<std::uint64_t>(got);
    }
  } else {
    bhttp::request<bhttp::string_body> message;
    fill(message);
    message.body() = request.body;
    message.prepare_payload();
    write_message(connection, stream, message, config.io_timeout, what);
  }

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(config.max_response_body);
  if (request.method == "HEAD") parser.skip(true);
  beast::get_lowest_layer(stream).expires_after(config.io_timeout);
  auto ec = complete(connection.ioc, [&](auto handler) {
    bhttp::async_read_header(stream, connection.buffer, parser, std::move(handler));
  });
  if (ec) throw TransportError("no answer to " + what + ": " + describe(ec) + network_hint);
  response_started = true;
  if (!parser.is_done()) {
    beast::get_lowest_layer(stream).expires_after(config.io_timeout);
    ec = complete(connection.ioc,
                  [&](auto handler) { bhttp::async_read(stream, connection.buffer, parser, std::move(handler)); });
    if (ec == bhttp::error::body_limit)
      throw Error("the answer to " + what + " is larger than " + std::to_string(config.max_response_body) + " bytes");
    if (ec) throw TransportError("cannot read the answer to " + what + ": " + describe(ec) + network_hint);
  }
  auto message = parser.release();
  Response response;
  response.status = static_cast<int>(message.result_int());
  for (auto const& field : message) response.headers.emplace_back(field.name_string(), field.value());
  response.body = std::move(message.body());
  keep_alive = message.keep_alive();
  return response;
}

}  // namespace

Client::Client(ClientConfig config) : state_(std::make_unique<State>()) {
  state_->config = std::move(config);
  auto& tls = state_->tls;
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  tls.set_default_verify_paths();
  if (state_->config.extra_ca_file) {
    beast::error_code ec;
    tls.load_verify_file(state_->config.extra_ca_file->string(), ec);
    if (ec)
      throw Error("cannot load the CA file " + state_->config.extra_ca_file->string() + ": " + ec.message() +
                  "\nHINT: give a readable PEM file of CA certificates");
  }
  tls.set_verify_mode(ssl::verify_peer);
}

Client::~Client() = default;

std::uint64_t Client::connections_opened() const {
  return state_->opened.load();
}

Response Client::send(Request const& request) {
  auto const url = Url::parse(request.url);
  auto const origin = url.origin();
  for (int attempt = 0;; ++attempt) {
    auto connection = attempt == 0 ? state_->take_idle(origin) : nullptr;
    bool const reused = connection != nullptr;
    if (!connection) connection = state_->open(url);
    bool keep_alive = false;
    bool response_started = false;
    try {
      auto response = std::visit(
          [&](auto& stream) -> Response {
            if constexpr (std::is_same_v<std::decay_t<decltype(stream)>, std::monostate>) {
              throw Error("connection to " + origin + " is not open");
            } else {
              return exchange(*connection, stream, request, url, state_->config, keep_alive, response_started);
            }
          },
          connection->stream);
      if (keep_alive) state_->give_back(std::move(connection));
      return response;
    } catch (TransportError const&) {
      // A kept-alive connection the server closed meanwhile fails before any answer: that is
      // not the request's fault, so it goes once more on a fresh connection.
      if (!reused || response_started) throw;
    }
  }
}

}  // namespace berth::registry::http

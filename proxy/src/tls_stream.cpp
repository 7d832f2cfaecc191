// TlsStream's engine: OpenSSL reads records from and writes records to the stream's own buffers
// through a small BIO, and this file moves those buffers to and from the socket with as few
// system calls as the kernel allows: one recv for everything that has arrived, one send for a
// whole encrypted write.
#include "tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/error.hpp>

#include "berth/core/error.hpp"

namespace berth::proxy {
namespace {

// Input space: enough for a request head and a couple of records; grown for a caller reading
// a body into a large buffer, so one recv can bring a whole socket buffer of records.
constexpr std::size_t small_input_bytes = 32 * 1024;
constexpr std::size_t large_input_bytes = 256 * 1024 + 64;
constexpr std::size_t large_read_bytes = 64 * 1024;
// A write encrypts at most this much per call (the caller loops), which bounds the output buffer.
constexpr std::size_t max_write_bytes = 1024 * 1024;
// Small leading buffers (a response head before its body) are gathered into one full record.
constexpr std::size_t record_bytes = 16 * 1024;

class TlsErrorCategory final : public boost::system::error_category {
public:
  char const* name() const noexcept override { return "berth.tls"; }
  std::string message(int value) const override {
    switch (static_cast<TlsError>(value)) {
      case TlsError::truncated: return "the peer closed the connection in the middle of a TLS record";
    }
    return "unknown TLS stream error";
  }
};

}  // namespace

boost::system::error_category const& tls_error_category() {
  static TlsErrorCategory const category;
  return category;
}

struct TlsStream::Engine {
  SSL* ssl = nullptr;
  int fd = -1;  // the socket's, looked up afresh by every step

  std::vector<char> input;  // received, not yet taken by OpenSSL: [input_begin, input_end)
  std::size_t input_begin = 0;
  std::size_t input_end = 0;
  bool peer_closed = false;                        // recv returned 0
  std::optional<boost::system::error_code> ended;  // how reading ended, repeated to later reads

  std::vector<char> output;  // encrypted, not yet sent: [output_sent, output.size())
  std::size_t output_sent = 0;
  std::optional<std::size_t> write_consumed;  // the write in progress has encrypted this much
  bool shutdown_sent = false;
  std::vector<char> staging;

  ~Engine() {
    if (ssl) SSL_free(ssl);  // frees the BIO too
  }

  // --- the BIO: OpenSSL's view of the buffers ---
  static int bio_read(BIO* bio, char* data, int length) {
    auto& engine = *static_cast<Engine*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    auto available = engine.input_end - engine.input_begin;
    if (available == 0) {
      if (engine.peer_closed) return 0;
      BIO_set_retry_read(bio);
      return -1;
    }
    auto n = std::min(available, static_cast<std::size_t>(length));
    std::memcpy(data, engine.input.data() + engine.input_begin, n);
    engine.input_begin += n;
    return static_cast<int>(n);
  }

  static int bio_write(BIO* bio, char const* data, int length) {
    auto& engine = *static_cast<Engine*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    engine.output.insert(engine.output.end(), data, data + length);
    return length;
  }

  static long bio_ctrl(BIO* bio, int command, long, void*) {
    auto& engine = *static_cast<Engine*>(BIO_get_data(bio));
    switch (command) {
      case BIO_CTRL_FLUSH: return 1;
      case BIO_CTRL_PENDING: return static_cast<long>(engine.input_end - engine.input_begin);
      case BIO_CTRL_WPENDING: return static_cast<long>(engine.output.size() - engine.output_sent);
      case BIO_CTRL_EOF: return engine.peer_closed && engine.input_begin == engine.input_end;
      default: return 0;
    }
  }

  static int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static BIO_METHOD* bio_method() {
    static BIO_METHOD* const method = [] {
      auto* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth tls stream");
      if (!created || BIO_meth_set_read(created, bio_read) != 1 || BIO_meth_set_write(created, bio_write) != 1 ||
          BIO_meth_set_ctrl(created, bio_ctrl) != 1 || BIO_meth_set_create(created, bio_create) != 1)
        throw Error("cannot set up the TLS stream: OpenSSL cannot create a BIO method");
      return created;
    }();
    return method;
  }

  // --- the socket ---

  // Sends what is encrypted. False when the socket cannot take more now; `error` on failure.
  bool flush(boost::system::error_code& error) {
    while (output_sent < output.size()) {
      auto n = ::send(fd, output.data() + output_sent, output.size() - output_sent, MSG_NOSIGNAL);
      if (n >= 0) {
        output_sent += static_cast<std::size_t>(n);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return false;
      } else if (errno != EINTR) {
        error.assign(errno, boost::system::system_category());
        return false;
      }
    }
    output.clear();
    output_sent = 0;
    return true;
  }

  enum class Received { some, none_yet, closed, failed };
  // One recv into the free input space.
  Received receive(boost::system::error_code& error) {
    if (input_begin == input_end) input_begin = input_end = 0;
    if (input.empty()) input.resize(small_input_bytes);
    for (;;) {
      auto n = ::recv(fd, input.data() + input_end, input.size() - input_end, 0);
      if (n > 0) {
        input_end += static_cast<std::size_t>(n);
        return Received::some;
      }
      if (n == 0) {
        peer_closed = true;
        return Received::closed;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Received::none_yet;
      if (errno != EINTR) {
        error.assign(errno, boost::system::system_category());
        return Received::failed;
      }
    }
  }

  // What an OpenSSL call that failed with `result` means, the queue emptied for the next call.
  // Whatever alert OpenSSL queued for the peer is sent if the socket takes it now.
  boost::system::error_code failure(int result) {
    auto kind = SSL_get_error(ssl, result);
    boost::system::error_code error;
    if (kind == SSL_ERROR_ZERO_RETURN) {
      error = net::error::eof;
    } else if (kind == SSL_ERROR_SSL) {
      error.assign(static_cast<int>(ERR_get_error()), net::error::get_ssl_category());
    } else if (kind == SSL_ERROR_SYSCALL && peer_closed) {
      error = TlsError::truncated;
    } else {
      error.assign(EPROTO, boost::system::system_category());
    }
    ERR_clear_error();
    boost::system::error_code ignored;
    flush(ignored);
    return error;
  }

  // --- the operations, one non-blocking step each ---

  Progress handshake() {
    boost::system::error_code error;
    for (;;) {
      if (!flush(error)) return error ? Progress{Want::nothing, 0, error} : Progress{Want::writable, 0, {}};
      ERR_clear_error();
      int result = SSL_do_handshake(ssl);
      if (result == 1) {
        if (!flush(error)) return error ? Progress{Want::nothing, 0, error} : Progress{Want::writable, 0, {}};
        return {};
      }
      if (SSL_get_error(ssl, result) != SSL_ERROR_WANT_READ) return {Want::nothing, 0, failure(result)};
      if (!flush(error)) return error ? Progress{Want::nothing, 0, error} : Progress{Want::writable, 0, {}};
      switch (receive(error)) {
        case Received::some: continue;
        case Received::none_yet: return {Want::readable, 0, {}};
        case Received::closed: return {Want::nothing, 0, net::error::eof};
        case Received::failed: return {Want::nothing, 0, error};
      }
    }
  }

  // Whatever OpenSSL queues while reading (a key update, an alert refusing a renegotiation)
  // leaves when the socket takes it; a read never waits for the socket to take it.
  Progress read(std::span<net::mutable_buffer const> into) {
    auto progress = read_records(into);
    boost::system::error_code ignored;
    flush(ignored);
    return progress;
  }

  Progress read_records(std::span<net::mutable_buffer const> into) {
    std::size_t wanted = 0;
    for (auto const& piece : into) wanted += piece.size();
    if (wanted == 0) return {};
    if (ended) return {Want::nothing, 0, *ended};
    boost::system::error_code error;
    if (wanted >= large_read_bytes && input.size() < large_input_bytes) {
      if (input_begin == input_end) input_begin = input_end = 0;
      input.resize(large_input_bytes);
    }
    std::size_t piece_idx = 0;
    std::size_t piece_offset = 0;
    std::size_t total = 0;
    for (;;) {
      while (piece_idx < into.size()) {
        auto* data = static_cast<char*>(into[piece_idx].data()) + piece_offset;
        auto room = into[piece_idx].size() - piece_offset;
        ERR_clear_error();
        std::size_t got = 0;
        int result = SSL_read_ex(ssl, data, room, &got);
        if (result == 1) {
          total += got;
          piece_offset += got;
          if (piece_offset == into[piece_idx].size()) ++piece_idx, piece_offset = 0;
          continue;
        }
        if (SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ) break;
        ended = failure(result);
        // Records decrypted before the failure go to the caller first.
        return total ? Progress{Want::nothing, total, {}} : Progress{Want::nothing, 0, *ended};
      }
      if (total) return {Want::nothing, total, {}};
      switch (receive(error)) {
        case Received::some: continue;
        case Received::none_yet: return {Want::readable, 0, {}};
        case Received::closed:
          // A TCP close right after a whole record is the end of the stream (HTTP framing tells
          // a complete message from a cut one); inside a record, bytes were lost.
          ended = SSL_has_pending(ssl) ? boost::system::error_code(TlsError::truncated)
                                       : boost::system::error_code(net::error::eof);
          return {Want::nothing, 0, *ended};
        case Received::failed: ended = error; return {Want::nothing, 0, error};
      }
    }
  }

  Progress write(std::span<net::const_buffer const> from) {
    boost::system::error_code error;
    if (!write_consumed) {
      std::size_t consumed = 0;
      auto encrypt = [&](void const* data, std::size_t size) {
        ERR_clear_error();
        std::size_t written = 0;
        int result = SSL_write_ex(ssl, data, size, &written);
        if (result != 1) {
          error = failure(result);
          return false;
        }
        return true;
      };
      std::size_t plain_bytes = 0;
      for (auto const& piece : from) plain_bytes += piece.size();
      // Room for all the records at once (a record adds 22 bytes with AES-GCM), so that
      // appending them does not reallocate.
      plain_bytes = std::min(plain_bytes, max_write_bytes);
      output.reserve(output.size() + plain_bytes + (plain_bytes / record_bytes + 2) * 64);
      std::size_t piece_idx = 0;
      std::size_t piece_offset = 0;
      // A small head followed by more: gathered into one record rather than a tiny one of its own.
      if (from.size() > 1 && from[0].size() < record_bytes) {
        staging.clear();
        while (piece_idx < from.size() && staging.size() < record_bytes) {
          auto const* data = static_cast<char const*>(from[piece_idx].data());
          auto take = std::min(from[piece_idx].size(), record_bytes - staging.size());
          staging.insert(staging.end(), data, data + take);
          if (take == from[piece_idx].size())
            ++piece_idx;
          else
            piece_offset = take;
        }
        if (!encrypt(staging.data(), staging.size())) return {Want::nothing, 0, error};
        consumed += staging.size();
      }
      for (; piece_idx < from.size() && consumed < max_write_bytes; ++piece_idx, piece_offset = 0) {
        auto size = std::min(from[piece_idx].size() - piece_offset, max_write_bytes - consumed);
        if (!encrypt(static_cast<char const*>(from[piece_idx].data()) + piece_offset, size))
          return {Want::nothing, 0, error};
        consumed += size;
      }
      write_consumed = consumed;
    }
    if (!flush(error)) {
      if (!error) return {Want::writable, 0, {}};
      write_consumed.reset();
      return {Want::nothing, 0, error};
    }
    auto consumed = *write_consumed;
    write_consumed.reset();
    return {Want::nothing, consumed, {}};
  }

  Progress shutdown() {
    boost::system::error_code error;
    if (!shutdown_sent) {
      shutdown_sent = true;
      ERR_clear_error();
      int result = SSL_shutdown(ssl);
      if (result < 0) return {Want::nothing, 0, failure(result)};
    }
    if (!flush(error)) return error ? Progress{Want::nothing, 0, error} : Progress{Want::writable, 0, {}};
    return {};
  }
};

TlsStream::TlsStream(tcp::socket socket, ssl_ctx_st* context)
    : socket_(std::move(socket)), engine_(std::make_unique<Engine>()) {
  auto fail = [] {
    ERR_clear_error();
    return Error("cannot set up a TLS connection: OpenSSL is out of memory");
  };
  engine_->ssl = SSL_new(context);
  if (!engine_->ssl) throw fail();
  BIO* bio = BIO_new(Engine::bio_method());
  if (!bio) throw fail();
  BIO_set_data(bio, engine_.get());
  SSL_set_bio(engine_->ssl, bio, bio);
  SSL_set_accept_state(engine_->ssl);
  socket_.native_non_blocking(true);
}

TlsStream::~TlsStream() = default;

TlsStream::Progress TlsStream::step(Kind kind, std::span<net::mutable_buffer const> into,
                                    std::span<net::const_buffer const> from) {
  // A socket closed under the stream (a timeout) has given its descriptor number back, maybe
  // to another connection already: never use the number it had.
  if (!socket_.is_open()) return {Want::nothing, 0, net::error::bad_descriptor};
  engine_->fd = socket_.native_handle();
  switch (kind) {
    case Kind::handshake: return engine_->handshake();
    case Kind::read: return engine_->read(into);
    case Kind::write: return engine_->write(from);
    case Kind::shutdown: return engine_->shutdown();
  }
  return {};
}

}  // namespace berth::proxy

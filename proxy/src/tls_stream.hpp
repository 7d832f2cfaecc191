// The server side of a TLS connection over a TCP socket, as an Asio stream that Beast reads and
// writes like a socket. Unlike asio's ssl::stream, whose engine moves one 16 KiB record per
// read(2) or send(2), this stream receives as much as the socket holds in one recv and decrypts
// every record of it into the caller's buffer, and encrypts a whole write (many records) into
// one buffer that leaves in one send. OpenSSL does the cryptography through a BIO over the
// stream's own buffers; the socket is non-blocking and waited on with async_wait. Not a client,
// and not for blocking use. Private to the proxy module.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>

#include <boost/asio/compose.hpp>

#include "asio.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace berth::proxy {

/// Failures of the TLS stream itself; OpenSSL's own (bad record, handshake failure, alerts)
/// come in Asio's ssl error category with OpenSSL's reason as their message.
enum class TlsError {
  truncated = 1,  ///< the peer closed TCP in the middle of a TLS record
};
boost::system::error_category const& tls_error_category();
inline boost::system::error_code make_error_code(TlsError error) {
  return {static_cast<int>(error), tls_error_category()};
}

class TlsStream {
public:
  using executor_type = tcp::socket::executor_type;
  using next_layer_type = tcp::socket;
  using lowest_layer_type = tcp::socket;

  /// Takes the accepted socket (made non-blocking) and a server SSL object from `context`,
  /// which OpenSSL keeps alive as long as the stream. Throws berth::Error when OpenSSL cannot
  /// allocate the connection.
  TlsStream(tcp::socket socket, ssl_ctx_st* context);
  ~TlsStream();
  TlsStream(TlsStream const&) = delete;
  TlsStream& operator=(TlsStream const&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& next_layer() { return socket_; }
  tcp::socket& lowest_layer() { return socket_; }

  /// The TLS server handshake; completes with an OpenSSL error (or the socket's) when it fails.
  /// Like every operation here: call on the socket's executor; at most one read and one write
  /// (or one handshake/shutdown) in flight at a time; closing or cancelling the socket aborts.
  template <class Token>
  auto async_handshake(Token&& token) {
    return start<void(boost::system::error_code)>(Kind::handshake, Pieces<net::const_buffer>(),
                                                  std::forward<Token>(token));
  }

  /// Sends close_notify and completes once it is out; does not wait for the peer's.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return start<void(boost::system::error_code)>(Kind::shutdown, Pieces<net::const_buffer>(),
                                                  std::forward<Token>(token));
  }

  /// Decrypts into `buffers` all the records already received, receiving first when there are
  /// none. Ends with net::error::eof after the peer's close_notify or a TCP close between
  /// records, TlsError::truncated after a close inside one.
  template <class MutableBuffers, class Token>
  auto async_read_some(MutableBuffers const& buffers, Token&& token) {
    return start<void(boost::system::error_code, std::size_t)>(Kind::read, Pieces<net::mutable_buffer>(buffers),
                                                               std::forward<Token>(token));
  }

  /// Encrypts `buffers` (up to 1 MiB of them) and completes once all of it has been sent.
  template <class ConstBuffers, class Token>
  auto async_write_some(ConstBuffers const& buffers, Token&& token) {
    return start<void(boost::system::error_code, std::size_t)>(Kind::write, Pieces<net::const_buffer>(buffers),
                                                               std::forward<Token>(token));
  }

private:
  enum class Kind { handshake, read, write, shutdown };
  enum class Want { nothing, readable, writable };
  struct Progress {
    Want want = Want::nothing;
    std::size_t bytes = 0;
    boost::system::error_code error;
  };

  // The caller's buffers, flattened: more than max_pieces of them wait for the next call.
  template <class Buffer>
  struct Pieces {
    static constexpr std::size_t max_pieces = 16;
    Pieces() = default;
    template <class Sequence>
    explicit Pieces(Sequence const& sequence) {
      for (auto it = net::buffer_sequence_begin(sequence); it != net::buffer_sequence_end(sequence); ++it) {
        if (count == max_pieces) break;
        Buffer piece(*it);
        if (piece.size() != 0) data[count++] = piece;
      }
    }
    std::span<Buffer const> view() const { return {data.data(), count}; }
    std::array<Buffer, max_pieces> data{};
    std::size_t count = 0;
  };

  // One step of an operation without blocking: done, or which readiness of the socket to await.
  Progress step(Kind kind, std::span<net::mutable_buffer const> into, std::span<net::const_buffer const> from);

  // Runs an operation: steps until it is done, awaiting the socket in between. A result known
  // at once is posted, so that no handler runs inside its initiating call.
  template <class Signature, class Buffer>
  struct Operation {
    TlsStream& stream;
    Kind kind;
    Pieces<Buffer> pieces;
    bool started = false;
    bool finished = false;
    Progress result;

    template <class Self>
    void operator()(Self& self, boost::system::error_code waited = {}) {
      if (finished) return complete(self);
      if (waited) {
        result = Progress{Want::nothing, 0, waited};
      } else {
        if constexpr (std::is_same_v<Buffer, net::mutable_buffer>)
          result = stream.step(kind, pieces.view(), {});
        else
          result = stream.step(kind, {}, pieces.view());
        if (result.want != Want::nothing) {
          started = true;
          return stream.socket_.async_wait(
              result.want == Want::readable ? tcp::socket::wait_read : tcp::socket::wait_write, std::move(self));
        }
      }
      finished = true;
      if (!started) return net::post(stream.socket_.get_executor(), std::move(self));
      complete(self);
    }

    template <class Self>
    void complete(Self& self) {
      if constexpr (std::is_same_v<Signature, void(boost::system::error_code)>)
        self.complete(result.error);
      else
        self.complete(result.error, result.bytes);
    }
  };

  template <class Signature, class Buffer, class Token>
  auto start(Kind kind, Pieces<Buffer> pieces, Token&& token) {
    return net::async_compose<Token, Signature>(Operation<Signature, Buffer>{*this, kind, pieces, false, false, {}},
                                                token, socket_);
  }

  struct Engine;  // the SSL object, its BIO and the stream's buffers
  tcp::socket socket_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace berth::proxy

namespace boost::system {
template <>
struct is_error_code_enum<berth::proxy::TlsError> : std::true_type {};
}  // namespace boost::system

// TlsStream against a real OpenSSL client on loopback: the client is plain blocking OpenSSL
// over memory BIOs, so a test can also send half a record, garbage or a renegotiation, and
// every read it makes has a receive timeout, so a hang fails the test instead of stalling it.
// The server side runs on its own io_context thread, as in berth.
#include "tls_stream.hpp"

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <boost/asio/ssl/error.hpp>

#include "berth/proxy/tls_material.hpp"
#include "berth/testing/temp_dir.hpp"
#include "tls_context.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;

std::string pattern(std::size_t size, unsigned seed = 1) {
  std::string bytes(size, '\0');
  for (std::size_t byte_idx = 0; byte_idx < size; ++byte_idx)
    bytes[byte_idx] = static_cast<char>((byte_idx * 7919 + seed) % 251);
  return bytes;
}

// What the server side of one connection did.
struct ServerSide {
  error_code handshake_error;
  error_code read_error;   // how its reading ended
  error_code write_error;  // of the last write
  std::size_t largest_read = 0;
  std::string received;
  std::promise<void> finished;
};

enum class Behaviour {
  echo,       // reads and writes back until reading fails; answers the peer's close_notify with its own
  big_write,  // writes `big_write_bytes` of pattern(), then reads until reading fails
  duplex,     // writes `big_write_bytes` of pattern() while reading, as the reverse proxy's relay does
};
constexpr std::size_t big_write_bytes = 8 * 1024 * 1024;

// The writing half of Behaviour::duplex, which runs alongside the reading one.
net::awaitable<void> write_pattern(TlsStream& stream, ServerSide& side, bool& done, net::steady_timer& wake) {
  auto const bytes = pattern(big_write_bytes);
  co_await net::async_write(stream, net::buffer(bytes), net::redirect_error(net::use_awaitable, side.write_error));
  done = true;
  wake.cancel();
}

net::awaitable<void> serve_one(tcp::acceptor& acceptor, ssl_ctx_st* context, Behaviour behaviour, ServerSide& side) {
  auto socket = co_await acceptor.async_accept(net::use_awaitable);
  TlsStream stream(std::move(socket), context);
  co_await stream.async_handshake(net::redirect_error(net::use_awaitable, side.handshake_error));
  if (!side.handshake_error) {
    if (behaviour == Behaviour::big_write) {
      auto const bytes = pattern(big_write_bytes);
      co_await net::async_write(stream, net::buffer(bytes), net::redirect_error(net::use_awaitable, side.write_error));
    }
    bool written = false;
    net::steady_timer wake(stream.get_executor(), std::chrono::steady_clock::time_point::max());
    if (behaviour == Behaviour::duplex)
      net::co_spawn(stream.get_executor(), write_pattern(stream, side, written, wake), net::detached);
    std::vector<char> space(256 * 1024);
    for (;;) {
      auto got =
          co_await stream.async_read_some(net::buffer(space), net::redirect_error(net::use_awaitable, side.read_error));
      if (side.read_error) break;
      side.largest_read = std::max(side.largest_read, got);
      side.received.append(space.data(), got);
      if (behaviour == Behaviour::echo)
        co_await net::async_write(stream, net::buffer(space.data(), got),
                                  net::redirect_error(net::use_awaitable, side.write_error));
    }
    while (behaviour == Behaviour::duplex && !written) {
      error_code ignored;
      co_await wake.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    if (side.read_error == net::error::eof && behaviour == Behaviour::echo)
      co_await stream.async_shutdown(net::redirect_error(net::use_awaitable, side.write_error));
  }
  side.finished.set_value();
}

// A blocking TLS 1.2/1.3 client that verifies the server against the CA, offers ALPN http/1.1,
// and hands the test the encrypted bytes when it asks for them.
class Client {
public:
  Client(std::uint16_t port, std::filesystem::path const& ca, int receive_buffer = 0, bool tls12_only = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (receive_buffer) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw std::runtime_error("connect");
    context_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(context_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    if (tls12_only) SSL_CTX_set_max_proto_version(context_, TLS1_2_VERSION);
    ssl_ = SSL_new(context_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    static unsigned char const alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl_, alpn, sizeof alpn);
    SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl_);
  }
  Client(Client const&) = delete;
  Client& operator=(Client const&) = delete;
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    if (fd_ >= 0) ::close(fd_);
  }

  // True once the handshake is done; false when it failed (the reason is in `failure`).
  bool handshake() {
    for (;;) {
      int result = SSL_do_handshake(ssl_);
      send_raw(take_output());
      if (result == 1) return true;
      if (SSL_get_error(ssl_, result) != SSL_ERROR_WANT_READ || !receive()) return fail();
    }
  }
  std::string alpn() const {
    unsigned char const* selected = nullptr;
    unsigned length = 0;
    SSL_get0_alpn_selected(ssl_, &selected, &length);
    return {reinterpret_cast<char const*>(selected), length};
  }

  // The records that carry `plain`, not sent.
  std::string seal(std::string_view plain) {
    std::size_t written = 0;
    if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1) throw std::runtime_error("SSL_write failed");
    return take_output();
  }
  void send_raw(std::string_view bytes) const {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void write(std::string_view plain) { send_raw(seal(plain)); }

  // Reads exactly `size` bytes (in reads of at most `step`); fewer when the stream ends or fails.
  std::string read(std::size_t size, std::size_t step = 1 << 20) {
    std::string got;
    std::vector<char> space(step);
    while (got.size() < size) {
      std::size_t n = 0;
      int result = SSL_read_ex(ssl_, space.data(), std::min(step, size - got.size()), &n);
      if (result == 1) {
        got.append(space.data(), n);
        continue;
      }
      if (SSL_get_error(ssl_, result) != SSL_ERROR_WANT_READ || !receive()) {
        fail();
        break;
      }
    }
    return got;
  }
  // Reads on until the server closes; true when it sent close_notify first.
  bool read_until_close_notify() {
    read(std::numeric_limits<std::size_t>::max());
    return last_error_ == SSL_ERROR_ZERO_RETURN;
  }

  // Starts a TLS 1.2 renegotiation; true when the client still considers the connection usable
  // after reading the server's answer.
  bool renegotiate() {
    if (SSL_renegotiate(ssl_) != 1) return fail();
    return handshake();
  }

  // TLS 1.3: asks the server to update its keys too; sent with the next write.
  void request_key_update() {
    if (SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED) != 1) throw std::runtime_error("SSL_key_update failed");
  }

  void close_notify() {
    SSL_shutdown(ssl_);
    send_raw(take_output());
  }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }

  std::string failure;  // why the last failing call failed

private:
  std::string take_output() {
    std::string bytes;
    char chunk[16384];
    int n;
    while ((n = BIO_read(SSL_get_wbio(ssl_), chunk, sizeof chunk)) > 0)
      bytes.append(chunk, static_cast<std::size_t>(n));
    return bytes;
  }
  bool receive() {
    char chunk[65536];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;  // closed, or the 10 s timeout: the test sees missing bytes
    BIO_write(SSL_get_rbio(ssl_), chunk, static_cast<int>(n));
    return true;
  }
  bool fail() {
    last_error_ = SSL_get_error(ssl_, -1);
    char text[256] = "";
    ERR_error_string_n(ERR_get_error(), text, sizeof text);
    failure = text;
    ERR_clear_error();
    return false;
  }

  int fd_ = -1;
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  int last_error_ = 0;
};

class TlsStreamTest : public ::testing::Test {
protected:
  void SetUp() override {
    material_ = ensure_local_tls(dir_.path() / "tls", {"127.0.0.1"});
    context_.emplace(make_tls_context({true, material_.server_cert, material_.server_key}));
    acceptor_.open(tcp::v4());
    acceptor_.bind({net::ip::address_v4::loopback(), 0});
    acceptor_.listen();
  }
  void TearDown() override {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Serves one connection the way `behaviour` says, on a thread of its own.
  void serve(Behaviour behaviour) {
    net::co_spawn(ioc_, serve_one(acceptor_, context_->native_handle(), behaviour, side_), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    thread_ = std::thread([this] { ioc_.run(); });
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  Client client(int receive_buffer = 0, bool tls12_only = false) const {
    return Client(port(), material_.ca_cert, receive_buffer, tls12_only);
  }
  // Waits for the server side to finish, with a deadline.
  bool server_finished() { return side_.finished.get_future().wait_for(20s) == std::future_status::ready; }

  testing::TempDir dir_;
  TlsMaterial material_;
  std::optional<ssl::context> context_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  ServerSide side_;
  std::thread thread_;
};

TEST_F(TlsStreamTest, EchoesSmallAndLargeWritesAndReadsManyRecordsAtOnce) {
  serve(Behaviour::echo);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  EXPECT_EQ(peer.alpn(), "http/1.1");
  for (std::size_t size : {1u, 1000u, 16384u, 16385u, 65536u, 300000u, 4u << 20}) {
    auto const message = pattern(size, static_cast<unsigned>(size));
    // The echo comes back while we are still sending: send from another thread (the socket
    // only; OpenSSL's side of the client stays on this one).
    auto const records = peer.seal(message);
    std::thread sender([&] { peer.send_raw(records); });
    auto echoed = peer.read(size);
    sender.join();
    ASSERT_EQ(echoed.size(), size) << peer.failure;
    EXPECT_TRUE(echoed == message) << "echo of " << size << " bytes differs";
  }
  peer.close_notify();
  EXPECT_TRUE(peer.read_until_close_notify()) << peer.failure;
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.read_error, net::error::eof);
  EXPECT_FALSE(side_.write_error) << side_.write_error.message();
  // A single read returned more than one 16 KiB record.
  EXPECT_GT(side_.largest_read, 16384u);
}

TEST_F(TlsStreamTest, ASlowReaderGetsEveryByteOfALargeWrite) {
  serve(Behaviour::big_write);
  auto peer = client(4096);  // a small receive window: the server's sends are partial and wait
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  auto got = peer.read(big_write_bytes, 1000);
  ASSERT_EQ(got.size(), big_write_bytes) << peer.failure;
  EXPECT_TRUE(got == pattern(big_write_bytes));
  peer.close_notify();
  ASSERT_TRUE(server_finished());
  EXPECT_FALSE(side_.write_error) << side_.write_error.message();
  EXPECT_EQ(side_.read_error, net::error::eof);
}

TEST_F(TlsStreamTest, ReadsAndWritesAtTheSameTime) {
  serve(Behaviour::duplex);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  auto const message = pattern(big_write_bytes, 7);
  auto const records = peer.seal(message);
  std::thread sender([&] { peer.send_raw(records); });
  auto got = peer.read(big_write_bytes);
  sender.join();
  ASSERT_EQ(got.size(), big_write_bytes) << peer.failure;
  EXPECT_TRUE(got == pattern(big_write_bytes));
  peer.close_notify();
  ASSERT_TRUE(server_finished());
  EXPECT_FALSE(side_.write_error) << side_.write_error.message();
  EXPECT_EQ(side_.read_error, net::error::eof) << side_.read_error.message();
  EXPECT_TRUE(side_.received == message);
}

TEST_F(TlsStreamTest, ACloseInsideARecordIsATruncationNotAnEnd) {
  serve(Behaviour::big_write);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  EXPECT_EQ(peer.read(big_write_bytes).size(), big_write_bytes);
  auto const record = peer.seal(pattern(1000));
  peer.send_raw(std::string_view(record).substr(0, record.size() / 2));
  peer.close();
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.read_error, TlsError::truncated) << side_.read_error.message();
  EXPECT_EQ(side_.read_error.message(), "the peer closed the connection in the middle of a TLS record");
}

TEST_F(TlsStreamTest, ACloseBetweenRecordsEndsTheStreamAfterItsData) {
  serve(Behaviour::big_write);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  EXPECT_EQ(peer.read(big_write_bytes).size(), big_write_bytes);
  peer.write("last words");
  peer.close();  // no close_notify
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.received, "last words");
  EXPECT_EQ(side_.read_error, net::error::eof) << side_.read_error.message();
}

TEST_F(TlsStreamTest, AGarbageRecordIsAnErrorNotAHang) {
  serve(Behaviour::echo);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  peer.write("fine");
  EXPECT_EQ(peer.read(4), "fine");
  // Application data of 32 bytes that no key produced; the connection stays open.
  peer.send_raw(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'));
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.read_error.category(), net::error::get_ssl_category()) << side_.read_error.message();
  EXPECT_EQ(side_.received, "fine");
}

TEST_F(TlsStreamTest, PlainHttpInsteadOfAHandshakeFailsTheHandshake) {
  serve(Behaviour::echo);
  auto peer = client();
  peer.send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.handshake_error.category(), net::error::get_ssl_category()) << side_.handshake_error.message();
}

TEST_F(TlsStreamTest, AClientThatLeavesDuringTheHandshakeEndsIt) {
  serve(Behaviour::echo);
  client().close();
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.handshake_error, net::error::eof) << side_.handshake_error.message();
}

TEST_F(TlsStreamTest, AnswersAKeyUpdateWhileReading) {
  serve(Behaviour::echo);
  auto peer = client();
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  peer.request_key_update();
  peer.write("after the update");
  // The echo is under the server's new keys: its KeyUpdate, written during a read, came first.
  EXPECT_EQ(peer.read(16), "after the update") << peer.failure;
  peer.write("and again");
  EXPECT_EQ(peer.read(9), "and again") << peer.failure;
  peer.close_notify();
  ASSERT_TRUE(server_finished());
  EXPECT_EQ(side_.read_error, net::error::eof) << side_.read_error.message();
}

TEST_F(TlsStreamTest, RenegotiationIsRefused) {
  serve(Behaviour::echo);
  auto peer = client(0, true);
  ASSERT_TRUE(peer.handshake()) << peer.failure;
  peer.write("before");
  EXPECT_EQ(peer.read(6), "before");
  EXPECT_FALSE(peer.renegotiate());
  EXPECT_NE(peer.failure.find("no renegotiation"), std::string::npos) << peer.failure;
  ASSERT_TRUE(server_finished());
  EXPECT_TRUE(side_.read_error) << "the server kept reading after a refused renegotiation";
}

}  // namespace
}  // namespace berth::proxy

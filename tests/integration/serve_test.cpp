// `berth serve` as a user starts it: a real process on an ephemeral port, spoken to over HTTP.
#include <fcntl.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

TEST(Serve, AnswersHealthzWithJsonStatus) {
  BerthInstance berth;
  auto response = http_request("127.0.0.1", berth.port(), "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Content-Type"), "application/json");
  auto status = nlohmann::json::parse(response->body);
  EXPECT_EQ(status["status"], "ok");
  EXPECT_EQ(status["version"], BERTH_VERSION);
  EXPECT_TRUE(status["uptime_seconds"].is_number_integer());
}

// The README's run command finds the configuration as every berth command does (here
// BERTH_CONFIG) and passes its arguments on to serve.
TEST(Serve, TheRunScriptHonoursBerthConfigAndPassesItsArgumentsOn) {
  namespace fs = std::filesystem;
  if (fs::path(BERTH_BINARY) != fs::path(BERTH_SOURCE_DIR) / "build" / "bin" / "berth")
    GTEST_SKIP() << "scripts/run.sh builds ./build; these tests come from another build folder";
  TempDir dir;
  auto const config = dir.write("mine.yaml", "postgres:\n  enabled: false\nvolumes:\n  primary: " +
                                                 (dir.path() / "var").string() + "\n  backup: " +
                                                 (dir.path() / "backup").string() + "\n");
  Process script({"/bin/bash", BERTH_SOURCE_DIR "/scripts/run.sh", "--listen", "127.0.0.1:0"}, dir.path() / "run.log",
                 dir.path(), {"BERTH_CONFIG=" + config.string()});
  ASSERT_TRUE(script.wait_for_output("listening address=127.0.0.1:", 300s)) << script.output();
  EXPECT_NE(script.output().find("config config=" + config.string()), std::string::npos) << script.output();
  EXPECT_TRUE(fs::exists(dir.path() / "var" / "run" / "berth.lock"));
  script.send_signal(SIGTERM);
  EXPECT_EQ(script.wait_exit(30s), 0) << script.output();
}

// Clients that hang up in the middle of a big download (a cancelled pull) cost their own
// connection only: before berth ignored SIGPIPE, sendfile() to the closed socket ended the process.
TEST(Serve, ClientsThatHangUpMidDownloadLeaveTheServerServing) {
  BerthInstance berth;
  std::string const body(32 << 20, 'b');
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(body.data(), body.size(), hash, &length, EVP_sha256(), nullptr);
  std::string digest = "sha256:";
  for (unsigned int i = 0; i < length; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", hash[i]);
    digest += hex;
  }
  auto const uploaded =
      http_request("127.0.0.1", berth.port(), "POST", "/v2/api/big/blobs/uploads/?digest=" + digest, body,
                   {{"Content-Type", "application/octet-stream"}});
  ASSERT_TRUE(uploaded);
  ASSERT_EQ(uploaded->status, 201) << uploaded->body;
  for (int round = 0; round < 5; ++round) {
    RawConnection hang_up("127.0.0.1", berth.port());
    ASSERT_TRUE(hang_up.send("GET /v2/api/big/blobs/" + digest + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(hang_up.read_until("\r\n\r\n", 5s));
  }  // each closes with most of the body unread
  EXPECT_EQ(http_request("127.0.0.1", berth.port(), "GET", "/healthz")->status, 200) << berth.process().output();
  EXPECT_FALSE(berth.process().wait_exit(100ms)) << berth.process().output();
}

TEST(Serve, AnnouncesRegistryV2OnTheApiBase) {
  BerthInstance berth;
  auto response = http_request("127.0.0.1", berth.port(), "GET", "/v2/");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Docker-Distribution-API-Version"), "registry/2.0");
}

TEST(Serve, AnswersBadInputWithClearErrors) {
  BerthInstance berth;
  auto unknown = http_request("127.0.0.1", berth.port(), "GET", "/no/such/thing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(unknown->body, "{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"no route for GET /no/such/thing\"}]}\n");

  RawConnection big("127.0.0.1", berth.port());
  big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(64 * 1024, 'c') + "\r\n\r\n");
  auto too_large = big.read_response();
  ASSERT_TRUE(too_large);
  EXPECT_EQ(too_large->status, 431);

  RawConnection garbage("127.0.0.1", berth.port());
  garbage.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n");  // a TLS hello
  auto bad = garbage.read_response();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  // Still serving.
  EXPECT_EQ(http_request("127.0.0.1", berth.port(), "GET", "/healthz")->status, 200);
  EXPECT_TRUE(berth.process().running());
}

TEST(Serve, LaysOutThePrimaryVolume) {
  BerthInstance berth;
  EXPECT_TRUE(std::filesystem::is_directory(berth.data_dir() / "registry"));
  EXPECT_TRUE(std::filesystem::is_regular_file(berth.data_dir() / "run" / "berth.lock"));
}

TEST(Serve, SigtermClosesIdleConnectionsAndExitsZero) {
  BerthInstance berth;
  RawConnection idle("127.0.0.1", berth.port());
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_response());
  berth.process().send_signal(SIGTERM);
  EXPECT_TRUE(idle.wait_closed(10s));
  EXPECT_EQ(berth.process().wait_exit(10s), 0);
  EXPECT_NE(berth.process().output().find("berth stopped"), std::string::npos) << berth.process().output();
}

TEST(Serve, SigtermWithoutConnectionsExitsZero) {
  BerthInstance berth;
  berth.process().send_signal(SIGTERM);
  EXPECT_EQ(berth.process().wait_exit(10s), 0) << berth.process().output();
}

TEST(Serve, SigintStopsItToo) {
  BerthInstance berth;
  berth.process().send_signal(SIGINT);
  EXPECT_EQ(berth.process().wait_exit(10s), 0) << berth.process().output();
}

// Byte `offset` of a test pattern whose period (251) never aligns with buffer sizes.
char pattern_byte(std::uint64_t offset) {
  return static_cast<char>(offset % 251);
}

// A 1 GiB blob pushed in one streamed request and pulled back: berth's memory must not grow
// with the body.
TEST(Serve, StreamsAGibibyteUpAndDownWithFlatMemory) {
  constexpr std::uint64_t gib = 1024ull * 1024 * 1024;
  BerthInstance berth;
  std::string piece(1 << 20, '\0');
  auto fill = [&](std::uint64_t at) {
    for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = pattern_byte(at + i);
  };
  // Warm up: a small push, so threads and buffers exist before the baseline.
  fill(0);
  auto warm = http_request("127.0.0.1", berth.port(), "POST", "/v2/api/warm/blobs/uploads/", "");
  ASSERT_EQ(warm->status, 202);
  ASSERT_EQ(http_request("127.0.0.1", berth.port(), "PATCH", *warm->header("Location"), piece)->status, 202);
  long baseline = berth.process().rss_kib();

  auto location =
      *http_request("127.0.0.1", berth.port(), "POST", "/v2/api/big/blobs/uploads/", "")->header("Location");
  RawConnection pusher("127.0.0.1", berth.port());
  pusher.send("PATCH " + location + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(gib) + "\r\n\r\n");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> hash(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(hash.get(), EVP_sha256(), nullptr);
  long peak = baseline;
  for (std::uint64_t sent = 0; sent < gib; sent += piece.size()) {
    fill(sent);
    EVP_DigestUpdate(hash.get(), piece.data(), piece.size());
    ASSERT_TRUE(pusher.send(piece));
    if (sent % (64 << 20) == 0) peak = std::max(peak, berth.process().rss_kib());
  }
  auto patched = pusher.read_response(false, 120s);
  ASSERT_TRUE(patched);
  ASSERT_EQ(patched->status, 202) << patched->body;
  unsigned char raw[32];
  EVP_DigestFinal_ex(hash.get(), raw, nullptr);
  std::string digest = "sha256:";
  for (auto byte : raw) digest += "0123456789abcdef"[byte >> 4], digest += "0123456789abcdef"[byte & 15];
  auto put = http_request("127.0.0.1", berth.port(), "PUT", location + "?digest=" + digest);
  ASSERT_EQ(put->status, 201) << put->body;
  long after_upload = berth.process().rss_kib();

  RawConnection puller("127.0.0.1", berth.port());
  puller.send("GET /v2/api/big/blobs/" + digest + " HTTP/1.1\r\nHost: x\r\n\r\n");
  std::uint64_t offset = 0;
  bool intact = true;
  auto pulled = puller.read_response(false, 120s, [&](std::string_view bytes) {
    for (char byte : bytes) intact = intact && byte == pattern_byte(offset++);
    if (offset % (64 << 20) < bytes.size()) peak = std::max(peak, berth.process().rss_kib());
  });
  ASSERT_TRUE(pulled);
  EXPECT_EQ(pulled->body_bytes, gib);
  EXPECT_TRUE(intact);
  long after_download = berth.process().rss_kib();
  std::cout << "1 GiB push and pull: berth RSS baseline " << baseline << " KiB, peak " << peak << " KiB, after upload "
            << after_upload << " KiB, after download " << after_download << " KiB\n";
  EXPECT_LT(peak - baseline, 8 * 1024);
  EXPECT_LT(after_download - baseline, 8 * 1024);
}

// Big blobs are read around the page cache where it does not hold them (O_DIRECT into an aligned
// buffer) and with sendfile where it does: every mix of the two, and every unaligned range, must
// give the same bytes.
TEST(Serve, ServesABigBlobTheSameWhetherThePageCacheHoldsItOrNot) {
  BerthInstance berth;
  std::string blob(6 * 1024 * 1024 + 123, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = pattern_byte(i);
  auto digest = sha256_digest(blob);
  auto start = http_request("127.0.0.1", berth.port(), "POST", "/v2/api/big/blobs/uploads/?digest=" + digest, blob);
  ASSERT_EQ(start->status, 201) << start->body;
  auto file = berth.data_dir() / "registry" / "blobs" / "sha256" / digest.substr(7, 2) / digest.substr(7);
  ASSERT_TRUE(std::filesystem::exists(file)) << file;

  auto get = [&](std::string const& range) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!range.empty()) headers.emplace_back("Range", "bytes=" + range);
    return http_request("127.0.0.1", berth.port(), "GET", "/v2/api/big/blobs/" + digest, "", headers);
  };
  auto expect_all_ranges = [&](std::string const& state) {
    auto whole = get("");
    ASSERT_EQ(whole->status, 200) << state;
    EXPECT_TRUE(whole->body == blob) << state << ": the whole blob differs";
    for (auto [first, last] : std::vector<std::pair<std::size_t, std::size_t>>{{4097, 5000000},
                                                                               {1, blob.size() - 1},
                                                                               {1048575, 1048577},
                                                                               {blob.size() - 3, blob.size() - 1},
                                                                               {0, 4095},
                                                                               {2 * 1048576 - 1, 6 * 1048576}}) {
      auto part = get(std::to_string(first) + "-" + std::to_string(last));
      ASSERT_EQ(part->status, 206) << state << " " << first << "-" << last;
      EXPECT_TRUE(part->body == blob.substr(first, last - first + 1)) << state << ": bytes " << first << "-" << last;
    }
  };
  auto evict = [&] {
    int fd = ::open(file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  };
  auto cache = [&](std::size_t bytes) {  // reads the first `bytes` through the page cache
    std::ifstream in(file, std::ios::binary);
    std::string head(bytes, '\0');
    in.read(head.data(), static_cast<std::streamsize>(bytes));
  };
  evict();
  expect_all_ranges("not cached");
  cache(blob.size());
  expect_all_ranges("cached");
  evict();
  cache(1024 * 1024 + 5);
  expect_all_ranges("first MiB cached");
}

TEST(Serve, SigtermLetsAnUploadInFlightFinish) {
  BerthInstance berth;
  auto location =
      *http_request("127.0.0.1", berth.port(), "POST", "/v2/api/slow/blobs/uploads/", "")->header("Location");
  RawConnection uploader("127.0.0.1", berth.port());
  // "100 Continue" proves berth has taken the request up before the signal arrives.
  uploader.send("PATCH " + location + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(uploader.read_until("\r\n\r\n", 10s));
  uploader.send("12345");
  auto data = berth.data_dir() / "registry" / "uploads" / location.substr(location.rfind('/') + 1) / "data";
  berth.process().send_signal(SIGTERM);
  ASSERT_TRUE(berth.process().wait_for_output("stopping reason=\"signal 15\"", 10s)) << berth.process().output();
  EXPECT_THROW(RawConnection("127.0.0.1", berth.port()), std::runtime_error);  // no new connections
  uploader.send("67890");
  auto response = uploader.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 202) << response->body;
  EXPECT_EQ(response->header("Range"), "0-9");
  EXPECT_EQ(response->header("Connection"), "close");
  EXPECT_EQ(berth.process().wait_exit(10s), 0) << berth.process().output();
  EXPECT_EQ(std::filesystem::file_size(data), 10u);
}

TEST(Serve, IdleMemoryIsSmall) {
  BerthInstance berth;
  ASSERT_EQ(http_request("127.0.0.1", berth.port(), "GET", "/healthz")->status, 200);
  long rss = berth.process().rss_kib();
  RecordProperty("idle_rss_kib", std::to_string(rss));
  std::cout << "berth serve idle RSS: " << rss << " KiB\n";
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 64 * 1024);
}

TEST(Serve, RefusesASecondInstanceOnTheSameVolume) {
  BerthInstance first;
  TempDir scratch;
  auto result = run({BERTH_BINARY, "--config", first.dir().write("second.yaml", "").string(), "serve", "--listen",
                     "127.0.0.1:0", "--data", first.data_dir().string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("another berth serve is already running on this volume"), std::string::npos)
      << result.output;
}

TEST(Serve, ReportsAPortInUse) {
  BerthInstance first;
  TempDir scratch;
  auto result =
      run({BERTH_BINARY, "--config", scratch.write("berth.yaml", "postgres:\n  enabled: false\n").string(), "serve",
           "--listen", "127.0.0.1:" + std::to_string(first.port()), "--data", (scratch.path() / "var").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << result.output;
}

TEST(Serve, RefusesToServeBeyondLoopbackWithoutAuthentication) {
  TempDir scratch;
  auto result = run({BERTH_BINARY, "--config", scratch.write("berth.yaml", "").string(), "serve", "--listen",
                     "0.0.0.0:0", "--data", (scratch.path() / "var").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("refusing to serve on 0.0.0.0:0 without authentication"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace berth::testing

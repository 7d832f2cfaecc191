// Storage on a real temp directory: crash leftovers, concurrency, expiry, layout.
#include "berth/registry/storage.hpp"

#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "berth/testing/temp_dir.hpp"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;

class StorageTest : public ::testing::Test {
protected:
  Config config() const {
    Config config;
    config.root = dir_.path() / "registry";
    return config;
  }
  std::string write_blob(Storage& storage, std::string const& repo, std::string const& content) {
    auto id = storage.start_upload(repo);
    auto writer = storage.open_upload(repo, id);
    writer->write(content);
    writer->commit(digest_of(content));
    return id;
  }
  testing::TempDir dir_;
};

// Bytes that differ from block to block, so a piece written at the wrong offset shows.
std::string patterned(std::size_t size) {
  std::string content(size, '\0');
  for (std::size_t i = 0; i < size; ++i) content[i] = static_cast<char>((i * 7919) >> 5);
  return content;
}

TEST_F(StorageTest, BlobsAreContentAddressed) {
  Storage storage(config());
  write_blob(storage, "api/a", "content");
  auto digest = digest_of("content");
  EXPECT_EQ(storage.blob_path(digest), config().root / "blobs" / "sha256" / digest.hex().substr(0, 2) / digest.hex());
  auto stored = testing::read_file(storage.blob_path(digest));
  EXPECT_EQ(stored, "content");
  auto info = storage.find_blob("api/a", digest);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 7u);
}

TEST_F(StorageTest, StartUpClearsStagingLeftovers) {
  { Storage storage(config()); }
  std::ofstream(config().root / "tmp" / "123-4") << "half-written tag";
  Storage storage(config());
  EXPECT_FALSE(fs::is_empty(config().root / "tmp"));  // merely opening a volume changes nothing
  storage.recover();
  EXPECT_TRUE(fs::is_empty(config().root / "tmp"));
}

TEST_F(StorageTest, StartUpRemovesExpiredUploadsAndKeepsRecentOnes) {
  std::string old_id, new_id;
  {
    Storage storage(config());
    old_id = storage.start_upload("api/a");
    new_id = storage.start_upload("api/a");
  }
  fs::last_write_time(config().root / "uploads" / old_id / "data",
                      fs::file_time_type::clock::now() - std::chrono::hours(25));
  Storage storage(config());
  storage.recover();
  EXPECT_FALSE(storage.upload_size("api/a", old_id));
  EXPECT_EQ(storage.upload_size("api/a", new_id), 0u);
}

TEST_F(StorageTest, SameBlobPushedConcurrentlyIsStoredOnce) {
  Storage storage(config());
  std::string content(1 << 20, 'z');
  std::vector<std::thread> pushers;
  for (int pusher_idx = 0; pusher_idx < 4; ++pusher_idx)
    pushers.emplace_back([&, pusher_idx] { write_blob(storage, "api/r" + std::to_string(pusher_idx), content); });
  for (auto& pusher : pushers) pusher.join();
  for (int pusher_idx = 0; pusher_idx < 4; ++pusher_idx)
    EXPECT_TRUE(storage.find_blob("api/r" + std::to_string(pusher_idx), digest_of(content)));
  EXPECT_TRUE(fs::is_empty(config().root / "uploads"));
}

TEST_F(StorageTest, OneWriterPerUpload) {
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  auto first = storage.open_upload("api/a", id);
  EXPECT_THROW(storage.open_upload("api/a", id), UploadBusy);
  first.reset();
  EXPECT_TRUE(storage.open_upload("api/a", id));
}

TEST_F(StorageTest, OffsetMustContinueTheUpload) {
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  storage.open_upload("api/a", id)->write(std::string_view("12345"));
  try {
    storage.open_upload("api/a", id, 3);
    FAIL() << "expected UploadRangeError";
  } catch (UploadRangeError const& error) {
    EXPECT_EQ(error.size(), 5u);
    EXPECT_STREQ(error.what(), ("upload " + id + " holds 5 bytes; a chunk starting at 3 does not follow on").c_str());
  }
  EXPECT_TRUE(storage.open_upload("api/a", id, 5));
}

// Direct I/O writes whole blocks from a 1 MiB buffer; pieces that straddle blocks and buffers,
// and sessions reopened at unaligned offsets (a resumed push), must still add up byte for byte.
TEST_F(StorageTest, UploadsReopenedAtAnyOffsetAddUp) {
  auto const content = patterned(3 * 1024 * 1024 + 123);
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  std::size_t at = 0;
  for (std::size_t piece : {1u, 4095u, 4097u, 1048576u, 333u, 1500000u}) {
    auto writer = storage.open_upload("api/a", id, at);
    for (std::size_t taken = 0; taken < piece; taken += 777) {
      auto n = std::min<std::size_t>(777, piece - taken);
      writer->write(std::string_view(content).substr(at + taken, n));
    }
    at += piece;
    writer.reset();
    EXPECT_EQ(storage.upload_size("api/a", id), at);
    EXPECT_EQ(fs::file_size(config().root / "uploads" / id / "data"), at);
  }
  // And after a restart, which rebuilds the hash from the file.
  Storage restarted(config());
  auto writer = restarted.open_upload("api/a", id, at);
  writer->write(std::string_view(content).substr(at));
  auto info = writer->commit(digest_of(content));
  EXPECT_EQ(info.size, content.size());
  auto stored = testing::read_file(info.path);
  EXPECT_TRUE(stored == content);
}

// The server reads request bodies straight into the writer's buffer when it offers one: bytes
// received there, mixed with bytes copied in, across buffer and block boundaries and reopened
// sessions, must add up byte for byte, as a client's pieces of any size arrive.
TEST_F(StorageTest, BytesReceivedIntoTheWriteBufferAddUp) {
  auto const content = patterned(3 * 1024 * 1024 + 4321);
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  std::size_t at = 0;
  auto receive = [&](UploadWriter& writer, std::size_t n) {  // as the server does: a prefix of the span
    auto space = writer.receive_buffer();
    ASSERT_FALSE(space.empty());
    n = std::min(n, space.size());
    std::memcpy(space.data(), content.data() + at, n);
    writer.write(space.first(n));
    at += n;
  };
  {
    auto writer = storage.open_upload("api/a", id, at);
    receive(*writer, 5000);
    writer->write(std::string_view(content).substr(at, 3000));  // copied in between
    at += 3000;
    while (at < 2 * 1024 * 1024 + 17) receive(*writer, 300000);  // fills and writes out the buffer
  }
  auto writer = storage.open_upload("api/a", id, at);  // reopened at an unaligned offset
  while (at < content.size()) receive(*writer, content.size() - at);
  auto info = writer->commit(digest_of(content));
  EXPECT_EQ(info.size, content.size());
  auto stored = testing::read_file(info.path);
  EXPECT_TRUE(stored == content);
}

// How many threads of this process bear `name` (their comm in /proc).
std::size_t threads_named(std::string const& name) {
  std::size_t count = 0;
  for (auto const& task : fs::directory_iterator("/proc/self/task")) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    count += comm == name;
  }
  return count;
}

// A big upload is synced in the background as it goes (its syncer thread lives as long as the
// writer), and an abandoned or committed upload leaves no thread behind and loses no byte.
TEST_F(StorageTest, ABigUploadIsSyncedAlongTheWayWithoutLeavingAThread) {
  // 25 MiB: several background syncs (one per 8 MiB)
  auto const content = patterned((25 << 20) + 12345);
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  std::size_t const half = content.size() / 2;
  {
    auto writer = storage.open_upload("api/a", id);
    writer->write(std::string_view(content).substr(0, half));
    EXPECT_EQ(threads_named("upload-sync"), 1u);
  }  // abandoned: the client resumes later
  EXPECT_EQ(threads_named("upload-sync"), 0u);
  EXPECT_EQ(storage.upload_size("api/a", id), half);
  auto writer = storage.open_upload("api/a", id, half);
  writer->write(std::string_view(content).substr(half));
  auto info = writer->commit(digest_of(content));
  writer.reset();
  EXPECT_EQ(threads_named("upload-sync"), 0u);
  auto stored = testing::read_file(info.path);
  EXPECT_TRUE(stored == content);
}

TEST_F(StorageTest, Sha512DigestsAreAccepted) {
  Storage storage(config());
  auto id = storage.start_upload("api/a");
  auto writer = storage.open_upload("api/a", id);
  writer->write(std::string_view("abc"));
  auto digest = digest_of("abc", DigestAlgorithm::sha512);
  auto info = writer->commit(digest);
  EXPECT_EQ(info.path, config().root / "blobs" / "sha512" / digest.hex().substr(0, 2) / digest.hex());
  EXPECT_TRUE(storage.find_blob("api/a", digest));
}

TEST_F(StorageTest, RepositoriesAreListedByTheirContent) {
  Storage storage(config());
  write_blob(storage, "api/a/b", "x");
  write_blob(storage, "api/a", "y");
  write_blob(storage, "site/z", "z");
  EXPECT_EQ(storage.repositories(), (std::vector<std::string>{"api/a", "api/a/b", "site/z"}));
  EXPECT_TRUE(storage.repository_exists("api/a"));
  EXPECT_FALSE(storage.repository_exists("api"));
}

TEST_F(StorageTest, UnusableRootIsReported) {
  std::ofstream(dir_.path() / "file") << "not a directory";
  Config bad;
  bad.root = dir_.path() / "file" / "registry";
  try {
    Storage storage(bad);
    FAIL() << "expected an error";
  } catch (Error const& error) {
    EXPECT_TRUE(std::string(error.what()).starts_with("cannot create registry directory " + bad.root.string()))
        << error.what();
  }
}

}  // namespace
}  // namespace berth::registry

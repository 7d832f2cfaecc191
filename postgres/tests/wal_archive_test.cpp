// The WAL archiver's file handling: durable copy, idempotent retry, refusal to overwrite
// different content, and names that are not WAL files.
#include "berth/postgres/wal_archive.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "berth/testing/temp_dir.hpp"

namespace berth::postgres {
namespace {

namespace fs = std::filesystem;

std::string read(fs::path const& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class WalArchiveTest : public ::testing::Test {
protected:
  void SetUp() override {
    fs::create_directories(archive_);
    std::ofstream(segment_, std::ios::binary) << std::string(3 << 20, 'w') << "end";
  }
  testing::TempDir temp_;
  fs::path archive_ = temp_.path() / "wal";
  fs::path segment_ = temp_.path() / "000000010000000000000003";
  std::string name_ = "000000010000000000000003";
};

TEST_F(WalArchiveTest, CopiesASegmentAndAcceptsTheSameOneAgain) {
  EXPECT_EQ(archive_wal_file(segment_, name_, archive_), Archived::copied);
  EXPECT_EQ(read(archive_ / name_), read(segment_));
  EXPECT_EQ(archive_wal_file(segment_, name_, archive_), Archived::already_present);
  EXPECT_EQ(std::distance(fs::directory_iterator(archive_), fs::directory_iterator()), 1);  // no temp files left
}

TEST_F(WalArchiveTest, RefusesToOverwriteDifferentContentAndKeepsTheArchivedOne) {
  std::ofstream(archive_ / name_, std::ios::binary) << "another cluster's segment";
  try {
    archive_wal_file(segment_, name_, archive_);
    FAIL() << "expected an error";
  } catch (Error const& e) {
    EXPECT_EQ(std::string(e.what()), "cannot archive WAL: " + (archive_ / name_).string() +
                                         " already exists with different content\nHINT: the archive belongs to "
                                         "another cluster or timeline; move it aside (never delete it before a new "
                                         "base backup) and the server retries");
  }
  EXPECT_EQ(read(archive_ / name_), "another cluster's segment");
}

TEST_F(WalArchiveTest, AcceptsOnlyWalFileNames) {
  for (auto const* good : {"000000010000000000000003", "00000002.history", "000000010000000000000003.partial",
                           "000000010000000000000003.00000028.backup"})
    EXPECT_TRUE(is_wal_file_name(good)) << good;
  for (auto const* bad : {"../../etc/passwd", "00000001000000000000000g", "0000000100000000000000030", "",
                          "000000010000000000000003/x", "00000001.history.tmp"})
    EXPECT_FALSE(is_wal_file_name(bad)) << bad;
  EXPECT_THROW(archive_wal_file(segment_, "../escape", archive_), Error);
  EXPECT_FALSE(fs::exists(temp_.path() / "escape"));
}

TEST_F(WalArchiveTest, AMissingSourceLeavesNothingBehind) {
  EXPECT_THROW(archive_wal_file(temp_.path() / "gone", name_, archive_), Error);
  EXPECT_TRUE(fs::is_empty(archive_));
}

}  // namespace
}  // namespace berth::postgres

#include "read_ahead.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <chrono>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "berth/testing/eventually.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
constexpr std::uint64_t mib = 1024 * 1024;

// Whether the page at `offset` is in memory, asked without side effects (a probe with
// page_cached() starts the kernel's own readahead there).
bool resident(int fd, std::uint64_t offset) {
  auto const page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  auto const start = offset - offset % page;
  void* map = ::mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  if (map == MAP_FAILED) return false;
  unsigned char in_core = 0;
  ::mincore(map, page, &in_core);
  ::munmap(map, page);
  return in_core & 1;
}

class ReadAheadTest : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = dir_.write("blob", std::string(40 * mib, 'x'));
    fd_ = ::open(path_.c_str(), O_RDONLY);
    ASSERT_GE(fd_, 0);
    ::fdatasync(fd_);  // clean pages can be dropped
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
    if (resident(fd_, 0)) GTEST_SKIP() << "the page cache of " << dir_.path() << " cannot be dropped (tmpfs?)";
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }
  testing::TempDir dir_;
  std::filesystem::path path_;
  int fd_ = -1;
};

TEST_F(ReadAheadTest, TellsWhetherThePageCacheHoldsAnOffset) {
  EXPECT_FALSE(page_cached(fd_, 20 * mib));
  std::ifstream in(path_, std::ios::binary);
  std::string head(8192, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  EXPECT_TRUE(page_cached(fd_, 0));
  EXPECT_TRUE(page_cached(fd_, 100));
  EXPECT_TRUE(page_cached(fd_, 41 * mib)) << "past the end there is nothing to wait for";
}

TEST_F(ReadAheadTest, ReadsTwoStepsAheadOfTheSenderAndNoFurther) {
  // The range starts at 3 MiB, as a Range request may.
  ReadAhead ahead(fd_, 3 * mib, 40 * mib);
  ahead.before_sending(3 * mib);
  auto const window_end = 3 * mib + 2 * ReadAhead::step_bytes;
  EXPECT_TRUE(testing::eventually(10s, [&] { return resident(fd_, window_end - 1); }));
  EXPECT_TRUE(resident(fd_, 3 * mib));
  EXPECT_FALSE(resident(fd_, 40 * mib - 1)) << "read further ahead than asked";

  // Moving on keeps the window ahead, up to the end of the range.
  ahead.before_sending(35 * mib);
  EXPECT_TRUE(testing::eventually(10s, [&] { return resident(fd_, 40 * mib - 1); }));
}

}  // namespace
}  // namespace berth::proxy

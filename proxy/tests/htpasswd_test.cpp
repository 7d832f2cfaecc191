// htpasswd interoperability with the real `htpasswd -B` (apache2-utils) in both directions,
// the file formats' error messages, atomic rewrites, and the password cache.
#include "berth/proxy/htpasswd.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include <gtest/gtest.h>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using berth::testing::run;
using berth::testing::TempDir;

std::string read_text(fs::path const& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string error_reading(fs::path const& file) {
  try {
    HtpasswdFile::read(file);
  } catch (Error const& error) {
    return error.what();
  }
  return "(no error)";
}

unsigned mode_of(fs::path const& file) {
  struct stat status {};
  ::stat(file.c_str(), &status);
  return status.st_mode & 07777;
}

TEST(Htpasswd, ReadsAFileMadeByApacheHtpasswd) {
  TempDir dir;
  auto const file = dir.path() / "htpasswd";
  ASSERT_EQ(run({"/usr/bin/htpasswd", "-cbB", "-C", "5", file.string(), "alice", "correct horse"}).exit_code, 0);
  ASSERT_EQ(run({"/usr/bin/htpasswd", "-bB", file.string(), "bob", "s3cret:with colon"}).exit_code, 0);

  auto const users = HtpasswdFile::read(file);
  EXPECT_EQ(users.users(), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_TRUE(verify_password("correct horse", *users.hash_of("alice")));
  EXPECT_FALSE(verify_password("correct horsE", *users.hash_of("alice")));
  EXPECT_FALSE(verify_password("", *users.hash_of("alice")));
  EXPECT_TRUE(verify_password("s3cret:with colon", *users.hash_of("bob")));
  EXPECT_FALSE(verify_password("correct horse", *users.hash_of("bob")));
  EXPECT_FALSE(users.hash_of("carol"));
}

TEST(Htpasswd, ApacheHtpasswdVerifiesOurHashes) {
  TempDir dir;
  auto const file = dir.path() / "htpasswd";
  HtpasswdFile users;
  users.set("alice", hash_password("pa ss", 5));
  users.write(file);
  EXPECT_TRUE(read_text(file).starts_with("alice:$2y$05$"));
  EXPECT_EQ(run({"/usr/bin/htpasswd", "-vb", file.string(), "alice", "pa ss"}).exit_code, 0);
  EXPECT_NE(run({"/usr/bin/htpasswd", "-vb", file.string(), "alice", "pass"}).exit_code, 0);
  EXPECT_TRUE(hash_password("x").starts_with("$2y$12$"));
}

TEST(Htpasswd, ReportsBadLinesWithFileAndLine) {
  TempDir dir;
  auto const ok = "alice:$2y$05$N4EiWMLBwkvI/sd8YUqqV.fp6IPAYIo8uYK/.Nc7gZxFA/RKcx3Lu\n";
  auto file = dir.write("a", std::string("# users\n\n") + ok + "bob\n");
  EXPECT_EQ(error_reading(file), file.string() +
                                     ":4: expected USER:HASH, got a line without ':'\nHINT: lines are written by "
                                     "`berth user add` or `htpasswd -B`");
  file = dir.write("b", std::string(ok) + "carol:$apr1$abc$defghijklmnopqrstuvwx\n");
  EXPECT_EQ(error_reading(file), file.string() +
                                     ":2: user carol has a password hash that is not bcrypt\nHINT: set the password "
                                     "again with `berth user passwd carol` or `htpasswd -B`");
  file = dir.write("c", std::string(ok) + ok);
  EXPECT_EQ(error_reading(file), file.string() + ":2: user alice appears twice\nHINT: remove one of the two lines");
  file = dir.write("d", "bad user:$2y$05$N4EiWMLBwkvI/sd8YUqqV.fp6IPAYIo8uYK/.Nc7gZxFA/RKcx3Lu\n");
  EXPECT_EQ(error_reading(file), file.string() +
                                     ":1: invalid user name \"bad user\"\nHINT: user names are 1 to 64 letters, "
                                     "digits, . _ @ - (not starting with -)");
  EXPECT_EQ(error_reading(dir.path() / "missing"), "(no error)");
}

TEST(Htpasswd, RewriteKeepsCommentsModeAndOtherUsers) {
  TempDir dir;
  std::string const hash = "$2y$05$N4EiWMLBwkvI/sd8YUqqV.fp6IPAYIo8uYK/.Nc7gZxFA/RKcx3Lu";
  auto const file = dir.write("htpasswd", "# team\nalice:" + hash + "\n\nbob:" + hash + "\n");
  ::chmod(file.c_str(), 0600);
  auto users = HtpasswdFile::read(file);
  users.set("carol", hash);
  EXPECT_TRUE(users.remove("bob"));
  EXPECT_FALSE(users.remove("dave"));
  users.write(file);
  EXPECT_EQ(read_text(file), "# team\nalice:" + hash + "\n\ncarol:" + hash + "\n");
  EXPECT_EQ(mode_of(file), 0600u);
  for (auto const& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename(), "htpasswd");  // no temporary file left behind

  // A new file in a folder of the writer's own group is the writer's alone: `berth doctor` wants
  // 0600 for the secrets folder the development setup keeps it in.
  HtpasswdFile fresh;
  fresh.set("x", hash);
  fresh.write(dir.path() / "sub" / "new");
  EXPECT_EQ(mode_of(dir.path() / "sub" / "new"), 0600u);
  // In a folder of another group (/etc/berth is root:berth), that group may read it.
  if (::geteuid() == 0) {
    fs::create_directories(dir.path() / "shared");
    ASSERT_EQ(::chown((dir.path() / "shared").c_str(), 0, 65534), 0);
    fresh.write(dir.path() / "shared" / "htpasswd");
    EXPECT_EQ(mode_of(dir.path() / "shared" / "htpasswd"), 0640u);
    struct stat written {};
    ASSERT_EQ(::stat((dir.path() / "shared" / "htpasswd").c_str(), &written), 0);
    EXPECT_EQ(written.st_gid, 65534u);
  }
}

TEST(GroupFile, ReadsSetsAndDropsEmptyGroups) {
  TempDir dir;
  auto const file = dir.write("groups", "# who is in which group\nci: bot1 bot2\nadmins: alice\n");
  auto groups = GroupFile::read(file);
  EXPECT_EQ(groups.groups_of("bot1"), std::vector<std::string>{"ci"});
  groups.set_groups_of("alice", {"ci", "dev"});
  groups.set_groups_of("bot2", {});
  groups.write(file);
  EXPECT_EQ(read_text(file), "# who is in which group\nci: bot1 alice\ndev: alice\n");
  auto const again = GroupFile::read(file);
  EXPECT_EQ(again.groups().at("ci"), (std::vector<std::string>{"alice", "bot1"}));

  auto const bad = dir.write("bad", "ci bot1\n");
  try {
    GroupFile::read(bad);
    FAIL() << "expected an error";
  } catch (Error const& error) {
    EXPECT_EQ(std::string(error.what()), bad.string() +
                                             ":1: expected GROUP: USER USER ..., got a line without ':'\nHINT: "
                                             "lines are written by `berth user add NAME --group GROUP`");
  }
}

TEST(PasswordChecker, AcceptsRightPasswordsAndCachesThem) {
  PasswordChecker checker({{"alice", hash_password("right", 12)}});
  using Clock = std::chrono::steady_clock;
  auto const started = Clock::now();
  EXPECT_TRUE(checker.check("alice", "right"));
  auto const first = Clock::now() - started;
  auto const again = Clock::now();
  EXPECT_TRUE(checker.check("alice", "right"));
  auto const cached = Clock::now() - again;
  EXPECT_LT(cached * 10, first) << "the second check should come from the cache";
  EXPECT_FALSE(checker.check("alice", "wrong"));
  EXPECT_FALSE(checker.check("alicex", "right"));
}

TEST(PasswordChecker, UnknownUsersCostAsMuchAsWrongPasswords) {
  // Cost 10 (~60 ms) makes a bcrypt run stand far above a map lookup even on a busy machine.
  PasswordChecker checker({{"alice", hash_password("right", 10)}, {"bob", hash_password("other", 10)}});
  using Clock = std::chrono::steady_clock;
  auto timed = [&](std::string_view user) {
    auto const started = Clock::now();
    EXPECT_FALSE(checker.check(user, "wrong"));
    return Clock::now() - started;
  };
  auto const known = std::min(timed("alice"), timed("alice"));
  auto const unknown = std::min(timed("mallory"), timed("mallory"));
  // Both ran bcrypt at the same cost: within a factor of two of each other, not 1000x apart.
  EXPECT_GT(unknown * 2, known);
  EXPECT_GT(known * 2, unknown);
  EXPECT_FALSE(checker.check("", ""));
}

}  // namespace
}  // namespace berth::proxy

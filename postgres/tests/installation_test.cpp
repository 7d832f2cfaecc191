// Finding the server binaries and reading their major version, against the installed PostgreSQL.
#include "berth/postgres/installation.hpp"

#include <cstdlib>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "berth/testing/temp_dir.hpp"

namespace berth::postgres {
namespace {

TEST(MajorOf, KeepsOnePartFromTenOnAndTwoBefore) {
  EXPECT_EQ(major_of("15.6"), "15");
  EXPECT_EQ(major_of("16.2"), "16");
  EXPECT_EQ(major_of("9.6.24"), "9.6");
  EXPECT_EQ(major_of("17"), "17");
}

TEST(FindInstallation, FindsTheInstalledServerAndItsMajor) {
  auto const installation = find_installation();
  EXPECT_TRUE(std::filesystem::exists(installation.binary("initdb")));
  EXPECT_FALSE(installation.major.empty());
  EXPECT_EQ(major_of(installation.version), installation.major);
}

TEST(FindInstallation, UsesAConfiguredBinDir) {
  auto const found = find_installation();
  auto const configured = find_installation(found.bin_dir);
  EXPECT_EQ(configured.bin_dir, found.bin_dir);
  EXPECT_EQ(configured.version, found.version);
}

// After a distribution upgrade two majors stand side by side: an existing cluster keeps its own,
// a new one gets the newest.
TEST(FindInstallation, PrefersTheClustersOwnMajorOverANewerOne) {
  auto const real = find_installation().bin_dir;
  testing::TempDir root;
  for (auto major : {"15", "99"}) {
    std::filesystem::create_directories(root.path() / major);
    std::filesystem::create_directory_symlink(real, root.path() / major / "bin");
  }
  EXPECT_EQ(find_installation({}, root.path()).bin_dir, root.path() / "99" / "bin");
  EXPECT_EQ(find_installation({}, root.path(), "15").bin_dir, root.path() / "15" / "bin");
  // A major that is not installed (or a hostile PG_VERSION) falls back to the newest.
  EXPECT_EQ(find_installation({}, root.path(), "14").bin_dir, root.path() / "99" / "bin");
  EXPECT_EQ(find_installation({}, root.path(), "../99").bin_dir, root.path() / "99" / "bin");
}

TEST(FindInstallation, NamesAMissingConfiguredBinDir) {
  try {
    find_installation("/nonexistent/bin");
    FAIL() << "expected InstallationNotFound";
  } catch (InstallationNotFound const& e) {
    EXPECT_STREQ(e.what(),
                 "no PostgreSQL server in /nonexistent/bin (postgres.bin_dir): postgres or initdb is missing or not "
                 "executable");
  }
}

TEST(FindInstallation, NamesWhatWasSearchedWhenNothingIsInstalled) {
  testing::TempDir empty;
  char const* old_path = std::getenv("PATH");
  std::optional<std::string> saved = old_path ? std::optional<std::string>(old_path) : std::nullopt;
  ::setenv("PATH", empty.path().c_str(), 1);
  try {
    find_installation({}, empty.path());
    ADD_FAILURE() << "expected InstallationNotFound";
  } catch (InstallationNotFound const& e) {
    EXPECT_EQ(std::string(e.what()), "no PostgreSQL server found: searched " + (empty.path() / "*/bin").string() +
                                         " and PATH for postgres and initdb\nHINT: apt-get install postgresql");
  }
  if (saved) ::setenv("PATH", saved->c_str(), 1);
}

}  // namespace
}  // namespace berth::postgres

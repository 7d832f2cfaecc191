// The cluster lifecycle against a real PostgreSQL from the distribution: initdb on first start,
// reuse afterwards, supervision after kill -9, a clean stop, and the refusals that must leave
// nothing behind. Runs as root here and in CI, so the server runs as the OS user "postgres".
#include "berth/postgres/cluster.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "berth/testing/eventually.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::postgres {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using berth::testing::eventually;

std::string query(Cluster const& cluster, std::string const& sql) {
  pqxx::connection connection(cluster.connection_string());
  pqxx::work transaction(connection);
  auto const result = transaction.exec(sql);
  return result[0][0].as<std::string>();
}

bool can_query(Cluster const& cluster) {
  try {
    return query(cluster, "SELECT 1") == "1";
  } catch (std::exception const&) {
    return false;
  }
}

bool process_gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

class ClusterTest : public ::testing::Test {
protected:
  void SetUp() override {
    // mkdtemp makes the directory 0700; the server's OS user has to pass through it.
    fs::permissions(temp_.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    config_.data_dir = temp_.path() / "postgres";
    config_.socket_dir = temp_.path() / "run";
    config_.secrets_dir = temp_.path() / "secrets";
    config_.restart_backoff_min = 50ms;
    config_.restart_backoff_max = 1s;
  }

  testing::TempDir temp_;
  Config config_;
};

TEST_F(ClusterTest, FirstStartCreatesTheClusterAndASecondReusesIt) {
  std::string system_id;
  {
    Cluster cluster(config_);
    EXPECT_EQ(cluster.initialize(), Initialized::created);
    auto const began = std::chrono::steady_clock::now();
    cluster.start();
    cluster.wait_ready();
    std::cout << "start to ready on a new cluster: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count()
              << " ms\n";
    EXPECT_EQ(query(cluster, "SELECT 1"), "1");
    EXPECT_EQ(query(cluster, "SELECT current_setting('data_checksums')"), "on");
    EXPECT_EQ(query(cluster, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'postgres'"),
              "UTF8");
    system_id = query(cluster, "SELECT system_identifier FROM pg_control_system()");
  }

  struct stat secrets {};
  ASSERT_EQ(::stat((config_.secrets_dir / "postgres-superuser").c_str(), &secrets), 0);
  EXPECT_EQ(secrets.st_mode & 07777, 0600u);
  EXPECT_EQ(secrets.st_uid, ::geteuid());
  EXPECT_FALSE(fs::exists(temp_.path() / ".postgres.initdb"));
  EXPECT_FALSE(fs::exists(temp_.path() / ".postgres.pwfile"));

  Cluster again(config_);
  EXPECT_EQ(again.initialize(), Initialized::existing);
  auto const began = std::chrono::steady_clock::now();
  again.start();
  again.wait_ready();
  std::cout << "start to ready on an existing cluster: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count()
            << " ms\n";
  EXPECT_EQ(query(again, "SELECT system_identifier FROM pg_control_system()"), system_id);
  EXPECT_EQ(again.restart_count(), 0u);
}

TEST_F(ClusterTest, RestartsTheServerAfterKill9) {
  Cluster cluster(config_);
  cluster.start();
  cluster.wait_ready();
  auto const first = cluster.pid();
  ASSERT_TRUE(first);

  ASSERT_EQ(::kill(*first, SIGKILL), 0);

  EXPECT_TRUE(eventually(30s, [&] {
    auto const now = cluster.pid();
    return cluster.restart_count() >= 1 && now && *now != *first;
  }));
  cluster.wait_ready(std::chrono::steady_clock::now() + 30s);
  EXPECT_EQ(query(cluster, "SELECT 1"), "1");
  EXPECT_GE(cluster.restart_count(), 1u);
}

TEST_F(ClusterTest, StopLeavesNoServerProcess) {
  Cluster cluster(config_);
  cluster.start();
  cluster.wait_ready();
  auto const pid = cluster.pid();
  ASSERT_TRUE(pid);

  cluster.stop();

  EXPECT_TRUE(process_gone(*pid));
  EXPECT_FALSE(cluster.pid());
  EXPECT_FALSE(fs::exists(config_.data_dir / "postmaster.pid"));  // removed only by a clean shutdown
  EXPECT_FALSE(can_query(cluster));
  cluster.stop();  // idempotent
  EXPECT_EQ(cluster.restart_count(), 0u);
}

TEST_F(ClusterTest, RefusesADataDirOfAnotherMajorAndCreatesNothing) {
  fs::create_directories(config_.data_dir);
  std::ofstream(config_.data_dir / "PG_VERSION") << "9.6\n";
  Cluster cluster(config_);
  auto const& installation = cluster.installation();
  auto const data_dir = config_.data_dir.string();

  try {
    cluster.start();
    FAIL() << "expected VersionMismatch";
  } catch (VersionMismatch const& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot start the cluster in " + data_dir + ": it was created by PostgreSQL 9.6, but the installed " +
                  "server is PostgreSQL " + installation.major + " (" + installation.bin_dir.string() +
                  ")\nHINT: a data directory only runs with its own major version; upgrade it with pg_upgrade: " +
                  "install the server of PostgreSQL 9.6 alongside, stop berth, then run pg_upgradecluster 9.6 " +
                  "(Debian/Ubuntu) or pg_upgrade --old-bindir=<9.6 bin> --new-bindir=" + installation.bin_dir.string() +
                  " --old-datadir=" + data_dir + " --new-datadir=<new dir>, and point berth at the upgraded directory");
  }
  EXPECT_FALSE(fs::exists(config_.secrets_dir));
  EXPECT_FALSE(fs::exists(config_.socket_dir));
  EXPECT_EQ(std::distance(fs::directory_iterator(config_.data_dir), fs::directory_iterator()), 1);
  EXPECT_FALSE(cluster.pid());
}

TEST_F(ClusterTest, NamesADirectoryTheServerUserCannotTraverse) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root switches to another OS user";
  fs::permissions(temp_.path(), fs::perms::owner_all);  // what mkdtemp makes: 0700
  Cluster cluster(config_);

  try {
    cluster.start();
    FAIL() << "expected an error";
  } catch (Error const& e) {
    auto const dir = temp_.path().string();
    EXPECT_EQ(std::string(e.what()), "OS user postgres cannot reach " + config_.data_dir.string() + ": directory " +
                                         dir + " is not searchable by it (mode 0700)\nHINT: chmod o+x " + dir +
                                         ", or move the data directory to a path postgres can reach");
  }
  EXPECT_FALSE(fs::exists(config_.data_dir));
  EXPECT_FALSE(fs::exists(config_.secrets_dir));
}

}  // namespace
}  // namespace berth::postgres

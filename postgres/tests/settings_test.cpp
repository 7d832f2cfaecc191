// Server parameters: the operator's postgres.settings reach the running server, names the
// server does not know or that berth manages are refused before anything is written, and the
// archive command survives paths that need shell quoting.
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "berth/postgres/cluster.hpp"
#include "berth/testing/error_of.hpp"
#include "berth/testing/temp_dir.hpp"
#include "server_settings.hpp"

namespace berth::postgres {
namespace {

namespace fs = std::filesystem;

using testing::error_of;

// A cluster whose directories are all inside `temp`.
Config config_in(testing::TempDir const& temp) {
  Config config;
  config.data_dir = temp.path() / "postgres";
  config.socket_dir = temp.path() / "run";
  config.secrets_dir = temp.path() / "secrets";
  return config;
}

std::string setting(std::vector<std::string> const& arguments, std::string const& name) {
  for (auto const& argument : arguments)
    if (argument.starts_with(name + "=")) return argument.substr(name.size() + 1);
  return "(absent)";
}

TEST(Settings, ReachTheServerAndOverrideBerthsDefaults) {
  testing::TempDir temp;
  fs::permissions(temp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  auto config = config_in(temp);
  config.settings = {{"work_mem", "16MB"}, {"max_connections", "40"}, {"pg_stat_statements.max", "1000"}};
  Cluster cluster(config);
  cluster.start();
  cluster.wait_ready();

  pqxx::connection connection(cluster.connection_string());
  pqxx::nontransaction query(connection);
  EXPECT_EQ(query.exec("SHOW work_mem")[0][0].as<std::string>(), "16MB");
  EXPECT_EQ(query.exec("SHOW max_connections")[0][0].as<std::string>(), "40");
  EXPECT_EQ(query.exec("SHOW listen_addresses")[0][0].as<std::string>(), "");
  EXPECT_EQ(query.exec("SELECT source FROM pg_settings WHERE name = 'shared_buffers'")[0][0].as<std::string>(),
            "command line");
}

TEST(Settings, UnknownAndManagedNamesAreRefusedBeforeAnythingIsWritten) {
  testing::TempDir temp;
  auto config = config_in(temp);
  config.settings = {{"shared_bufers", "1GB"}, {"port", "6000"}, {"work_mem", "1MB\nfsync=off"}};

  auto const error = error_of([&] { Cluster cluster(config); });

  auto const major = find_installation().major;
  EXPECT_EQ(error,
            "invalid postgres.settings:\n"
            "  port is managed by berth; set it through postgres.port\n"
            "  shared_bufers is not a parameter of PostgreSQL " +
                major +
                "\n"
                "  work_mem: the value must be on one line\n"
                "HINT: the names are postgresql.conf's (see `SELECT name FROM pg_settings` or "
                "https://www.postgresql.org/docs/current/runtime-config.html)");
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

TEST(Settings, ArchiveCommandQuotesPathsForTheShellAndDoublesPercent) {
  Config config;
  config.wal_archive_dir = "/srv/back up/it's 100%/wal";
  config.archiver_program = "/usr/bin/berth";
  config.archive_timeout = std::chrono::seconds(30);
  config.socket_dir = "/var/lib/berth/run/postgres";

  auto const arguments = detail::server_arguments(config, 8ull << 30);

  EXPECT_EQ(setting(arguments, "archive_command"),
            "'/usr/bin/berth' archive-wal --to '/srv/back up/it'\\''s 100%%/wal' --state "
            "'/var/lib/berth/run/postgres/wal-archive-failure' %p %f");
  EXPECT_EQ(setting(arguments, "archive_mode"), "on");
  EXPECT_EQ(setting(arguments, "archive_timeout"), "30");
  EXPECT_EQ(setting(arguments, "shared_buffers"), "1024MB");
  EXPECT_EQ(setting(arguments, "effective_cache_size"), "4096MB");
  EXPECT_EQ(setting(detail::server_arguments(Config{}, 1ull << 30), "shared_buffers"), "128MB");
  EXPECT_EQ(setting(detail::server_arguments(Config{}, 1ull << 30), "archive_mode"), "(absent)");
}

TEST(Settings, ListensOnTcpWithPasswordsAndOpensTheLanOnlyBeyondLoopback) {
  testing::TempDir temp;
  fs::permissions(temp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  auto config = config_in(temp);
  config.listen_addresses = {"127.0.0.1"};
  config.port = static_cast<std::uint16_t>(20000 + ::getpid() % 20000);  // several suites run at once
  Cluster cluster(config);
  cluster.start();
  cluster.wait_ready();

  std::ifstream secret(config.secrets_dir / "postgres-superuser");
  std::string password;
  secret >> password;
  pqxx::connection over_tcp("host=127.0.0.1 port=" + std::to_string(config.port) +
                            " user=berth dbname=postgres password=" + password);
  pqxx::nontransaction query(over_tcp);
  EXPECT_EQ(query.exec("SELECT inet_client_addr()::text")[0][0].as<std::string>(), "127.0.0.1/32");
  EXPECT_THROW(pqxx::connection("host=127.0.0.1 port=" + std::to_string(config.port) +
                                " user=berth dbname=postgres password=wrong"),
               pqxx::broken_connection);

  EXPECT_EQ(detail::hba_rules(config).find("samenet"), std::string::npos);
  config.listen_addresses = {"0.0.0.0"};
  EXPECT_NE(detail::hba_rules(config).find("host    all          all   samenet       scram-sha-256"), std::string::npos)
      << detail::hba_rules(config);
}

}  // namespace
}  // namespace berth::postgres

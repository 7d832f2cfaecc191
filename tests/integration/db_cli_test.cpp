// `berth db migrate|info|validate --url` against a real PostgreSQL started for the suite.
#include <gtest/gtest.h>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth/testing/test_cluster.hpp"

namespace berth::testing {
namespace {

bool contains(std::string const& text, std::string const& part) {
  return text.find(part) != std::string::npos;
}

class DbCli : public ::testing::Test {
protected:
  static void SetUpTestSuite() { cluster_ = new TestCluster; }
  static void TearDownTestSuite() { delete cluster_; }

  // Each test migrates its own fresh database (made with psql, the stock client).
  void SetUp() override {
    static int database_count = 0;
    database_ = "db_cli_" + std::to_string(++database_count);
    auto created = run({"/usr/bin/psql", cluster_->connection_string(), "-c", "CREATE DATABASE " + database_});
    ASSERT_EQ(created.exit_code, 0) << created.output;
  }

  // Runs `berth db COMMAND` with the URL in the environment, as the help advises.
  RunResult db(std::string const& command, std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv = {
        BERTH_BINARY, "--config", "/dev/null", "db", command, "--location", migrations_.path().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, {"BERTH_DB_URL=" + cluster_->connection_string(database_)});
  }

  static TestCluster* cluster_;
  std::string database_;
  TempDir migrations_;
};

TestCluster* DbCli::cluster_ = nullptr;

TEST_F(DbCli, MigratesShowsInfoAndValidates) {
  migrations_.write("V1__create_orders.sql", "CREATE TABLE cli_orders (id int PRIMARY KEY);\n");
  migrations_.write("V1_1__add_total.sql", "ALTER TABLE cli_orders ADD COLUMN total numeric;\n");
  migrations_.write("V2__index.sql", "CREATE INDEX cli_orders_total ON cli_orders (total);\n");

  auto pending = db("info");
  ASSERT_EQ(pending.exit_code, 0) << pending.output;
  EXPECT_TRUE(contains(pending.output, "| Category ")) << pending.output;
  EXPECT_TRUE(contains(pending.output, "Pending")) << pending.output;

  auto migrated = db("migrate", {"--target", "1.1"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Migrated to version 1.1 - add total")) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Successfully applied 2 migrations")) << migrated.output;
  auto rest = db("migrate");
  EXPECT_TRUE(contains(rest.output, "Successfully applied 1 migration\n")) << rest.output;

  auto info = db("info");
  EXPECT_TRUE(contains(info.output, "create orders")) << info.output;
  EXPECT_FALSE(contains(info.output, "Pending")) << info.output;
  EXPECT_EQ(db("validate").exit_code, 0);

  // An applied file edited afterwards is what validate exists to catch.
  migrations_.write("V2__index.sql", "CREATE INDEX cli_orders_total ON cli_orders (total DESC);\n");
  auto invalid = db("validate");
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_TRUE(contains(invalid.output, "checksum mismatch")) << invalid.output;
  EXPECT_NE(db("migrate").exit_code, 0);
}

TEST_F(DbCli, ReportsAFailingMigrationWithFileAndLine) {
  migrations_.write("V1__broken.sql", "CREATE TABLE cli_fine (id int);\nINSERT INTO cli_missing VALUES (1);\n");
  auto result = db("migrate");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "V1__broken.sql:2")) << result.output;
  EXPECT_TRUE(contains(result.output, "cli_missing")) << result.output;
}

TEST_F(DbCli, NeedsAUrlAndAnExistingLocation) {
  auto no_url = run({BERTH_BINARY, "db", "info", "--location", migrations_.path().string()});
  EXPECT_EQ(no_url.exit_code, 2);
  EXPECT_TRUE(contains(no_url.output, "--url")) << no_url.output;
  auto no_dir = run({BERTH_BINARY, "db", "info", "--url", "postgresql:///x", "--location", "/nonexistent/dir"});
  EXPECT_EQ(no_dir.exit_code, 2);
}

}  // namespace
}  // namespace berth::testing

// `berth db migrate|info|validate|baseline|repair|clean --url` against a real PostgreSQL started
// for the suite.
#include <gtest/gtest.h>

#include "command_output.hpp"

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth/testing/test_cluster.hpp"

namespace berth::testing {
namespace {

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

// Two deploys at once: the advisory lock serialises them, each migration runs once, and a
// CREATE INDEX CONCURRENTLY (which waits for every other transaction) does not deadlock against
// the waiting migrator (Flyway's flyway/flyway#1654).
TEST_F(DbCli, TwoMigrateProcessesAtOnceApplyEachMigrationOnceWithoutDeadlock) {
  migrations_.write("V1__table.sql",
                    "CREATE TABLE cli_events (id int, at timestamptz);\n"
                    "INSERT INTO cli_events SELECT n, now() FROM generate_series(1, 20000) n;\n");
  migrations_.write("V2__index.sql", "CREATE INDEX CONCURRENTLY cli_events_at ON cli_events (at);\n");
  migrations_.write("V3__more.sql", "SELECT pg_sleep(0.2);\nALTER TABLE cli_events ADD COLUMN note text;\n");
  TempDir logs;
  std::vector<std::string> argv = {
      BERTH_BINARY, "--config", "/dev/null", "db", "migrate", "--location", migrations_.path().string()};
  std::vector<std::string> env = {"BERTH_DB_URL=" + cluster_->connection_string(database_)};
  Process first(argv, logs.path() / "first.log", std::nullopt, env);
  Process second(argv, logs.path() / "second.log", std::nullopt, env);

  auto const first_code = first.wait_exit(std::chrono::seconds(60));
  auto const second_code = second.wait_exit(std::chrono::seconds(60));

  ASSERT_TRUE(first_code && second_code) << "a migrator hung:\n" << first.output() << "\n" << second.output();
  EXPECT_EQ(*first_code, 0) << first.output();
  EXPECT_EQ(*second_code, 0) << second.output();
  auto const counts = run({"/usr/bin/psql", cluster_->connection_string(database_), "-XAtc",
                           "SELECT count(*) || ' ' || count(DISTINCT version) FROM flyway_schema_history"});
  EXPECT_EQ(counts.output, "3 3\n");
  EXPECT_TRUE(contains(first.output() + second.output(), "Successfully applied 3 migrations"))
      << first.output() << second.output();
  EXPECT_TRUE(contains(first.output() + second.output(), "Successfully applied 0 migrations"))
      << first.output() << second.output();
}

TEST_F(DbCli, NeedsAUrlAndAnExistingLocation) {
  auto no_url = run({BERTH_BINARY, "db", "info", "--location", migrations_.path().string()});
  EXPECT_EQ(no_url.exit_code, 2);
  EXPECT_TRUE(contains(no_url.output, "--url")) << no_url.output;
  auto no_dir = run({BERTH_BINARY, "db", "info", "--url", "postgresql:///x", "--location", "/nonexistent/dir"});
  EXPECT_EQ(no_dir.exit_code, 2);
}

TEST_F(DbCli, BaselinesAnExistingDatabaseThenMigratesOnlyLaterVersions) {
  auto created =
      run({"/usr/bin/psql", cluster_->connection_string(database_), "-c", "CREATE TABLE cli_legacy (id int)"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  migrations_.write("V1__legacy.sql", "CREATE TABLE cli_legacy (id int);\n");
  migrations_.write("V2__next.sql", "CREATE TABLE cli_next (id int);\n");
  EXPECT_EQ(db("migrate").exit_code, 1);  // a non-empty schema needs a baseline first

  auto baselined = db("baseline", {"--version", "1", "--description", "before berth"});
  ASSERT_EQ(baselined.exit_code, 0) << baselined.output;
  EXPECT_TRUE(contains(baselined.output,
                       "Creating Schema History table \"public\".\"flyway_schema_history\" with baseline ...\n"
                       "Successfully baselined schema with version: 1\n"))
      << baselined.output;
  auto migrated = db("migrate");
  EXPECT_TRUE(contains(migrated.output, "Migrated to version 2 - next")) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Successfully applied 1 migration\n")) << migrated.output;
  auto info = db("info");
  EXPECT_TRUE(contains(info.output, "| before berth | BASELINE |")) << info.output;
  EXPECT_TRUE(contains(info.output, "| Baseline |")) << info.output;
  EXPECT_FALSE(contains(info.output, "Pending")) << info.output;  // V1 is the baseline itself

  auto again = db("baseline", {"--version", "1", "--description", "before berth"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "already initialized with (1,before berth). Skipping.")) << again.output;
  auto refused = db("baseline");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.output, "as it has already been initialized with (1,before berth)")) << refused.output;
}

// Flyway's refusal names its Java API; berth adds the flags it accepts, and they work.
TEST_F(DbCli, ANonEmptySchemaIsRefusedWithBerthsOwnFlagsWhichBaselineOnMigrate) {
  auto created =
      run({"/usr/bin/psql", cluster_->connection_string(database_), "-c", "CREATE TABLE cli_existing (id int)"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  migrations_.write("V1__existing.sql", "CREATE TABLE cli_existing (id int);\n");
  migrations_.write("V2__added.sql", "CREATE TABLE cli_added (id int);\n");
  auto const refused = db("migrate");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.output, "but no schema history table")) << refused.output;
  EXPECT_TRUE(contains(refused.output, "`berth db migrate APP --baseline-on-migrate [--baseline-version V]`"))
      << refused.output;

  auto const migrated = db("migrate", {"--baseline-on-migrate", "--baseline-version", "1"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Successfully baselined schema with version: 1")) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Migrated to version 2 - added")) << migrated.output;
  EXPECT_TRUE(contains(migrated.output, "Successfully applied 1 migration\n")) << migrated.output;
}

TEST_F(DbCli, RepairsAnEditedMigrationSoValidatePasses) {
  migrations_.write("V1__init.sql", "CREATE TABLE cli_repair (id int);\n");
  ASSERT_EQ(db("migrate").exit_code, 0);
  migrations_.write("V1__init.sql", "CREATE TABLE cli_repair (id bigint);\n");
  EXPECT_EQ(db("validate").exit_code, 1);

  auto repaired = db("repair");
  ASSERT_EQ(repaired.exit_code, 0) << repaired.output;
  EXPECT_TRUE(contains(repaired.output, "No failed migration detected.")) << repaired.output;
  EXPECT_TRUE(contains(repaired.output, "Aligned applied migration with its file: version 1 (init)\n"))
      << repaired.output;
  EXPECT_TRUE(contains(repaired.output,
                       "Successfully repaired schema history table \"public\".\"flyway_schema_history\" (execution "
                       "time 00:00."))
      << repaired.output;
  EXPECT_EQ(db("validate").exit_code, 0);
}

TEST_F(DbCli, CleanNeedsAllowCleanAndThenDropsEverything) {
  migrations_.write("V1__init.sql", "CREATE TABLE cli_clean (id int);\nCREATE VIEW cli_clean_view AS SELECT 1;\n");
  ASSERT_EQ(db("migrate").exit_code, 0);

  auto refused = db("clean");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.output,
                       "Unable to execute clean as it has been disabled with the 'flyway.cleanDisabled' property.\n"
                       "HINT: "))
      << refused.output;
  EXPECT_TRUE(contains(db("info").output, "Success"));

  auto cleaned = db("clean", {"--allow-clean"});
  ASSERT_EQ(cleaned.exit_code, 0) << cleaned.output;
  EXPECT_TRUE(contains(cleaned.output, "Successfully cleaned schema \"public\" (execution time ")) << cleaned.output;
  auto info = db("info");
  EXPECT_TRUE(contains(info.output, "Pending")) << info.output;
  EXPECT_FALSE(contains(info.output, "Success")) << info.output;
  auto tables = run({"/usr/bin/psql", "-At", cluster_->connection_string(database_), "-c",
                     "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"});
  EXPECT_EQ(tables.output, "0\n");
}

}  // namespace
}  // namespace berth::testing

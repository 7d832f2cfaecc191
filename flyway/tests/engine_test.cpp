// migrate, info, validate, baseline, repair and clean against a real PostgreSQL started once for
// the suite through the postgres module; each test gets a fresh database. Expected history rows are Flyway's (§6):
// checksums come from the checksum module, which its unit tests pin to Flyway's own values.
#include "berth/flyway/engine.hpp"

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "berth/flyway/checksum.hpp"
#include "berth/flyway/error.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth/testing/test_cluster.hpp"

namespace berth::flyway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string const revert_hint =
    "Either revert the changes to the migration, or run repair to update the schema history.";

class EngineTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() { cluster_ = new berth::testing::TestCluster; }
  static void TearDownTestSuite() { delete cluster_; }

  void SetUp() override {
    static int database_count = 0;
    database_ = "flyway_test_" + std::to_string(++database_count);
    superuser("CREATE DATABASE " + database_);
    config_.lock_retry_interval = 20ms;
  }

  void TearDown() override { superuser("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)"); }

  static void superuser(std::string const& sql) {
    pqxx::connection connection(cluster_->connection_string());
    pqxx::nontransaction tx(connection);
    tx.exec(sql);
  }

  std::string url() const { return cluster_->connection_string(database_); }
  Engine engine() const { return Engine(url(), config_, files_.path()); }

  // The MigrationError message `action` throws, or "(no error)".
  template <class Action>
  static std::string error_of(Action action) {
    try {
      action();
    } catch (MigrationError const& e) {
      return e.what();
    }
    return "(no error)";
  }

  pqxx::result query(std::string const& sql) const {
    pqxx::connection connection(url());
    pqxx::nontransaction tx(connection);
    return tx.exec(sql);
  }

  std::string text(std::string const& sql) const {
    auto const result = query(sql);
    return result[0][0].is_null() ? "NULL" : result[0][0].as<std::string>();
  }

  std::int32_t checksum(std::string const& relative) const {
    auto const files = discover_migrations(files_.path(), config_);
    for (auto const& file : files)
      if (file.script == relative) return checksum_migration(file, config_, Placeholders(config_, {})).checksum;
    throw std::runtime_error("no migration " + relative);
  }

  std::vector<std::string> states(std::vector<MigrationInfo> const& infos) const {
    std::vector<std::string> lines;
    for (auto const& info : infos)
      lines.push_back((info.version ? info.version->to_string() : std::string("R")) + " " + info.description + " " +
                      std::string(display_name(info.state)));
    return lines;
  }

  static berth::testing::TestCluster* cluster_;
  std::string database_;
  berth::testing::TempDir files_;
  Config config_;
};

berth::testing::TestCluster* EngineTest::cluster_ = nullptr;

TEST(AdvisoryLockKey, IsFlywaysKeyForTheQuotedTable) {
  EXPECT_EQ(advisory_lock_key("\"public\".\"flyway_schema_history\""), 77433833903597);
}

TEST_F(EngineTest, CreatesTheHistoryTableWithFlywaysDdl) {
  auto const result = engine().migrate();
  EXPECT_TRUE(result.created_history_table);
  EXPECT_TRUE(result.executed.empty());

  auto const columns = query(
      "SELECT column_name, data_type, coalesce(character_maximum_length::text, ''), is_nullable, "
      "coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public' AND "
      "table_name = 'flyway_schema_history' ORDER BY ordinal_position");
  std::vector<std::string> actual;
  for (auto const& row : columns)
    actual.push_back(row[0].as<std::string>() + "|" + row[1].as<std::string>() + "|" + row[2].as<std::string>() + "|" +
                     row[3].as<std::string>() + "|" + row[4].as<std::string>());
  EXPECT_EQ(actual, (std::vector<std::string>{
                        "installed_rank|integer||NO|",
                        "version|character varying|50|YES|",
                        "description|character varying|200|NO|",
                        "type|character varying|20|NO|",
                        "script|character varying|1000|NO|",
                        "checksum|integer||YES|",
                        "installed_by|character varying|100|NO|",
                        "installed_on|timestamp without time zone||NO|now()",
                        "execution_time|integer||NO|",
                        "success|boolean||NO|",
                    }));

  auto const indexes = query(
      "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = "
      "'flyway_schema_history' ORDER BY indexname");
  ASSERT_EQ(indexes.size(), 2u);
  EXPECT_EQ(indexes[0][1].as<std::string>(),
            "CREATE UNIQUE INDEX flyway_schema_history_pk ON public.flyway_schema_history USING btree "
            "(installed_rank)");
  EXPECT_EQ(indexes[1][1].as<std::string>(),
            "CREATE INDEX flyway_schema_history_s_idx ON public.flyway_schema_history USING btree (success)");
  EXPECT_EQ(text("SELECT contype FROM pg_constraint WHERE conname = 'flyway_schema_history_pk'"), "p");
}

TEST_F(EngineTest, RefusesANonEmptySchemaWithoutHistoryTable) {
  query("CREATE TABLE existing (id int)");
  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Found non-empty schema(s) \"public\" but no schema history table. Use baseline() or set "
            "baselineOnMigrate to true to initialize the schema history table.");
}

TEST_F(EngineTest, AppliesTheCorpusAndRecordsWhatFlywayRecords) {
  files_.write("V1__init.sql",
               "\xEF\xBB\xBF-- the items\r\nCREATE TABLE items (id int PRIMARY KEY, name text);\r\n"
               "INSERT INTO items VALUES (1, 'a;b');\r\n");
  files_.write("V1_1__add_price.sql", "ALTER TABLE items ADD COLUMN price numeric;\n");
  files_.write("sub/V1.2.10__ten.sql", "INSERT INTO items (id, name) VALUES (10, 'ten');\n");
  files_.write("V1.2.9__nine.sql", "INSERT INTO items (id, name) VALUES (9, 'nine')");  // no final newline
  files_.write("V2__item_count.sql",
               "CREATE FUNCTION item_count() RETURNS bigint LANGUAGE plpgsql AS $body$\n"
               "BEGIN\n  RETURN (SELECT count(*) FROM items); -- a ; inside\nEND;\n$body$;\n");
  files_.write("R__views.sql", "CREATE OR REPLACE VIEW ${view} AS SELECT id, name FROM items;\n");
  config_.placeholders["view"] = "item_names";

  auto const began = std::chrono::steady_clock::now();
  auto const result = engine().migrate();
  std::cout << "migrate of the corpus: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count()
            << " ms\n";
  ASSERT_EQ(result.executed.size(), 6u);

  auto const rows = query(
      "SELECT installed_rank, coalesce(version, 'NULL'), description, type, script, checksum, installed_by, "
      "execution_time >= 0, success FROM flyway_schema_history ORDER BY installed_rank");
  std::vector<std::string> actual;
  for (auto const& row : rows)
    actual.push_back(row[0].as<std::string>() + "|" + row[1].as<std::string>() + "|" + row[2].as<std::string>() + "|" +
                     row[3].as<std::string>() + "|" + row[4].as<std::string>() + "|" + row[5].as<std::string>() + "|" +
                     row[6].as<std::string>() + "|" + row[7].as<std::string>() + "|" + row[8].as<std::string>());
  auto const sum = [&](std::string const& script) { return std::to_string(checksum(script)); };
  EXPECT_EQ(actual, (std::vector<std::string>{
                        "1|1|init|SQL|V1__init.sql|" + sum("V1__init.sql") + "|berth|t|t",
                        "2|1.1|add price|SQL|V1_1__add_price.sql|" + sum("V1_1__add_price.sql") + "|berth|t|t",
                        "3|1.2.9|nine|SQL|V1.2.9__nine.sql|" + sum("V1.2.9__nine.sql") + "|berth|t|t",
                        "4|1.2.10|ten|SQL|sub/V1.2.10__ten.sql|" + sum("sub/V1.2.10__ten.sql") + "|berth|t|t",
                        "5|2|item count|SQL|V2__item_count.sql|" + sum("V2__item_count.sql") + "|berth|t|t",
                        "6|NULL|views|SQL|R__views.sql|" + sum("R__views.sql") + "|berth|t|t",
                    }));
  // The BOM and CRLF do not count (§4), the placeholder does (repeatable, §4).
  EXPECT_EQ(checksum("V1__init.sql"),
            checksum_of("-- the itemsCREATE TABLE items (id int PRIMARY KEY, name text);INSERT INTO items VALUES "
                        "(1, 'a;b');",
                        "x"));
  EXPECT_EQ(checksum("R__views.sql"),
            checksum_of("CREATE OR REPLACE VIEW item_names AS SELECT id, name FROM items;", "x"));
  EXPECT_EQ(text("SELECT item_count()"), "3");
  EXPECT_EQ(text("SELECT count(*) FROM item_names"), "3");
  EXPECT_EQ(text("SELECT name FROM items WHERE id = 1"), "a;b");

  EXPECT_TRUE(engine().migrate().executed.empty());
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "6");

  // A changed repeatable runs again as a new row; the old one is superseded.
  files_.write("R__views.sql", "CREATE OR REPLACE VIEW ${view} AS SELECT id, name, price FROM items;\n");
  EXPECT_EQ(states(engine().info()).at(5), "R views Outdated");
  EXPECT_EQ(states(engine().info()).at(6), "R views Pending");
  ASSERT_EQ(engine().migrate().executed.size(), 1u);
  auto const after = states(engine().info());
  ASSERT_EQ(after.size(), 7u);
  EXPECT_EQ(after[5], "R views Superseded");
  EXPECT_EQ(after[6], "R views Success");
  EXPECT_EQ(text("SELECT installed_rank || ' ' || checksum FROM flyway_schema_history ORDER BY installed_rank DESC"),
            "7 " + sum("R__views.sql"));
}

TEST_F(EngineTest, RefusesToMigrateAfterAnAppliedFileWasEdited) {
  files_.write("V1__init.sql", "CREATE TABLE t (id int);\n");
  engine().migrate();
  auto const applied = checksum("V1__init.sql");
  files_.write("V1__init.sql", "CREATE TABLE t (id bigint);\n");
  files_.write("V2__more.sql", "CREATE TABLE u (id int);\n");

  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Validate failed: Migrations have failed validation\n"
            "Migration checksum mismatch for migration version 1\n"
            "-> Applied to database : " +
                std::to_string(applied) + "\n-> Resolved locally    : " + std::to_string(checksum("V1__init.sql")) +
                "\n" + revert_hint);
  EXPECT_EQ(text("SELECT to_regclass('u')"), "NULL");
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "1");
}

TEST_F(EngineTest, AFailingMigrationLeavesNothingBehind) {
  files_.write("V1__init.sql", "CREATE TABLE t (id int);\n");
  files_.write("V3__broken.sql", "CREATE TABLE v3_table (id int);\n\nINSERT INTO missing_table\n  VALUES (1);\n");

  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Migration V3__broken.sql failed\n"
            "-------------------------------\n"
            "SQL State  : 42P01\n"
            "Message    : ERROR:  relation \"missing_table\" does not exist\n"
            "Location   : V3__broken.sql:3 (" +
                (files_.path() / "V3__broken.sql").string() +
                ")\n"
                "Line       : 3\n"
                "Statement  : INSERT INTO missing_table");
  EXPECT_EQ(text("SELECT to_regclass('v3_table')"), "NULL");
  EXPECT_EQ(text("SELECT string_agg(coalesce(version, 'R'), ',' ORDER BY installed_rank) FROM "
                 "flyway_schema_history"),
            "1");
  EXPECT_EQ(states(engine().info()), (std::vector<std::string>{"1 init Success", "3 broken Pending"}));
}

TEST_F(EngineTest, InfoShowsPendingSuccessMissingAndTargetStates) {
  files_.write("V1__one.sql", "CREATE TABLE one (id int);\n");
  files_.write("V2__two.sql", "CREATE TABLE two (id int);\n");
  EXPECT_EQ(states(engine().info()), (std::vector<std::string>{"1 one Pending", "2 two Pending"}));

  MigrateOptions up_to_one;
  up_to_one.target = MigrationVersion::parse("1");
  EXPECT_EQ(engine().migrate(up_to_one).executed.size(), 1u);
  EXPECT_EQ(states(engine().info(up_to_one)), (std::vector<std::string>{"1 one Success", "2 two Above Target"}));
  EXPECT_EQ(states(engine().info()), (std::vector<std::string>{"1 one Success", "2 two Pending"}));
  EXPECT_EQ(error_of([&] { engine().validate(); }),
            "Validate failed: Migrations have failed validation\n"
            "Detected resolved migration not applied to database: 2.\n"
            "To fix this error, either run migrate, or set -ignoreMigrationPatterns='*:pending'.");
  engine().migrate();
  engine().validate();

  files_.write("V3__three.sql", "CREATE TABLE three (id int);\n");
  fs::remove(files_.path() / "V1__one.sql");
  auto const infos = engine().info();
  EXPECT_EQ(states(infos), (std::vector<std::string>{"1 one Missing", "2 two Success", "3 three Pending"}));
  EXPECT_TRUE(infos[0].installed_on && infos[0].installed_rank == 1);
  EXPECT_FALSE(infos[2].installed_on);
  EXPECT_EQ(infos[2].type, "SQL");
  EXPECT_EQ(infos[2].category, MigrationCategory::versioned);
  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Validate failed: Migrations have failed validation\n"
            "Detected applied migration not resolved locally: 1.\n"
            "If you removed this migration intentionally, run repair to mark the "
            "migration as deleted.");
}

TEST_F(EngineTest, AnOlderVersionNeedsOutOfOrder) {
  files_.write("V1__one.sql", "CREATE TABLE one (id int);\n");
  files_.write("V3__three.sql", "CREATE TABLE three (id int);\n");
  engine().migrate();
  files_.write("V2__two.sql", "CREATE TABLE two (id int);\n");
  EXPECT_EQ(states(engine().info()), (std::vector<std::string>{"1 one Success", "3 three Success", "2 two Ignored"}));
  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Validate failed: Migrations have failed validation\n"
            "Detected resolved migration not applied to database: 2.\n"
            "To ignore this migration, set -ignoreMigrationPatterns='*:ignored'. To allow "
            "executing this migration, set -outOfOrder=true.");
  MigrateOptions out_of_order;
  out_of_order.out_of_order = true;
  EXPECT_EQ(engine().migrate(out_of_order).executed.size(), 1u);
  EXPECT_EQ(states(engine().info()),
            (std::vector<std::string>{"1 one Success", "3 three Success", "2 two Out of Order"}));
}

TEST_F(EngineTest, ConcurrentMigratorsApplyEachMigrationOnce) {
  for (int version = 1; version <= 5; ++version)
    files_.write("V" + std::to_string(version) + "__step.sql",
                 "SELECT pg_sleep(0.05);\nCREATE TABLE step_" + std::to_string(version) + " (id int);\n");
  std::atomic<std::size_t> executed{0};
  std::atomic<int> failures{0};
  auto const run = [&] {
    try {
      executed += engine().migrate().executed.size();
    } catch (std::exception const& e) {
      ++failures;
      ADD_FAILURE() << e.what();
    }
  };
  std::thread first(run);
  std::thread second(run);
  first.join();
  second.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(executed.load(), 5u);
  EXPECT_EQ(text("SELECT count(*) || ' ' || count(DISTINCT version) FROM flyway_schema_history"), "5 5");
}

std::string const already_contains_migrations =
    "Unable to baseline schema history table \"public\".\"flyway_schema_history\" as it already contains migrations";

std::string history_rows(pqxx::result const& rows) {
  std::string text;
  for (auto const& row : rows) {
    for (auto const& field : row) text += (field.is_null() ? std::string("NULL") : field.as<std::string>()) + "|";
    text += "\n";
  }
  return text;
}

std::string const history_columns =
    "SELECT installed_rank, version, description, type, script, checksum, execution_time, success FROM "
    "flyway_schema_history ORDER BY installed_rank";

TEST_F(EngineTest, BaselineOnAnExistingDatabaseThenMigrateAppliesOnlyLaterVersions) {
  // A database built before migrations were tracked: V1 and V2 are already in it.
  query("CREATE TABLE legacy (id int); CREATE TABLE legacy_two (id int)");
  files_.write("V1__legacy.sql", "CREATE TABLE legacy (id int);\n");
  files_.write("V2__legacy_two.sql", "CREATE TABLE legacy_two (id int);\n");
  files_.write("V3__new.sql", "CREATE TABLE new_table (id int);\n");
  config_.baseline_version = "2";

  auto const result = engine().baseline();
  EXPECT_TRUE(result.created_history_table);
  EXPECT_FALSE(result.already_baselined);
  EXPECT_EQ(result.history_table, "\"public\".\"flyway_schema_history\"");
  EXPECT_EQ(history_rows(query(history_columns)),
            "1|2|<< Flyway Baseline >>|BASELINE|<< Flyway Baseline >>|NULL|0|t|\n");
  EXPECT_EQ(text("SELECT installed_by FROM flyway_schema_history"), "berth");
  EXPECT_EQ(states(engine().info()),
            (std::vector<std::string>{"2 << Flyway Baseline >> Baseline", "1 legacy Below Baseline", "3 new Pending"}));

  auto const migrated = engine().migrate();
  ASSERT_EQ(migrated.executed.size(), 1u);
  EXPECT_EQ(migrated.executed[0].script, "V3__new.sql");
  EXPECT_EQ(text("SELECT string_agg(version || ' ' || type, ',' ORDER BY installed_rank) FROM flyway_schema_history"),
            "2 BASELINE,3 SQL");
  engine().validate();

  // The same baseline again changes nothing; a different one is refused with Flyway's message.
  EXPECT_TRUE(engine().baseline().already_baselined);
  config_.baseline_version = "3";
  EXPECT_EQ(error_of([&] { engine().baseline(); }),
            "Unable to baseline schema history table \"public\".\"flyway_schema_history\" with (3,<< Flyway Baseline "
            ">>) as it has already been initialized with (2,<< Flyway Baseline >>)\nHINT: the database is baselined "
            "already; run info to see its history.");
}

TEST_F(EngineTest, BaselineIsRefusedOnAMigratedDatabase) {
  files_.write("V1__init.sql", "CREATE TABLE t (id int);\n");
  engine().migrate();
  auto const error = error_of([&] { engine().baseline(); });
  EXPECT_EQ(error.substr(0, error.find('\n')), already_contains_migrations);
  EXPECT_NE(error.find("\nHINT: "), std::string::npos) << error;
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "1");
}

TEST_F(EngineTest, BaselineOnMigrateBaselinesANonEmptySchemaFirst) {
  query("CREATE TABLE legacy (id int)");
  files_.write("V1__legacy.sql", "CREATE TABLE legacy (id int);\n");
  files_.write("V2__more.sql", "CREATE TABLE more (id int);\n");
  config_.baseline_on_migrate = true;
  config_.baseline_description = "before berth";
  auto const result = engine().migrate();
  EXPECT_EQ(result.baselined_version, "1");
  ASSERT_EQ(result.executed.size(), 1u);
  EXPECT_EQ(result.executed[0].script, "V2__more.sql");
  EXPECT_EQ(text("SELECT string_agg(version || ' ' || type || ' ' || description || ' ' || script, ',' ORDER BY "
                 "installed_rank) FROM flyway_schema_history"),
            "1 BASELINE before berth before berth,2 SQL more V2__more.sql");
}

TEST_F(EngineTest, RepairRemovesAFailedMigrationSoMigrateCanRetry) {
  files_.write("V1__init.sql", "CREATE TABLE t (id int);\n");
  // Non-transactional, so its failure is recorded with success = false (§6).
  files_.write("V2__index.sql", "CREATE INDEX CONCURRENTLY t_missing_idx ON t (missing_column);\n");
  EXPECT_NE(error_of([&] { engine().migrate(); }).find("Migration V2__index.sql failed"), std::string::npos);
  EXPECT_EQ(text("SELECT string_agg(version || ' ' || success, ',' ORDER BY installed_rank) FROM "
                 "flyway_schema_history"),
            "1 true,2 false");
  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "Validate failed: Migrations have failed validation\n"
            "Detected failed migration to version 2 (index).\n"
            "Please remove any half-completed changes then run repair to fix the schema history.");

  files_.write("V2__index.sql", "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n");
  auto const repaired = engine().repair();
  ASSERT_EQ(repaired.removed_failed.size(), 1u);
  EXPECT_EQ(repaired.removed_failed[0].version->to_string(), "2");
  EXPECT_EQ(repaired.removed_failed[0].description, "index");
  EXPECT_TRUE(repaired.marked_deleted.empty());
  EXPECT_TRUE(repaired.aligned.empty());

  ASSERT_EQ(engine().migrate().executed.size(), 1u);
  engine().validate();
  EXPECT_EQ(text("SELECT to_regclass('t_id_idx')"), "t_id_idx");
  EXPECT_TRUE(engine().repair().removed_failed.empty());  // nothing left to repair
}

TEST_F(EngineTest, RepairRealignsEditedFilesAndMarksRemovedOnesDeleted) {
  files_.write("V1__one.sql", "CREATE TABLE one (id int);\n");
  files_.write("V2__two.sql", "CREATE TABLE two (id int);\n");
  files_.write("V3__three.sql", "CREATE TABLE three (id int);\n");
  engine().migrate();
  files_.write("V2__two.sql", "CREATE TABLE two (id bigint);\n");  // edited after it ran
  fs::rename(files_.path() / "V3__three.sql", files_.path() / "V3__third_table.sql");
  fs::remove(files_.path() / "V1__one.sql");
  auto const invalid = error_of([&] { engine().validate(); });
  EXPECT_NE(invalid.find("Detected applied migration not resolved locally: 1."), std::string::npos) << invalid;
  EXPECT_NE(invalid.find("Migration checksum mismatch for migration version 2"), std::string::npos) << invalid;
  EXPECT_NE(invalid.find("Migration description mismatch for migration version 3"), std::string::npos) << invalid;

  auto const result = engine().repair();
  EXPECT_TRUE(result.removed_failed.empty());
  ASSERT_EQ(result.marked_deleted.size(), 1u);
  EXPECT_EQ(result.marked_deleted[0].script, "V1__one.sql");
  ASSERT_EQ(result.aligned.size(), 2u);
  EXPECT_EQ(result.aligned[0].version->to_string(), "2");
  EXPECT_EQ(result.aligned[1].version->to_string(), "3");
  engine().validate();
  EXPECT_TRUE(engine().migrate().executed.empty());

  auto const sum = [&](std::string const& script) { return std::to_string(checksum(script)); };
  EXPECT_EQ(history_rows(query(history_columns + " OFFSET 1")),
            "2|2|two|SQL|V2__two.sql|" + sum("V2__two.sql") + "|" +
                text("SELECT execution_time FROM flyway_schema_history WHERE installed_rank = 2") + "|t|\n" +
                "3|3|third table|SQL|V3__three.sql|" + sum("V3__third_table.sql") + "|" +
                text("SELECT execution_time FROM flyway_schema_history WHERE installed_rank = 3") + "|t|\n" +
                "4|1|one|DELETE|V1__one.sql|" +
                text("SELECT checksum FROM flyway_schema_history WHERE installed_rank = 1") + "|0|t|\n");
  EXPECT_EQ(states(engine().info()),
            (std::vector<std::string>{"1 one Deleted", "2 two Success", "3 third table Success", "1 one Success"}));
  // Repairing again finds nothing to do.
  auto const again = engine().repair();
  EXPECT_TRUE(again.marked_deleted.empty() && again.aligned.empty() && again.removed_failed.empty());
}

TEST_F(EngineTest, RepairRewritesARawRepeatableChecksumToTheReplacedOne) {
  files_.write("R__view.sql", "CREATE OR REPLACE VIEW ${name} AS SELECT 1 AS one;\n");
  config_.placeholders["name"] = "the_view";
  engine().migrate();
  // Flyway before 6.3 stored the checksum of the raw text; it still matches (§4), repair updates it.
  auto const raw = checksum_of("CREATE OR REPLACE VIEW ${name} AS SELECT 1 AS one;", "R__view.sql");
  query("UPDATE flyway_schema_history SET checksum = " + std::to_string(raw));
  EXPECT_EQ(states(engine().info()), (std::vector<std::string>{"R view Success"}));
  auto const result = engine().repair();
  ASSERT_EQ(result.aligned.size(), 1u);
  EXPECT_FALSE(result.aligned[0].version);
  EXPECT_EQ(text("SELECT checksum FROM flyway_schema_history"), std::to_string(checksum("R__view.sql")));
  EXPECT_TRUE(engine().repair().aligned.empty());
  EXPECT_TRUE(engine().migrate().executed.empty());
}

TEST_F(EngineTest, CleanIsRefusedUnlessAllowed) {
  files_.write("V1__init.sql", "CREATE TABLE keep_me (id int);\n");
  engine().migrate();
  EXPECT_EQ(error_of([&] { engine().clean({}); }),
            "Unable to execute clean as it has been disabled with the 'flyway.cleanDisabled' property.\nHINT: clean "
            "drops every object in the schema; allow it explicitly (berth db clean --allow-clean) only where losing "
            "all data is intended.");
  EXPECT_EQ(text("SELECT to_regclass('keep_me')"), "keep_me");
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "1");
}

TEST_F(EngineTest, CleanDropsEveryObjectInTheSchema) {
  files_.write("V1__everything.sql",
               "CREATE EXTENSION citext;\n"
               "CREATE TYPE mood AS ENUM ('ok', 'sad');\n"
               "CREATE DOMAIN positive AS int CHECK (VALUE > 0);\n"
               "CREATE TYPE pair AS (a int, b text);\n"
               "CREATE TYPE float_range AS RANGE (subtype = float8);\n"
               "CREATE SEQUENCE standalone_seq;\n"
               "CREATE TABLE people (id serial PRIMARY KEY, name citext, feeling mood, n positive);\n"
               "CREATE TABLE pets (id int REFERENCES people (id), p pair);\n"
               "CREATE TABLE events (at date) PARTITION BY RANGE (at);\n"
               "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n"
               "CREATE VIEW people_names AS SELECT name FROM people;\n"
               "CREATE MATERIALIZED VIEW people_count AS SELECT count(*) FROM people;\n"
               "CREATE FUNCTION add_one(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';\n"
               "CREATE PROCEDURE noop() LANGUAGE sql AS 'SELECT 1';\n"
               "CREATE AGGREGATE my_sum(int) (sfunc = int4pl, stype = int);\n"
               "CREATE COLLATION my_c (locale = 'C');\n");
  engine().migrate();
  CleanOptions allowed;
  allowed.allow_clean = true;
  auto const result = engine().clean(allowed);
  EXPECT_TRUE(result.schema_existed);
  EXPECT_FALSE(result.schema_dropped);
  EXPECT_EQ(result.schema, "\"public\"");
  EXPECT_GT(result.objects_dropped, 10u);

  auto const ns = std::string("(SELECT oid FROM pg_namespace WHERE nspname = 'public')");
  EXPECT_EQ(text("SELECT count(*) FROM pg_class WHERE relnamespace = " + ns), "0");
  EXPECT_EQ(text("SELECT count(*) FROM pg_proc WHERE pronamespace = " + ns), "0");
  EXPECT_EQ(text("SELECT count(*) FROM pg_type WHERE typnamespace = " + ns), "0");
  EXPECT_EQ(text("SELECT count(*) FROM pg_collation WHERE collnamespace = " + ns), "0");
  EXPECT_EQ(text("SELECT count(*) FROM pg_extension WHERE extname = 'citext'"), "0");
  EXPECT_EQ(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"), "1");  // the schema stays

  // A clean database migrates from scratch again.
  EXPECT_EQ(engine().migrate().executed.size(), 1u);
}

TEST_F(EngineTest, CleanDropsASchemaBerthCreated) {
  config_.default_schema = "app";
  files_.write("V1__init.sql", "CREATE TABLE in_app (id int);\n");
  engine().migrate();
  EXPECT_EQ(text("SELECT type FROM app.flyway_schema_history WHERE installed_rank = 0"), "SCHEMA");
  CleanOptions allowed;
  allowed.allow_clean = true;
  auto const result = engine().clean(allowed);
  EXPECT_TRUE(result.schema_dropped);
  EXPECT_EQ(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"), "0");
  EXPECT_FALSE(engine().clean(allowed).schema_existed);
}

TEST_F(EngineTest, CopyFromStdinLoadsItsRows) {
  files_.write("V1__copy.sql",
               "CREATE TABLE copy_items (id int PRIMARY KEY, name text, note text);\n"
               "COPY copy_items (id, name, note) FROM STDIN;\n"
               "1\tplain\t\\N\n"
               "2\ttab\\there\tback\\\\slash;\n"
               "\\.\n"
               "COPY copy_items FROM stdin WITH (FORMAT csv);\n"
               "3,\"comma, \"\"quoted\"\"\",x\n"
               "\\.\n"
               "INSERT INTO copy_items VALUES (4, 'after', NULL);\n");
  ASSERT_EQ(engine().migrate().executed.size(), 1u);
  EXPECT_EQ(text("SELECT count(*) FROM copy_items"), "4");
  EXPECT_EQ(text("SELECT note IS NULL FROM copy_items WHERE id = 1"), "t");
  EXPECT_EQ(text("SELECT name FROM copy_items WHERE id = 2"), "tab\there");
  EXPECT_EQ(text("SELECT note FROM copy_items WHERE id = 2"), "back\\slash;");
  EXPECT_EQ(text("SELECT name FROM copy_items WHERE id = 3"), "comma, \"quoted\"");
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "1");
}

TEST_F(EngineTest, MalformedCopyDataFailsWithFileAndLine) {
  files_.write("V1__table.sql", "CREATE TABLE copy_items (id int PRIMARY KEY, name text);\n");
  files_.write("V2__bad_copy.sql",
               "INSERT INTO copy_items VALUES (1, 'first');\n"
               "COPY copy_items (id, name) FROM STDIN;\n"
               "2\tfine\n"
               "not_a_number\tbad\n"
               "\\.\n");
  auto const error = error_of([&] { engine().migrate(); });
  EXPECT_NE(error.find("Migration V2__bad_copy.sql failed"), std::string::npos) << error;
  EXPECT_NE(error.find("SQL State  : 22P02"), std::string::npos) << error;
  EXPECT_NE(error.find("Location   : V2__bad_copy.sql:4 ("), std::string::npos) << error;
  EXPECT_NE(error.find("Statement  : COPY copy_items (id, name) FROM STDIN"), std::string::npos) << error;
  // Rolled back whole, the INSERT before the COPY included, and not recorded.
  EXPECT_EQ(text("SELECT count(*) FROM copy_items"), "0");
  EXPECT_EQ(text("SELECT count(*) FROM flyway_schema_history"), "1");

  files_.write("V2__bad_copy.sql", "INSERT INTO copy_items VALUES (1, 'first');\nCOPY copy_items FROM STDIN;\n2\tx\n");
  EXPECT_EQ(error_of([&] { engine().migrate(); }),
            "V2__bad_copy.sql:2: COPY ... FROM STDIN data is not terminated by a line \\.");
  EXPECT_EQ(text("SELECT count(*) FROM copy_items"), "0");
}

}  // namespace
}  // namespace berth::flyway

// Unit tests for migration file names, `.conf` settings, discovery order and duplicate
// detection (flyway-compat.md §2–3), on real files in a temp dir.
#include "berth/flyway/migration_files.hpp"

#include <gtest/gtest.h>

#include "berth/flyway/error.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::flyway {
namespace {

std::optional<MigrationName> parse(std::string_view name, Config const& config = {}) {
  return parse_migration_name(name, config);
}

TEST(MigrationName, ParsesVersionedNames) {
  auto name = parse("V1_1__create_users.sql");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, MigrationKind::versioned);
  EXPECT_EQ(name->version->to_string(), "1.1");
  EXPECT_EQ(name->description, "create users");
}

TEST(MigrationName, SplitsAtTheFirstSeparator) {
  auto name = parse("V3__a__b.sql");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->version->to_string(), "3");
  EXPECT_EQ(name->description, "a  b");
}

TEST(MigrationName, AcceptsAVersionWithoutDescription) {
  auto name = parse("V7.sql");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->version->to_string(), "7");
  EXPECT_EQ(name->description, "");
}

TEST(MigrationName, ParsesRepeatablesBaselinesAndUndos) {
  auto repeatable = parse("R__My_view.sql");
  ASSERT_TRUE(repeatable);
  EXPECT_EQ(repeatable->kind, MigrationKind::repeatable);
  EXPECT_FALSE(repeatable->version);
  EXPECT_EQ(repeatable->description, "My view");
  auto baseline = parse("B5__base.sql");
  ASSERT_TRUE(baseline);
  EXPECT_EQ(baseline->kind, MigrationKind::baseline);
  auto undo = parse("U2__drop.sql");
  ASSERT_TRUE(undo);
  EXPECT_EQ(undo->kind, MigrationKind::undo);
}

TEST(MigrationName, MatchesTheSuffixIgnoringCaseButThePrefixExactly) {
  EXPECT_TRUE(parse("V1__x.SQL"));
  EXPECT_TRUE(parse("V1__x.Sql"));
  EXPECT_FALSE(parse("v1__x.sql"));
  EXPECT_FALSE(parse("r__x.sql"));
}

TEST(MigrationName, KeepsNonAsciiDescriptions) {
  auto name = parse("V2__caf\xC3\xA9_cr\xC3\xA8me.sql");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->description, "caf\xC3\xA9 cr\xC3\xA8me");
}

TEST(MigrationName, RejectsNamesThatAreNotMigrations) {
  for (std::string_view name :
       {"V.sql", "V__x.sql", "R1__x.sql", "V1.a__x.sql", "Vx__y.sql", "V1..2__x.sql", "x.sql", "V1__x.txt",
        "V1__x.sql.conf", "README.md", "beforeMigrate.sql", "afterMigrate__x.sql", ".sql", "R.sql"})
    EXPECT_FALSE(parse(name)) << name;
}

TEST(MigrationName, PrefersTheLongestMatchingPrefix) {
  Config config;
  config.baseline_migration_prefix = "VB";
  auto name = parse("VB3__x.sql", config);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, MigrationKind::baseline);
  EXPECT_EQ(name->version->to_string(), "3");
}

TEST(MigrationName, TreatsCallbackNamesAsCallbacksEvenWithAMatchingPrefix) {
  Config config;
  config.sql_migration_prefix = "before";
  EXPECT_FALSE(parse("beforeMigrate__x.sql", config));
  EXPECT_TRUE(parse("before1__x.sql", config));
}

TEST(MigrationName, HonoursConfiguredSeparatorAndSuffixes) {
  Config config;
  config.sql_migration_separator = "-";
  config.sql_migration_suffixes = {".pgsql", ".sql"};
  auto name = parse("V1-add_x.PGSQL", config);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->description, "add x");
}

class DiscoverMigrations : public ::testing::Test {
protected:
  std::vector<std::string> scripts() {
    std::vector<std::string> result;
    for (auto const& migration : discover_migrations(dir_.path(), config_)) result.push_back(migration.script);
    return result;
  }
  std::string error() {
    try {
      discover_migrations(dir_.path(), config_);
    } catch (MigrationError const& error) {
      return error.what();
    }
    return "no error";
  }
  berth::testing::TempDir dir_;
  Config config_;
};

TEST_F(DiscoverMigrations, ScansRecursivelyWithRelativeSlashSeparatedScripts) {
  dir_.write("V1__init.sql", "");
  dir_.write("sub/deeper/V2__x.sql", "");
  dir_.write("notes.txt", "");
  auto migrations = discover_migrations(dir_.path(), config_);
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[1].script, "sub/deeper/V2__x.sql");
  EXPECT_EQ(migrations[1].path, dir_.path() / "sub/deeper/V2__x.sql");
  EXPECT_EQ(migrations[1].filename(), "V2__x.sql");
  EXPECT_EQ(migrations[1].history_type(), "SQL");
}

TEST_F(DiscoverMigrations, OrdersVersionsNumericallyThenRepeatablesThenUndos) {
  for (auto name : {"R__b.sql", "V1.2.10__c.sql", "U1__undo.sql", "V1_1__b.sql", "V1.2.9__d.sql", "R__a.sql",
                    "R__Z.sql", "V1__a.sql", "B1.2__base.sql"})
    dir_.write(name, "");
  EXPECT_EQ(scripts(),
            (std::vector<std::string>{"V1__a.sql", "V1_1__b.sql", "B1.2__base.sql", "V1.2.9__d.sql", "V1.2.10__c.sql",
                                      "R__Z.sql", "R__a.sql", "R__b.sql", "U1__undo.sql"}));
}

TEST_F(DiscoverMigrations, FlagsUndoMigrationsAsNotApplied) {
  dir_.write("U1__undo.sql", "");
  dir_.write("V1__do.sql", "");
  auto migrations = discover_migrations(dir_.path(), config_);
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_TRUE(migrations[0].is_applied_by_migrate());
  EXPECT_EQ(migrations[1].kind, MigrationKind::undo);
  EXPECT_FALSE(migrations[1].is_applied_by_migrate());
  EXPECT_EQ(migrations[1].history_type(), "UNDO_SQL");
}

TEST_F(DiscoverMigrations, OrdersRepeatablesInUtf16CodeUnitOrder) {
  // U+1F600 is a surrogate pair in UTF-16 (D83D DE00) and sorts before U+FF21 (FF21), although
  // its UTF-8 bytes (F0 ...) sort after (EF ...).
  dir_.write("R__\xEF\xBC\xA1.sql", "");       // U+FF21 FULLWIDTH LATIN CAPITAL LETTER A
  dir_.write("R__\xF0\x9F\x98\x80.sql", "");   // U+1F600
  dir_.write("R__\xC3\xA9t\xC3\xA9.sql", "");  // U+00E9
  dir_.write("R__\xEE\x80\x80.sql", "");       // U+E000, first code point after the surrogates
  dir_.write("R__z.sql", "");
  EXPECT_EQ(scripts(), (std::vector<std::string>{"R__z.sql", "R__\xC3\xA9t\xC3\xA9.sql", "R__\xF0\x9F\x98\x80.sql",
                                                 "R__\xEE\x80\x80.sql", "R__\xEF\xBC\xA1.sql"}));
}

TEST_F(DiscoverMigrations, RejectsEqualVersionsNamingBothFiles) {
  dir_.write("V1__a.sql", "");
  dir_.write("V1.0__b.sql", "");
  EXPECT_EQ(error(), "Found more than one migration with version 1.0\nOffenders:\n-> " +
                         (dir_.path() / "V1.0__b.sql").string() + " (SQL)\n-> " + (dir_.path() / "V1__a.sql").string() +
                         " (SQL)");
}

TEST_F(DiscoverMigrations, RejectsUnderscoreAndDotFormsOfOneVersion) {
  dir_.write("V1_1__a.sql", "");
  dir_.write("sub/V1.1__b.sql", "");
  EXPECT_EQ(error(), "Found more than one migration with version 1.1\nOffenders:\n-> " +
                         (dir_.path() / "V1_1__a.sql").string() + " (SQL)\n-> " +
                         (dir_.path() / "sub/V1.1__b.sql").string() + " (SQL)");
}

TEST_F(DiscoverMigrations, RejectsRepeatablesWithOneDescription) {
  dir_.write("R__my_view.sql", "");
  dir_.write("other/R__my_view.sql", "");
  EXPECT_EQ(error(), "Found more than one repeatable migration with description my view\nOffenders:\n-> " +
                         (dir_.path() / "R__my_view.sql").string() + " (SQL)\n-> " +
                         (dir_.path() / "other/R__my_view.sql").string() + " (SQL)");
}

TEST_F(DiscoverMigrations, AllowsABaselineBesideAVersionedMigrationOfTheSameVersion) {
  dir_.write("V5__x.sql", "");
  dir_.write("B5__x.sql", "");
  dir_.write("U5__x.sql", "");
  EXPECT_EQ(scripts(), (std::vector<std::string>{"B5__x.sql", "V5__x.sql", "U5__x.sql"}));
}

TEST_F(DiscoverMigrations, ReadsScriptSettings) {
  dir_.write("V4__idx.sql", "CREATE INDEX CONCURRENTLY i ON t (c);");
  dir_.write("V4__idx.sql.conf",
             "# no transaction\nexecuteInTransaction = false\nencoding=UTF-8\n"
             "placeholderReplacement=FALSE\n");
  dir_.write("V5__plain.sql", "");
  auto migrations = discover_migrations(dir_.path(), config_);
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[0].settings.execute_in_transaction, false);
  EXPECT_EQ(migrations[0].settings.placeholder_replacement, false);
  EXPECT_EQ(migrations[0].settings.encoding, "UTF-8");
  EXPECT_FALSE(migrations[1].settings.execute_in_transaction);
}

TEST_F(DiscoverMigrations, RejectsInvalidScriptSettings) {
  dir_.write("V4__idx.sql", "");
  dir_.write("V4__idx.sql.conf", "executeInTransaction=maybe\n");
  EXPECT_EQ(error(), "Invalid value for executeInTransaction (should be either true or false): maybe");
  dir_.write("V4__idx.sql.conf", "shouldExecute=false\n");
  EXPECT_EQ(error(), "Unknown script configuration property in " + (dir_.path() / "V4__idx.sql.conf").string() +
                         ": shouldExecute");
  dir_.write("V4__idx.sql.conf", "encoding=ISO-8859-1\n");
  EXPECT_EQ(error(), "unsupported encoding ISO-8859-1 in " + (dir_.path() / "V4__idx.sql.conf").string() +
                         ": berth reads migrations as UTF-8 only\nHINT: convert the script to UTF-8 and remove the "
                         "encoding setting.");
}

TEST_F(DiscoverMigrations, RejectsAMissingDirectory) {
  auto missing = dir_.path() / "nope";
  try {
    discover_migrations(missing, config_);
    FAIL();
  } catch (MigrationError const& error) {
    EXPECT_EQ(std::string(error.what()).rfind("cannot read migrations directory " + missing.string() + ": ", 0), 0u)
        << error.what();
  }
}

TEST_F(DiscoverMigrations, ReturnsNothingForAnEmptyDirectory) {
  EXPECT_TRUE(scripts().empty());
}

}  // namespace
}  // namespace berth::flyway

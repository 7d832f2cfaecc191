// Unit tests for splitting PostgreSQL scripts into statements the way Flyway executes them, and
// for the statements that must run outside a transaction (flyway-compat.md §7).
#include "berth/flyway/sql_splitter.hpp"

#include <gtest/gtest.h>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

std::vector<Statement> split(std::string_view script) {
  return split_statements(script, "V1__x.sql");
}

std::vector<std::string> sql_of(std::string_view script) {
  std::vector<std::string> result;
  for (auto const& statement : split(script)) result.push_back(statement.sql);
  return result;
}

std::string error_of(std::string_view script) {
  try {
    split(script);
  } catch (MigrationError const& error) {
    return error.what();
  }
  return "no error";
}

using Sql = std::vector<std::string>;

TEST(SplitStatements, SplitsAtSemicolonsWithStartingLines) {
  auto statements = split("CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);  INSERT INTO a\n  VALUES (2);\n");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_EQ(statements[0].sql, "CREATE TABLE a (id int)");
  EXPECT_EQ(statements[0].line, 1);
  EXPECT_EQ(statements[1].sql, "INSERT INTO a VALUES (1)");
  EXPECT_EQ(statements[1].line, 3);
  EXPECT_EQ(statements[2].sql, "INSERT INTO a\n  VALUES (2)");
  EXPECT_EQ(statements[2].line, 3);
  EXPECT_FALSE(statements[0].copy_data);
}

TEST(SplitStatements, KeepsALastStatementWithoutSemicolon) {
  EXPECT_EQ(sql_of("SELECT 1;\nSELECT 2\n"), (Sql{"SELECT 1", "SELECT 2"}));
}

TEST(SplitStatements, IgnoresEmptyStatementsAndCommentOnlyText) {
  EXPECT_EQ(sql_of(";;\n-- only a comment\n/* and a block */\n"), Sql{});
  EXPECT_EQ(sql_of("SELECT 1;\n-- trailing comment; with semicolon\n"), Sql{"SELECT 1"});
}

TEST(SplitStatements, StartsAStatementAtItsFirstTokenAfterComments) {
  auto statements = split("-- header\n/* block\n comment */\n  SELECT 1;");
  ASSERT_EQ(statements.size(), 1u);
  EXPECT_EQ(statements[0].sql, "SELECT 1");
  EXPECT_EQ(statements[0].line, 4);
}

TEST(SplitStatements, CountsCrLfAndLoneCrAsOneLineBreak) {
  auto crlf = split("SELECT 1;\r\n\r\nSELECT 2;\r\n");
  ASSERT_EQ(crlf.size(), 2u);
  EXPECT_EQ(crlf[1].line, 3);
  auto cr = split("SELECT 1;\r\rSELECT 2;");
  ASSERT_EQ(cr.size(), 2u);
  EXPECT_EQ(cr[1].line, 3);
}

TEST(SplitStatements, DropsALeadingByteOrderMark) {
  EXPECT_EQ(sql_of("\xEF\xBB\xBFSELECT 1;"), Sql{"SELECT 1"});
}

TEST(SplitStatements, KeepsDollarQuotedFunctionBodiesWhole) {
  std::string body =
      "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  UPDATE t SET x = 1;\n  RETURN NEW;\nEND;\n$$ LANGUAGE "
      "plpgsql";
  auto statements = split(body + ";\nSELECT 1;");
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0].sql, body);
  EXPECT_EQ(statements[1].line, 7);
}

TEST(SplitStatements, MatchesDollarQuoteTags) {
  std::string body = "DO $body$ BEGIN PERFORM $$;$$; RAISE NOTICE 'x;'; END $body$";
  EXPECT_EQ(sql_of(body + ";SELECT $1, a$b$c;"), (Sql{body, "SELECT $1, a$b$c"}));
}

TEST(SplitStatements, RespectsQuotedStringsAndIdentifiers) {
  EXPECT_EQ(sql_of("SELECT 'a;''b';SELECT \"we;\"\"ird\";SELECT E'it\\'s;', 'c:\\';SELECT 2"),
            (Sql{"SELECT 'a;''b'", "SELECT \"we;\"\"ird\"", "SELECT E'it\\'s;', 'c:\\'", "SELECT 2"}));
}

TEST(SplitStatements, RespectsLineAndNestedBlockComments) {
  EXPECT_EQ(sql_of("SELECT 1 -- not; the end\n;SELECT /* a; /* nested; */ still; */ 2;"),
            (Sql{"SELECT 1 -- not; the end", "SELECT /* a; /* nested; */ still; */ 2"}));
}

TEST(SplitStatements, KeepsBeginAtomicBodiesWhole) {
  std::string body =
      "CREATE FUNCTION f(a int) RETURNS int LANGUAGE SQL\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n"
      "  SELECT 2;\nEND";
  EXPECT_EQ(sql_of(body + ";\nBEGIN;\nSELECT 1;\nEND;"), (Sql{body, "BEGIN", "SELECT 1", "END"}));
}

TEST(SplitStatements, AttachesCopyFromStdinData) {
  auto statements = split("COPY t (a, b) FROM stdin;\n1\tx;y\n2\t'\\N'\n\\.\nSELECT 1;\n");
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0].sql, "COPY t (a, b) FROM stdin");
  EXPECT_EQ(statements[0].copy_data, "1\tx;y\n2\t'\\N'\n");
  EXPECT_EQ(statements[0].copy_data_line, 2);
  EXPECT_EQ(statements[1].sql, "SELECT 1");
  EXPECT_EQ(statements[1].line, 5);
}

TEST(SplitStatements, AttachesCopyDataWithCrLfAndEmptyData) {
  auto statements = split("COPY t FROM STDIN; -- data follows\r\n1\r\n\\.\r\nCOPY u FROM STDIN;\n\\.\nSELECT 1");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_EQ(statements[0].copy_data, "1\r\n");
  EXPECT_EQ(statements[1].copy_data, "");
  EXPECT_EQ(statements[0].copy_data_line, 2);
  EXPECT_EQ(statements[1].copy_data_line, 5);
  EXPECT_EQ(statements[1].line, 4);
  EXPECT_EQ(statements[2].line, 6);
}

TEST(SplitStatements, TreatsCopyToStdoutAsAPlainStatement) {
  auto statements = split("COPY t TO STDOUT;\nSELECT 1;");
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_FALSE(statements[0].copy_data);
}

TEST(SplitStatements, RejectsUnterminatedCopyData) {
  EXPECT_EQ(error_of("SELECT 1;\nCOPY t FROM stdin;\n1\n2\n"),
            "V1__x.sql:2: COPY ... FROM STDIN data is not terminated by a line \\.");
  EXPECT_EQ(error_of("COPY t FROM stdin; 1\n\\.\n"),
            "V1__x.sql:1: unexpected text after COPY ... FROM STDIN; its data must start on the next line");
}

TEST(SplitStatements, RejectsPsqlMetaCommands) {
  EXPECT_EQ(error_of("SELECT 1;\n\n  \\connect other\nSELECT 2;"),
            "V1__x.sql:3: psql meta-command \"\\connect other\" is not supported: berth does not run psql "
            "meta-commands\nHINT: express it in SQL or split the migration.");
  EXPECT_EQ(error_of("\\set ON_ERROR_STOP on\r\n"),
            "V1__x.sql:1: psql meta-command \"\\set ON_ERROR_STOP on\" is not supported: berth does not run psql "
            "meta-commands\nHINT: express it in SQL or split the migration.");
}

TEST(SplitStatements, AllowsBackslashesInsideQuotesAndComments) {
  EXPECT_EQ(sql_of("SELECT '\\x';\n-- \\connect\n/* \\set */ SELECT $$\n\\.\n$$;"),
            (Sql{"SELECT '\\x'", "SELECT $$\n\\.\n$$"}));
}

TEST(SplitStatements, RejectsUnterminatedQuotesAndComments) {
  EXPECT_EQ(error_of("SELECT 1;\nSELECT 'abc;\n"), "V1__x.sql:2: unterminated quoted string");
  EXPECT_EQ(error_of("SELECT \"abc;\n"), "V1__x.sql:1: unterminated quoted identifier");
  EXPECT_EQ(error_of("\nDO $fn$ BEGIN END $$;"), "V1__x.sql:2: unterminated dollar-quoted string $fn$");
  EXPECT_EQ(error_of("SELECT 1; /* a /* b */\n"), "V1__x.sql:1: unterminated /* comment");
}

TEST(MustRunOutsideTransaction, RecognisesFlywaysPostgresqlList) {
  for (std::string_view sql :
       {"CREATE INDEX CONCURRENTLY i ON t (c)", "create unique index concurrently i on t (c)",
        "DROP INDEX CONCURRENTLY i", "CREATE DATABASE d", "DROP DATABASE d", "CREATE TABLESPACE s LOCATION '/x'",
        "DROP TABLESPACE s", "CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION p", "DROP SUBSCRIPTION s",
        "ALTER SYSTEM SET work_mem = '1MB'", "REINDEX SCHEMA s", "REINDEX VERBOSE DATABASE d", "REINDEX SYSTEM d",
        "VACUUM", "vacuum analyze t", "DISCARD ALL", "/* c */ CREATE -- x\n INDEX\tCONCURRENTLY i ON t (c)"})
    EXPECT_TRUE(must_run_outside_transaction(sql, 16)) << sql;
}

TEST(MustRunOutsideTransaction, AcceptsEverythingElseInATransaction) {
  for (std::string_view sql :
       {"CREATE INDEX i ON t (c)", "CREATE TABLE concurrently (x int)", "REINDEX TABLE t", "DISCARD PLANS",
        "SELECT 'VACUUM'", "CREATE TABLE t (\"index\" int)", "ALTER TYPE mood ADD VALUE 'meh'",
        "COMMENT ON TABLE t IS 'CREATE DATABASE x'", "SELECT E'\\' VACUUM'"})
    EXPECT_FALSE(must_run_outside_transaction(sql, 16)) << sql;
}

TEST(MustRunOutsideTransaction, AppliesAlterTypeAddValueBeforePostgresql12Only) {
  EXPECT_TRUE(must_run_outside_transaction("ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'ok'", 11));
  EXPECT_FALSE(must_run_outside_transaction("ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'ok'", 12));
  EXPECT_FALSE(must_run_outside_transaction("ALTER TYPE mood RENAME VALUE 'add' TO 'value'", 11));
  EXPECT_FALSE(must_run_outside_transaction("ALTER TYPE mood RENAME VALUE E'\\' ADD VALUE' TO 'x'", 11));
}

TEST(RunsInTransaction, DependsOnTheStatementsAndRejectsAMixUnlessAllowed) {
  auto transactional = split("CREATE TABLE t (c int); INSERT INTO t VALUES (1);");
  auto non_transactional = split("CREATE INDEX CONCURRENTLY i ON t (c); VACUUM t;");
  auto both = split("CREATE TABLE t (c int); CREATE INDEX CONCURRENTLY i ON t (c);");
  EXPECT_TRUE(runs_in_transaction(transactional, 16, false));
  EXPECT_TRUE(runs_in_transaction({}, 16, false));
  EXPECT_FALSE(runs_in_transaction(non_transactional, 16, false));
  EXPECT_FALSE(runs_in_transaction(both, 16, true));
  try {
    runs_in_transaction(both, 16, false);
    FAIL();
  } catch (MigrationError const& error) {
    EXPECT_STREQ(error.what(),
                 "Detected both transactional and non-transactional statements within the same migration (even "
                 "though mixed is false)");
  }
}

}  // namespace
}  // namespace berth::flyway

// Unit tests for Flyway's CRC-32 checksum (flyway-compat.md §4), asserting the values Flyway
// itself documents and the line-ending, BOM and placeholder rules around them.
#include "berth/flyway/checksum.hpp"

#include <gtest/gtest.h>

#include "berth/flyway/error.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::flyway {
namespace {

using namespace std::string_literals;

// `V3__Couple.sql` from Flyway's "Dry Runs" tutorial; lines 3 and 4 end in one space.
std::string couple_script(std::string_view newline) {
  std::string script;
  for (std::string_view line :
       {"create table COUPLE (", "    ID int not null,", "    PERSON1 int not null references PERSON(ID), ",
        "    PERSON2 int not null references PERSON(ID) ", ");"})
    script += std::string(line) + std::string(newline);
  return script;
}

std::string error_of(std::string_view bytes) {
  try {
    checksum_of(bytes, "V1__x.sql");
  } catch (MigrationError const& error) {
    return error.what();
  }
  return "no error";
}

TEST(Checksum, MatchesFlywaysDocumentedValueForCoupleScript) {
  EXPECT_EQ(checksum_of(couple_script("\n"), "V3__Couple.sql"), -722651034);
  EXPECT_EQ(checksum_of(couple_script("\r\n"), "V3__Couple.sql"), -722651034);
  EXPECT_EQ(checksum_of(couple_script("\r"), "V3__Couple.sql"), -722651034);
}

TEST(Checksum, IgnoresLineEndingsAndTheFinalNewline) {
  auto lf = checksum_of("abc\ndef efg\nxyz", "a.sql");
  EXPECT_EQ(lf, checksum_of("abc\r\ndef efg\nxyz\r\n", "a.sql"));
  EXPECT_EQ(lf, checksum_of("abc\rdef efg\rxyz\r", "a.sql"));
  EXPECT_EQ(lf, 989464445);
}

TEST(Checksum, DeletesLineBreaksSoJoinedLinesHashTheSame) {
  EXPECT_EQ(checksum_of("abc\ndef", "a.sql"), checksum_of("abcdef", "a.sql"));
  EXPECT_EQ(checksum_of("abc\n\n\r\n\rdef", "a.sql"), checksum_of("abcdef", "a.sql"));
}

TEST(Checksum, CountsTrailingSpacesAndTabs) {
  EXPECT_NE(checksum_of("select 1;\n", "a.sql"), checksum_of("select 1; \n", "a.sql"));
  EXPECT_NE(checksum_of("a\n\nb", "a.sql"), checksum_of("a\n\t\nb", "a.sql"));
}

TEST(Checksum, IgnoresOneLeadingByteOrderMark) {
  EXPECT_EQ(checksum_of("\xEF\xBB\xBF" + couple_script("\r\n"), "V3__Couple.sql"), -722651034);
  EXPECT_NE(checksum_of("\xEF\xBB\xBF\xEF\xBB\xBF"
                        "abc",
                        "a.sql"),
            checksum_of("abc", "a.sql"));
  EXPECT_NE(checksum_of("abc\n\xEF\xBB\xBF"
                        "def",
                        "a.sql"),
            checksum_of("abcdef", "a.sql"));
}

TEST(Checksum, IsZeroForAnEmptyScript) {
  EXPECT_EQ(checksum_of("", "a.sql"), 0);
  EXPECT_EQ(checksum_of("\n\r\n", "a.sql"), 0);
  EXPECT_EQ(checksum_of("\xEF\xBB\xBF", "a.sql"), 0);
}

TEST(Checksum, IsStandardCrc32AsSignedInt) {
  EXPECT_EQ(checksum_of("123456789", "a.sql"), -873187034);
}

TEST(Checksum, HashesNonAsciiTextAsUtf8) {
  EXPECT_EQ(checksum_of("-- caf\xC3\xA9 \xF0\x9F\x98\x80\n", "a.sql"),
            checksum_of("-- caf\xC3\xA9 \xF0\x9F\x98\x80", "a.sql"));
}

TEST(Checksum, RejectsMalformedUtf8NamingTheFile) {
  EXPECT_EQ(error_of("abc\xFF"), "Unable to calculate checksum of V1__x.sql: malformed UTF-8 at byte offset 3");
  EXPECT_EQ(error_of("\xC0\x80"), "Unable to calculate checksum of V1__x.sql: malformed UTF-8 at byte offset 0");
  EXPECT_EQ(error_of("a\xED\xA0\x80"), "Unable to calculate checksum of V1__x.sql: malformed UTF-8 at byte offset 1");
  EXPECT_EQ(error_of("ab\xF4\x90\x80\x80"),
            "Unable to calculate checksum of V1__x.sql: malformed UTF-8 at byte offset 2");
  EXPECT_EQ(error_of("abc\xC3"), "Unable to calculate checksum of V1__x.sql: malformed UTF-8 at byte offset 3");
}

TEST(Checksum, CombinesResourcesOverBigEndianChecksums) {
  std::int32_t one = 0x31323334;  // "1234"
  EXPECT_EQ(combine_checksums(std::span<std::int32_t const>(&one, 1)), checksum_of("1234", "a.sql"));
  std::int32_t two[] = {0x31323334, 0x35363738};
  EXPECT_EQ(combine_checksums(two), checksum_of("12345678", "a.sql"));
}

class MigrationChecksumTest : public ::testing::Test {
protected:
  MigrationFile file(std::string const& name, std::string const& text, MigrationKind kind) {
    auto path = dir_.write(name, text);
    return MigrationFile{kind, std::nullopt, "x", name, path, {}};
  }
  Placeholders placeholders() const {
    Config config;
    config.placeholders = {{"owner", "alice"}};
    return Placeholders(config, {});
  }
  berth::testing::TempDir dir_;
  Config config_;
};

TEST_F(MigrationChecksumTest, HashesVersionedScriptsRaw) {
  auto migration = file("V1__x.sql", "grant all to ${owner};\n", MigrationKind::versioned);
  auto checksum = checksum_migration(migration, config_, placeholders());
  EXPECT_EQ(checksum.checksum, checksum_of("grant all to ${owner};", "V1__x.sql"));
  EXPECT_FALSE(checksum.equivalent);
}

TEST_F(MigrationChecksumTest, HashesRepeatablesAfterReplacementWithTheRawOneEquivalent) {
  auto migration = file("R__x.sql", "grant all to ${owner}; -- ${flyway:filename}\n", MigrationKind::repeatable);
  auto checksum = checksum_migration(migration, config_, placeholders());
  EXPECT_EQ(checksum.checksum, checksum_of("grant all to alice; -- R__x.sql", "R__x.sql"));
  EXPECT_EQ(checksum.equivalent, checksum_of("grant all to ${owner}; -- ${flyway:filename}", "R__x.sql"));
  EXPECT_TRUE(checksum.matches(checksum.checksum));
  EXPECT_TRUE(checksum.matches(*checksum.equivalent));
  EXPECT_TRUE(checksum.matches(std::nullopt));
  EXPECT_FALSE(checksum.matches(12345));
}

TEST_F(MigrationChecksumTest, HashesRepeatablesRawWhenReplacementIsOff) {
  auto migration = file("R__x.sql", "grant all to ${owner};", MigrationKind::repeatable);
  migration.settings.placeholder_replacement = false;
  auto checksum = checksum_migration(migration, config_, placeholders());
  EXPECT_EQ(checksum.checksum, checksum_of("grant all to ${owner};", "R__x.sql"));
  EXPECT_FALSE(checksum.equivalent);
}

TEST_F(MigrationChecksumTest, ReportsUnknownPlaceholdersInRepeatables) {
  auto migration = file("R__x.sql", "select ${nope};", MigrationKind::repeatable);
  EXPECT_THROW(checksum_migration(migration, config_, placeholders()), MigrationError);
}

TEST_F(MigrationChecksumTest, ReportsAnUnreadableFile) {
  MigrationFile missing{MigrationKind::versioned, std::nullopt, "x", "V1__x.sql", dir_.path() / "V1__x.sql", {}};
  try {
    checksum_migration(missing, config_, placeholders());
    FAIL();
  } catch (MigrationError const& error) {
    EXPECT_EQ(std::string(error.what()),
              "Unable to calculate checksum of V1__x.sql: cannot read " + (dir_.path() / "V1__x.sql").string());
  }
}

}  // namespace
}  // namespace berth::flyway

// Unit tests for Flyway's version text and numeric ordering (flyway-compat.md §3).
#include "berth/flyway/version.hpp"

#include <gtest/gtest.h>

#include <string>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

MigrationVersion v(std::string_view text) {
  return MigrationVersion::parse(text);
}

TEST(MigrationVersion, StoresUnderscoresAsDots) {
  EXPECT_EQ(v("1_1").to_string(), "1.1");
}

TEST(MigrationVersion, KeepsTheTextOtherwiseVerbatim) {
  EXPECT_EQ(v("005.0").to_string(), "005.0");
  EXPECT_EQ(v("1.0").to_string(), "1.0");
  EXPECT_EQ(v("2_0_01").to_string(), "2.0.01");
}

TEST(MigrationVersion, OrdersPartsNumerically) {
  EXPECT_LT(v("1.2.9"), v("1.2.10"));
  EXPECT_LT(v("1.9"), v("1.10"));
  EXPECT_LT(v("1"), v("1.0.1"));
  EXPECT_GT(v("2"), v("1.999"));
  EXPECT_LT(v("1_1"), v("1.2"));
}

TEST(MigrationVersion, IgnoresLeadingZerosAndTrailingZeroParts) {
  EXPECT_EQ(v("1"), v("1.0"));
  EXPECT_EQ(v("1"), v("1.00"));
  EXPECT_EQ(v("1"), v("001"));
  EXPECT_EQ(v("1.0.0"), v("001.000"));
  EXPECT_EQ(v("0"), v("0.0"));
  EXPECT_EQ(v("1_1"), v("1.1"));
  EXPECT_NE(v("1.01"), v("1.1.0.1"));
}

TEST(MigrationVersion, ComparesPartsBeyondSixtyFourBits) {
  EXPECT_LT(v("20240101123000123456"), v("20240101123000123457"));
  EXPECT_LT(v("18446744073709551615"), v("18446744073709551616"));
  EXPECT_GT(v("99999999999999999999999999.1"), v("99999999999999999999999999"));
  EXPECT_EQ(v("0020240101123000123456"), v("20240101123000123456.0"));
}

TEST(MigrationVersion, RejectsAnythingButDigitGroupsWithFlywaysMessage) {
  for (std::string text : {"1.", "1..2", ".1", "1.a", "a", "", "-1", "+1", "1 2", "1-2", "v1"}) {
    try {
      v(text);
      ADD_FAILURE() << text;
    } catch (MigrationError const& error) {
      EXPECT_EQ(std::string(error.what()), "Version may only contain 0..9 and . (dot). Invalid version: " + text);
    }
  }
}

TEST(MigrationVersion, NamesTheDottedFormInItsMessage) {
  try {
    v("1_a");
    FAIL();
  } catch (MigrationError const& error) {
    EXPECT_STREQ(error.what(), "Version may only contain 0..9 and . (dot). Invalid version: 1.a");
  }
}

}  // namespace
}  // namespace berth::flyway

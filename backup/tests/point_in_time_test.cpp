// The moments `berth backup restore --pg-time` accepts, and how they reach PostgreSQL. The replay
// itself runs against a real server in tests/integration/backup_test.cpp.
#include "berth/backup/point_in_time.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

#include "berth/testing/error_of.hpp"

namespace berth::backup {
namespace {

using testing::error_of;

// Runs `body` with TZ set to `zone`, restoring the previous value.
template <typename Body>
void in_zone(char const* zone, Body body) {
  char const* previous = std::getenv("TZ");
  std::string const saved = previous ? previous : "";
  ::setenv("TZ", zone, 1);
  ::tzset();
  body();
  if (previous)
    ::setenv("TZ", saved.c_str(), 1);
  else
    ::unsetenv("TZ");
  ::tzset();
}

TEST(PointInTime, ZonesAndFractionsBecomeOneUtcInstant) {
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27 13:05:00 UTC")), "2026-11-27 13:05:00.000000+00");
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27T13:05:00Z")), "2026-11-27 13:05:00.000000+00");
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27 14:05:00.25+01:00")), "2026-11-27 13:05:00.250000+00");
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27 08:35:00-0430")), "2026-11-27 13:05:00.000000+00");
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27T13:05:00.123456Z")), "2026-11-27 13:05:00.123456+00");
  EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-12-31 23:59:59+00")), "2026-12-31 23:59:59.000000+00");
}

TEST(PointInTime, WithoutAZoneTheTimeIsLocal) {
  in_zone("Europe/Berlin", [] {
    EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-11-27 14:05:00")), "2026-11-27 13:05:00.000000+00");
    EXPECT_EQ(postgres_timestamp(parse_point_in_time("2026-07-01 14:05:00")), "2026-07-01 12:05:00.000000+00");
    // 02:30 on the last Sunday of March does not exist in Berlin.
    EXPECT_NE(error_of([] { parse_point_in_time("2026-03-29 02:30:00"); }).find("does not exist"), std::string::npos);
  });
}

TEST(PointInTime, MalformedTimesNameTheAcceptedForms) {
  for (char const* bad : {"yesterday", "2026-11-27", "27.11.2026 13:05", "2026-11-27 13:05", "2026-11-27 13:05:00 CET",
                          "2026-11-27 13:05:00.1234567Z"}) {
    auto const error = error_of([&] { parse_point_in_time(bad); });
    EXPECT_NE(error.find("cannot read the time"), std::string::npos) << bad << ": " << error;
    EXPECT_NE(error.find("HINT: write it as \"YYYY-MM-DD HH:MM:SS\""), std::string::npos) << error;
  }
  for (char const* bad : {"2026-02-30 10:00:00Z", "2026-13-01 10:00:00Z", "2026-11-27 24:00:00Z"})
    EXPECT_NE(error_of([&] { parse_point_in_time(bad); }).find("out of range"), std::string::npos) << bad;
}

}  // namespace
}  // namespace berth::backup

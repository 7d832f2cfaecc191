// Retention on a synthetic calendar of snapshot ids (the selection is pure), and prune on real
// snapshots of a temp primary volume: the snapshots no rule keeps go, and with them the pool
// blobs only they referred to.
#include "berth/backup/retention.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "berth/backup/snapshot.hpp"
#include "berth/registry/digest.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::backup {
namespace {

namespace fs = std::filesystem;

// id -> "daily+weekly" (the rules that keep it), "" for the ones that go.
std::map<std::string, std::string> decide(std::vector<std::string> const& ids, Retention const& retention) {
  std::map<std::string, std::string> result;
  for (auto const& decision : select_retained(ids, retention)) {
    std::string rules;
    for (auto rule : decision.kept_by) rules += (rules.empty() ? "" : "+") + std::string(to_string(rule));
    result[decision.id] = rules;
  }
  return result;
}

TEST(Retention, EachRuleKeepsTheNewestOfItsPeriodsAndAnyRuleKeeps) {
  std::vector<std::string> const calendar = {
      "20251231T031500Z",  // Wednesday of ISO week 2026-W01
      "20260102T031500Z",  // Friday, the same ISO week
      "20260930T031500Z", "20261001T031500Z", "20261031T031500Z",
      "20261115T031500Z",  // Sunday, W46
      "20261122T031500Z",  // Sunday, W47
      "20261123T031500Z",  // Monday, W48
      "20261126T031500Z", "20261127T031500Z",
      "20261127T150000Z",  // a second snapshot the same day
  };
  auto const decided = decide(calendar, {.keep_last = 2, .keep_daily = 3, .keep_weekly = 3, .keep_monthly = 3});
  std::map<std::string, std::string> const expected = {
      {"20261127T150000Z", "last+daily+weekly+monthly"},
      {"20261127T031500Z", "last"},
      {"20261126T031500Z", "daily"},
      {"20261123T031500Z", "daily"},
      {"20261122T031500Z", "weekly"},
      {"20261115T031500Z", "weekly"},
      {"20261031T031500Z", "monthly"},
      {"20261001T031500Z", ""},
      {"20260930T031500Z", "monthly"},
      {"20260102T031500Z", ""},
      {"20251231T031500Z", ""},
  };
  EXPECT_EQ(decided, expected);
}

TEST(Retention, DecisionsComeNewestFirstWhateverTheInputOrder) {
  auto const decisions =
      select_retained({"20261001T000000Z", "20261127T000000Z", "20261115T000000Z"}, {.keep_last = 1});
  ASSERT_EQ(decisions.size(), 3u);
  EXPECT_EQ(decisions[0].id, "20261127T000000Z");
  EXPECT_EQ(decisions[1].id, "20261115T000000Z");
  EXPECT_EQ(decisions[2].id, "20261001T000000Z");
}

TEST(Retention, IsoWeeksCrossTheTurnOfTheYear) {
  Retention weekly{.keep_last = 0, .keep_daily = 0, .keep_weekly = 2, .keep_monthly = 0};
  // 2021-01-01 is a Friday: it belongs to 2020-W53, with Thursday 2020-12-31.
  EXPECT_EQ(decide({"20201231T120000Z", "20210101T120000Z", "20210104T120000Z"}, weekly),
            (std::map<std::string, std::string>{
                {"20210104T120000Z", "weekly"}, {"20210101T120000Z", "weekly"}, {"20201231T120000Z", ""}}));
  // 2025-12-29 (Monday) starts 2026-W01; Sunday 2025-12-28 ends 2025-W52.
  EXPECT_EQ(decide({"20251228T120000Z", "20251229T120000Z", "20260104T120000Z"}, weekly),
            (std::map<std::string, std::string>{
                {"20260104T120000Z", "weekly"}, {"20251229T120000Z", ""}, {"20251228T120000Z", "weekly"}}));
}

TEST(Retention, DailyCountsDaysThatHaveASnapshotNotCalendarDays) {
  // A month-long gap: keep_daily 2 still keeps two snapshots, on the two newest days that have one.
  auto const decided = decide({"20260101T000000Z", "20260201T000000Z", "20260201T120000Z", "20260301T000000Z"},
                              {.keep_last = 0, .keep_daily = 2, .keep_weekly = 0, .keep_monthly = 0});
  EXPECT_EQ(decided, (std::map<std::string, std::string>{{"20260301T000000Z", "daily"},
                                                         {"20260201T120000Z", "daily"},
                                                         {"20260201T000000Z", ""},
                                                         {"20260101T000000Z", ""}}));
}

TEST(Retention, RejectsAnIdThatIsNotATime) {
  try {
    select_retained({"20261127T031500Z", "my-copy"}, {});
    FAIL() << "accepted a folder name that is not a snapshot id";
  } catch (Error const& e) {
    EXPECT_EQ(std::string(e.what()),
              "snapshot id my-copy is not a UTC time (YYYYMMDDTHHMMSSZ)\nHINT: move folders "
              "berth did not make out of the backup volume's snapshots/");
  }
}

class Prune : public ::testing::Test {
protected:
  void SetUp() override {
    config_.primary = dir_.path() / "primary";
    config_.volume = dir_.path() / "backup";
    dir_.write("primary/secrets/htpasswd", "alice:$2y$05$abc\n");
  }

  std::string add_blob(std::string const& content) {
    auto const digest = registry::digest_of(content);
    dir_.write("primary/registry/blobs/sha256/" + digest.hex().substr(0, 2) + "/" + digest.hex(), content);
    return digest.hex();
  }
  void remove_blob(std::string const& hex) {
    fs::remove(config_.primary / "registry/blobs/sha256" / hex.substr(0, 2) / hex);
  }
  fs::path pooled(std::string const& hex) { return config_.volume / "pool/sha256" / hex.substr(0, 2) / hex; }

  testing::TempDir dir_;
  Config config_;
};

TEST_F(Prune, RemovesUnkeptSnapshotsAndTheBlobsOnlyTheyReferTo) {
  auto const shared = add_blob("a layer every snapshot has");
  auto const old_only = add_blob(std::string(50000, 'o'));
  auto const first = take_snapshot(config_, std::nullopt);
  remove_blob(old_only);  // deleted from the registry (garbage collected) after the first snapshot
  auto const fresh = add_blob("pushed later");
  auto const second = take_snapshot(config_, std::nullopt);
  config_.retention = {.keep_last = 1, .keep_daily = 0, .keep_weekly = 0, .keep_monthly = 0};

  auto const dry = prune(config_, true);
  EXPECT_EQ(dry.snapshots_removed, 1u);
  EXPECT_EQ(dry.blobs_removed, 1u);
  EXPECT_GT(dry.bytes_freed, 50000u);
  EXPECT_EQ(list_snapshots(config_).size(), 2u);  // a dry run changes nothing
  EXPECT_TRUE(fs::exists(pooled(old_only)));

  auto const report = prune(config_, false);
  EXPECT_EQ(report.snapshots_removed, 1u);
  EXPECT_EQ(report.blobs_removed, 1u);
  EXPECT_EQ(report.bytes_freed, dry.bytes_freed);
  ASSERT_EQ(report.decisions.size(), 2u);
  EXPECT_EQ(report.decisions[0].id, second.id);
  EXPECT_EQ(report.decisions[1].id, first.id);
  EXPECT_TRUE(report.decisions[1].kept_by.empty());
  auto const left = list_snapshots(config_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, second.id);
  EXPECT_FALSE(fs::exists(config_.volume / "snapshots" / first.id));
  EXPECT_FALSE(fs::exists(pooled(old_only)));
  EXPECT_TRUE(fs::exists(pooled(shared)));
  EXPECT_TRUE(fs::exists(pooled(fresh)));
  EXPECT_TRUE(verify_snapshot(config_, second.id).empty());

  auto const again = prune(config_, false);  // nothing left to do
  EXPECT_EQ(again.snapshots_removed, 0u);
  EXPECT_EQ(again.blobs_removed, 0u);
}

TEST_F(Prune, RemovesNothingWhileAnotherJobHoldsTheLock) {
  add_blob("blob");
  take_snapshot(config_, std::nullopt);
  take_snapshot(config_, std::nullopt);
  config_.retention = {.keep_last = 1, .keep_daily = 0, .keep_weekly = 0, .keep_monthly = 0};
  int const fd = ::open((config_.volume / ".lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_THROW(prune(config_, false), Busy);
  ::close(fd);
  EXPECT_EQ(list_snapshots(config_).size(), 2u);
}

TEST_F(Prune, KeepsEverythingWhenAManifestCannotBeRead) {
  auto const blob = add_blob("blob");
  auto const first = take_snapshot(config_, std::nullopt);
  take_snapshot(config_, std::nullopt);
  dir_.write("backup/snapshots/" + first.id + "/manifest.json", "{ not json");
  config_.retention = {.keep_last = 1, .keep_daily = 0, .keep_weekly = 0, .keep_monthly = 0};
  EXPECT_THROW(prune(config_, false), Error);
  EXPECT_TRUE(fs::exists(config_.volume / "snapshots" / first.id));
  EXPECT_TRUE(fs::exists(pooled(blob)));
}

TEST_F(Prune, RefusesARetentionThatKeepsNothing) {
  take_snapshot(config_, std::nullopt);
  config_.retention = {.keep_last = 0, .keep_daily = 0, .keep_weekly = 0, .keep_monthly = 0};
  EXPECT_THROW(prune(config_, false), Error);
  EXPECT_EQ(list_snapshots(config_).size(), 1u);
}

}  // namespace
}  // namespace berth::backup

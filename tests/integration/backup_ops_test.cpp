// Operating snapshots: `berth backup prune` on real snapshots (images pushed with skopeo), and
// `berth backup drill` restoring a snapshot of a running service into a throwaway PostgreSQL,
// passing on a sound snapshot and failing on one whose recorded counts do not match; every job's
// last line of JSON, and the last drill in `berth status`.
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backup_cli.hpp"
#include "command_output.hpp"

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

// The job's summary: the last line of its output that is a JSON object naming a command.
nlohmann::json summary_of(std::string const& output) {
  std::istringstream lines(output);
  nlohmann::json found;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("{\"command\":", 0) == 0) found = nlohmann::json::parse(line);  // the command comes first
  return found;
}

fs::path blob_path(fs::path const& root, std::string const& digest) {
  auto const hex = digest.substr(7);
  return root / "sha256" / hex.substr(0, 2) / hex;
}

bool has_drill_scratch(fs::path const& volume) {
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(volume, ec))
    if (entry.path().filename().string().rfind(".drill-", 0) == 0) return true;
  return false;
}

constexpr char keep_one[] = "backup:\n  keep_last: 1\n  keep_daily: 0\n  keep_weekly: 0\n  keep_monthly: 0\n";

TEST(BackupPrune, RemovesTheSnapshotsRetentionDropsAndTheBlobsOnlyTheyHad) {
  BerthInstance berth(keep_one);
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({200 * 1024, 300 * 1024}, 7);
  layout.tag(image.manifest, "v1");
  ASSERT_EQ(push(berth.port(), layout.dir(), "api/old:v1").exit_code, 0);

  auto const first = berth.command({"backup", "run"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto const first_summary = summary_of(first.output);
  EXPECT_EQ(first_summary.value("command", ""), "backup run") << first.output;
  EXPECT_EQ(first_summary.value("ok", false), true) << first.output;
  EXPECT_GE(first_summary.value("blobs_copied", 0), 3) << first.output;  // 2 layers and the config at least
  for (auto const* part : {"files", "blobs"})
    EXPECT_GE(first_summary["durations"].value(part, -1.0), 0.0) << part << ": " << first.output;

  // What garbage collection does after the image is deleted: its layer leaves the primary volume.
  berth.kill_hard();
  auto const gone = image.layers[1].digest;
  fs::remove(blob_path(berth.data_dir() / "registry" / "blobs", gone));
  auto const second = berth.command({"backup", "run"});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  auto const ids = snapshot_ids(berth.command({"backup", "list"}).output);
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_TRUE(fs::exists(blob_path(berth.backup_dir() / "pool", gone)));

  auto const dry = berth.command({"backup", "prune", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_TRUE(contains(dry.output, "keep " + ids[1] + "  (last)")) << dry.output;
  EXPECT_TRUE(contains(dry.output, "would remove " + ids[0] + "\n")) << dry.output;
  EXPECT_TRUE(contains(dry.output, "would remove 1 snapshots and 1 pool blobs")) << dry.output;
  EXPECT_EQ(snapshot_ids(berth.command({"backup", "list"}).output).size(), 2u);

  auto const pruned = berth.command({"backup", "prune"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.output;
  EXPECT_TRUE(contains(pruned.output, "removed " + ids[0] + "\n")) << pruned.output;
  auto const summary = summary_of(pruned.output);
  EXPECT_EQ(summary.value("command", ""), "backup prune");
  EXPECT_EQ(summary.value("ok", false), true);
  EXPECT_EQ(summary.value("snapshots_removed", 0), 1);
  EXPECT_EQ(summary.value("blobs_removed", 0), 1);
  EXPECT_GE(summary.value("bytes_freed", 0), 300 * 1024);
  EXPECT_EQ(snapshot_ids(berth.command({"backup", "list"}).output), std::vector<std::string>{ids[1]});
  EXPECT_FALSE(fs::exists(blob_path(berth.backup_dir() / "pool", gone)));
  EXPECT_TRUE(fs::exists(blob_path(berth.backup_dir() / "pool", image.layers[0].digest)));
  auto const verify = berth.command({"backup", "verify", "--all"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(summary_of(verify.output).value("ok", false), true) << verify.output;
}

TEST(BackupPrune, AFailureEndsWithAJsonLineAndExitCodeOne) {
  BerthInstance berth(keep_one);
  ASSERT_EQ(berth.command({"backup", "run"}).exit_code, 0);
  auto const ids = snapshot_ids(berth.command({"backup", "list"}).output);
  ASSERT_EQ(ids.size(), 1u);
  { std::ofstream(berth.backup_dir() / "snapshots" / ids[0] / "manifest.json", std::ios::trunc) << "{ broken"; }
  auto const pruned = berth.command({"backup", "prune"});
  EXPECT_EQ(pruned.exit_code, 1) << pruned.output;
  auto const summary = summary_of(pruned.output);
  EXPECT_EQ(summary.value("command", ""), "backup prune") << pruned.output;
  EXPECT_EQ(summary.value("ok", true), false) << pruned.output;
  EXPECT_TRUE(contains(summary.value("error", ""), "manifest.json")) << pruned.output;
  EXPECT_TRUE(contains(pruned.output, "berth: cannot read ")) << pruned.output;
}

constexpr char shop[] = "postgres:\n  enabled: true\ndatabases:\n  - name: shop\n";

TEST(BackupDrill, ProvesASnapshotOfARunningServiceAndFailsOnCountsThatDoNotMatch) {
  BerthInstance berth(shop);
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({100 * 1024, 400 * 1024}, 11);
  layout.tag(image.manifest, "v1");
  ASSERT_EQ(push(berth.port(), layout.dir(), "api/orders:v1").exit_code, 0);
  auto const url = trimmed(berth.command({"db", "url", "shop"}).output);
  ASSERT_EQ(psql(url,
                 // No autovacuum ANALYZE (a transaction) may land between the backup's end and
                 // the counts: the counts must be provably exact for the mismatch to fail.
                 "CREATE TABLE orders (id int PRIMARY KEY, item text) WITH (autovacuum_enabled = off); "
                 "INSERT INTO orders SELECT n, 'item ' || n FROM generate_series(1, 500) n; "
                 "CREATE TABLE notes (id int, body text) WITH (autovacuum_enabled = off); "
                 "INSERT INTO notes SELECT n, repeat(md5(n::text), 400) FROM generate_series(1, 20) n")
                .exit_code,
            0);

  auto const run = berth.command({"backup", "run"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto const id = summary_of(run.output).value("snapshot", "");
  ASSERT_FALSE(id.empty()) << run.output;
  auto const manifest_file = berth.backup_dir() / "snapshots" / id / "manifest.json";
  auto manifest = nlohmann::json::parse(read_file(manifest_file));
  auto const& counts = manifest.at("postgres").at("counts");
  EXPECT_EQ(counts.at("databases").at("shop").at("tables").at("public.orders"), 500) << counts.dump();
  EXPECT_EQ(counts.at("databases").at("shop").at("tables").at("public.notes"), 20) << counts.dump();
  EXPECT_TRUE(counts.at("databases").at("shop").at("committed_xids").is_array()) << counts.dump();

  auto const drill = berth.command({"backup", "drill"});
  EXPECT_EQ(drill.exit_code, 0) << drill.output;
  EXPECT_TRUE(contains(drill.output, "drill of snapshot " + id + ": ok")) << drill.output;
  auto const summary = summary_of(drill.output);
  EXPECT_EQ(summary.value("command", ""), "backup drill") << drill.output;
  EXPECT_EQ(summary.value("ok", false), true) << drill.output;
  EXPECT_EQ(summary.value("snapshot", ""), id);
  EXPECT_EQ(summary.value("counts_exact", false), true) << drill.output;
  EXPECT_GE(summary.value("rows", 0), 520) << drill.output;
  EXPECT_EQ(summary.value("manifests", 0), 1) << drill.output;
  EXPECT_GE(summary.value("blobs", 0), 3) << drill.output;
  EXPECT_FALSE(has_drill_scratch(berth.backup_dir()));
  auto const status = berth.command({"status"});
  EXPECT_TRUE(contains(status.output, "last drill: snapshot " + id + ", ok, ")) << status.output;

  // A snapshot whose database does not hold what was recorded fails the drill, naming the table.
  manifest["postgres"]["counts"]["databases"]["shop"]["tables"]["public.orders"] = 499;
  { std::ofstream(manifest_file, std::ios::trunc) << manifest.dump(2); }
  auto const failed = berth.command({"backup", "drill", id});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_TRUE(
      contains(failed.output, "FAILED database shop: table public.orders has 500 rows, the snapshot recorded 499"))
      << failed.output;
  EXPECT_EQ(summary_of(failed.output).value("ok", true), false) << failed.output;
  EXPECT_FALSE(has_drill_scratch(berth.backup_dir()));
  EXPECT_TRUE(contains(berth.command({"status"}).output, "last drill: snapshot " + id + ", FAILED (database shop"));

  std::ifstream drills(berth.backup_dir() / "drills.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(drills, line);) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].at("ok"), true);
  EXPECT_EQ(records[1].at("ok"), false);
  EXPECT_EQ(records[1].at("snapshot"), id);
}

TEST(BackupDrill, ARestoreThatFailsIsRecordedAsAFailedDrill) {
  BerthInstance berth;
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({64 * 1024}, 3);
  layout.tag(image.manifest, "v1");
  ASSERT_EQ(push(berth.port(), layout.dir(), "site/web:v1").exit_code, 0);
  ASSERT_EQ(berth.command({"backup", "run"}).exit_code, 0);
  auto const ids = snapshot_ids(berth.command({"backup", "list"}).output);
  ASSERT_EQ(ids.size(), 1u);
  {
    std::fstream blob(blob_path(berth.backup_dir() / "pool", image.layers[0].digest),
                      std::ios::in | std::ios::out | std::ios::binary);
    blob.seekp(100);
    blob.put('!');
  }
  auto const drill = berth.command({"backup", "drill", ids[0]});
  EXPECT_EQ(drill.exit_code, 1) << drill.output;
  EXPECT_TRUE(contains(drill.output, "FAILED restore failed: blob " + image.layers[0].digest)) << drill.output;
  EXPECT_FALSE(has_drill_scratch(berth.backup_dir()));
  auto const unknown = berth.command({"backup", "drill", "20990101T000000Z"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(contains(unknown.output, "snapshot 20990101T000000Z does not exist")) << unknown.output;
}

// A small tmpfs mounted over a folder for the test's life.
class SmallVolume {
public:
  SmallVolume(fs::path mount_point, std::string const& size) : mount_point_(std::move(mount_point)) {
    fs::create_directories(mount_point_);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0)
      error_ = std::strerror(errno);
  }
  ~SmallVolume() {
    if (error_.empty()) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }
  SmallVolume(SmallVolume const&) = delete;
  SmallVolume& operator=(SmallVolume const&) = delete;
  std::string const& error() const { return error_; }

private:
  fs::path mount_point_;
  std::string error_;
};

std::vector<std::string> tree_of(fs::path const& root) {
  std::vector<std::string> files;
  for (auto const& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file())
      files.push_back(entry.path().lexically_relative(root).string() + " " + std::to_string(entry.file_size()));
  std::sort(files.begin(), files.end());
  return files;
}

TEST(BackupRun, AFullBackupVolumeFailsClearlyAndLeavesThePrimaryUntouched) {
  BerthInstance berth;
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({3 * 1024 * 1024}, 13);
  layout.tag(image.manifest, "v1");
  ASSERT_EQ(push(berth.port(), layout.dir(), "model/big:v1").exit_code, 0);
  berth.kill_hard();
  SmallVolume volume(berth.backup_dir(), "1m");
  if (!volume.error().empty())
    GTEST_SKIP() << "cannot mount a 1 MiB tmpfs as the backup volume (needs root or CAP_SYS_ADMIN): " << volume.error();
  auto const before = tree_of(berth.data_dir());

  auto const run = berth.command({"backup", "run"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(contains(
      run.output, "berth: cannot take a snapshot: the backup volume " + berth.backup_dir().string() + " is full: "))
      << run.output;
  EXPECT_TRUE(contains(run.output, "HINT: free space on it")) << run.output;
  auto const summary = summary_of(run.output);
  EXPECT_EQ(summary.value("ok", true), false) << run.output;
  EXPECT_TRUE(contains(berth.command({"backup", "list"}).output, "no snapshots"));
  EXPECT_EQ(tree_of(berth.data_dir()), before);
  // The failed run gave its space back: nothing but the lock and the empty pool is left.
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(berth.backup_dir() / "snapshots", ec));
}

}  // namespace
}  // namespace berth::testing

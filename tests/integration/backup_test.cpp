// `berth backup` as an operator runs it: a snapshot of a running service (images pushed with
// skopeo, rows in an application database) that verifies, copies no blob twice, and restores into
// a volume `berth serve` starts on with the same images and rows; a kill -9 mid-run leaves no
// visible snapshot, and a corrupted pool blob makes verify fail naming it.
#include <signal.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backup_cli.hpp"
#include "command_output.hpp"

#include "berth/testing/eventually.hpp"
#include "berth/testing/oci_layout.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string manifest_digest(std::uint16_t port, std::string const& target) {
  auto inspect = skopeo({"inspect", "--tls-verify=false", "docker://127.0.0.1:" + std::to_string(port) + "/" + target});
  if (inspect.exit_code != 0) return "inspect failed: " + inspect.output;
  std::smatch match;
  std::regex_search(inspect.output, match, std::regex(R"re("Digest": "(sha256:[0-9a-f]{64})")re"));
  return match[1];
}

constexpr char shop[] = "postgres:\n  enabled: true\ndatabases:\n  - name: shop\n";

// Runs `sql` in the shop database of the running service, then takes a snapshot; its id.
std::string snapshot_after(BerthInstance& berth, std::string const& sql) {
  auto const written = psql(trimmed(berth.command({"db", "url", "shop"}).output), sql);
  EXPECT_EQ(written.exit_code, 0) << written.output;
  auto const snapshot = berth.command({"backup", "run"});
  EXPECT_EQ(snapshot.exit_code, 0) << snapshot.output;
  auto const ids = snapshot_ids(berth.command({"backup", "list"}).output);
  return ids.empty() ? std::string("(no snapshot)") : ids.back();
}

// `berth serve` on a restored primary volume, with a config of its own beside it.
struct RestoredService {
  fs::path config;
  Process serve;
  std::uint16_t port = 0;

  RestoredService(TempDir const& dir, fs::path const& volume)
      : config(dir.write("berth.yaml", std::string(shop) + "volumes:\n  primary: " + volume.string() +
                                           "\n  backup: " + (dir.path() / "backup").string() + "\n")),
        serve({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"}, dir.path() / "serve.log",
              dir.path()) {
    if (auto const listening = serve.wait_for_output("listening address=", 90s))
      port = static_cast<std::uint16_t>(std::stoi(listening->substr(listening->rfind(':') + 1)));
  }
  std::string database_url() const { return trimmed(berth_with(config, {"db", "url", "shop"}).output); }
  std::optional<int> stop() {
    serve.send_signal(SIGTERM);
    return serve.wait_exit(60s);
  }
};

TEST(BackupCli, SnapshotOfARunningServiceRestoresToAVolumeServeStartsOn) {
  BerthInstance berth(shop);
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({300 * 1024, 1024 * 1024}, 3);
  layout.tag(image.manifest, "v1");
  auto const pushed = push(berth.port(), layout.dir(), "api/orders:v1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  auto const url = trimmed(berth.command({"db", "url", "shop"}).output);
  ASSERT_EQ(psql(url,
                 "CREATE TABLE orders (id int PRIMARY KEY, item text); "
                 "INSERT INTO orders SELECT n, 'item ' || n FROM generate_series(1, 500) n")
                .exit_code,
            0);

  // While the service runs: its pushes and writes go on.
  auto const first = berth.command({"backup", "run"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(std::regex_search(first.output, std::regex(R"(: ([1-9]\d*) blobs \(\1 new\))"))) << first.output;
  ASSERT_EQ(psql(url, "INSERT INTO orders VALUES (501, 'after the first snapshot')").exit_code, 0);
  auto const second = berth.command({"backup", "run"});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_TRUE(contains(second.output, " blobs (0 new)")) << second.output;

  auto const list = berth.command({"backup", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  auto const ids = snapshot_ids(list.output);
  ASSERT_EQ(ids.size(), 2u) << list.output;
  auto const verify = berth.command({"backup", "verify", "--all"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(contains(verify.output, ids[0] + ": ok")) << verify.output;

  auto const manifest = read_file(berth.backup_dir() / "snapshots" / ids[1] / "manifest.json");
  EXPECT_TRUE(contains(manifest, "\"start_lsn\"")) << manifest;
  EXPECT_TRUE(std::regex_search(manifest, std::regex(R"("start_wal": "[0-9A-F]{24}")"))) << manifest;

  // Restore the second snapshot into an empty folder and serve from it.
  TempDir restored;
  fs::permissions(restored.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const volume = restored.path() / "var";
  auto const restore = berth.command({"backup", "restore", ids[1], "--to", volume.string()});
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  berth.kill_hard();

  RestoredService service(restored, volume);
  ASSERT_NE(service.port, 0) << service.serve.output();
  EXPECT_EQ(manifest_digest(service.port, "api/orders:v1"), image.manifest.digest);
  auto const restored_url = service.database_url();
  EXPECT_EQ(trimmed(psql(restored_url, "SELECT count(*) FROM orders").output), "501");
  EXPECT_EQ(trimmed(psql(restored_url, "SELECT item FROM orders WHERE id = 501").output), "after the first snapshot");
  EXPECT_EQ(service.stop(), 0) << service.serve.output();

  // A non-empty target needs --force.
  auto const refused = berth.command({"backup", "restore", ids[1], "--to", volume.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.output, "it is not empty")) << refused.output;
}

// The account files may live outside the primary volume (/etc/berth in the package): every one
// of them comes back under DIR/extra/<its absolute path>, robot accounts included.
TEST(BackupCli, SnapshotsKeepTheAccountFilesOutsideThePrimaryVolume) {
  TempDir accounts;
  BerthInstance berth("auth:\n  robots: " + (accounts.path() / "robots").string() + "\n");
  auto const added = berth.command({"robot", "add", "ci", "--group", "ci"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  auto const snapshot = berth.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  auto const id = snapshot_ids(berth.command({"backup", "list"}).output).at(0);
  TempDir restored;
  auto const restore = berth.command({"backup", "restore", id, "--to", (restored.path() / "var").string()});
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  auto const kept = restored.path() / "var" / "extra" / fs::weakly_canonical(accounts.path() / "robots").relative_path();
  ASSERT_TRUE(fs::exists(kept)) << restore.output;
  EXPECT_EQ(read_file(kept), read_file(accounts.path() / "robots"));
}

// --data and --backup work on every command, as on serve: a second instance is inspected
// without a config file of its own.
TEST(BackupCli, EveryCommandTakesTheVolumeOverrides) {
  BerthInstance berth;
  auto const snapshot = berth.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  auto const id = snapshot_ids(berth.command({"backup", "list"}).output).at(0);
  TempDir elsewhere;  // a config that names no volumes: only the overrides do
  auto const settings = elsewhere.write("settings.yaml", "postgres:\n  enabled: false\n");
  auto const berth_here = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BERTH_BINARY, "--config", settings.string()});
    args.insert(args.end(), {"--data", berth.data_dir().string(), "--backup", berth.backup_dir().string()});
    return run(args, {}, elsewhere.path());
  };
  auto const list = berth_here({"backup", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(contains(list.output, id)) << list.output;
  auto const listed = nlohmann::json::parse(berth_here({"backup", "list", "--json"}).output);
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["id"], id);
  EXPECT_TRUE(listed[0]["bytes_total"].is_number());
  EXPECT_EQ(listed[0]["has_database"], false);
  auto const status = berth_here({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(contains(status.output, std::to_string(berth.process().pid()))) << status.output;
  EXPECT_TRUE(contains(status.output, "newest snapshot: " + id + ", finished ")) << status.output;
  EXPECT_EQ(berth_here({"registry", "ls"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(elsewhere.path() / "var"));  // nothing went to the default volume
  // The result once, on stdout: no info lines saying it again on stderr.
  auto const again = berth_here({"backup", "run"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(contains(again.output, " info [")) << again.output;
}

// A restored copy served beside the original on the original's backup volume (the first hour's
// trap): the copy has an identity of its own, archives no WAL there and takes no snapshot there,
// so the original's archive holds only the original's WAL; `backup adopt` hands the volume over.
TEST(BackupCli, ARestoredCopyOnTheOriginalsBackupVolumeLeavesItsArchiveAlone) {
  BerthInstance berth(shop);
  auto const url = trimmed(berth.command({"db", "url", "shop"}).output);
  auto const id = snapshot_after(berth, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");

  TempDir restored;
  fs::permissions(restored.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const volume = restored.path() / "var";
  ASSERT_EQ(berth.command({"backup", "restore", id, "--to", volume.string()}).exit_code, 0);
  EXPECT_NE(read_file(volume / "identity"), read_file(berth.data_dir() / "identity"));

  auto const config = restored.write("berth.yaml", std::string(shop) + "volumes:\n  primary: " + volume.string() +
                                                       "\n  backup: " + berth.backup_dir().string() + "\n");
  Process copy({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"},
               restored.path() / "serve.log", restored.path());
  ASSERT_TRUE(copy.wait_for_output("listening address=", 90s)) << copy.output();
  EXPECT_TRUE(contains(copy.output(), "belongs to another primary volume")) << copy.output();
  EXPECT_TRUE(contains(copy.output(), "WAL archiving and snapshots are OFF here")) << copy.output();

  // Both write and finish a WAL segment; only the original's reaches the archive.
  auto const superuser = [](fs::path const& primary) {
    std::ifstream secret(primary / "secrets" / "postgres-superuser");
    std::string password;
    secret >> password;
    return "host=" + (primary / "run" / "postgres").string() + " user=berth dbname=postgres password=" + password;
  };
  auto const copy_url = trimmed(berth_with(config, {"db", "url", "shop"}).output);
  ASSERT_EQ(psql(copy_url, "INSERT INTO t VALUES (2)").exit_code, 0);
  EXPECT_EQ(trimmed(psql(superuser(volume), "SHOW archive_mode").output), "off");
  ASSERT_EQ(psql(superuser(volume), "SELECT pg_switch_wal()").exit_code, 0);
  ASSERT_EQ(psql(url, "INSERT INTO t VALUES (3)").exit_code, 0);
  auto const switched = psql(superuser(berth.data_dir()), "SELECT pg_walfile_name(pg_switch_wal())");
  ASSERT_EQ(switched.exit_code, 0) << switched.output;
  auto const segment = trimmed(switched.output);
  EXPECT_TRUE(eventually(60s, [&] { return fs::exists(berth.backup_dir() / "wal" / segment); }))
      << berth.process().output();
  EXPECT_FALSE(fs::exists(berth.data_dir() / "run" / "postgres" / "wal-archive-failure"))
      << read_file(berth.data_dir() / "run" / "postgres" / "wal-archive-failure");
  EXPECT_FALSE(contains(berth.process().output(), "archive-wal")) << berth.process().output();

  // Snapshots, status and doctor of the copy say the same; the original's are untouched.
  auto const refused = berth_with(config, {"backup", "run"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_TRUE(contains(refused.output, "refusing to take a snapshot: the backup volume")) << refused.output;
  EXPECT_TRUE(contains(refused.output, "{\"command\":\"backup run\",\"ok\":false")) << refused.output;
  EXPECT_TRUE(contains(berth_with(config, {"status"}).output, "NOT THIS VOLUME'S")) << copy.output();
  EXPECT_TRUE(contains(berth_with(config, {"doctor"}).output, "backup owner")) << copy.output();
  EXPECT_EQ(snapshot_ids(berth.command({"backup", "list"}).output).size(), 1u);
  EXPECT_EQ(berth.command({"backup", "verify", "--all"}).exit_code, 0);
  EXPECT_FALSE(contains(berth.command({"status"}).output, "NOT THIS VOLUME'S"));

  // After losing the original for good: the copy adopts the backup volume.
  copy.send_signal(SIGTERM);
  EXPECT_EQ(copy.wait_exit(60s), 0) << copy.output();
  auto const adopted = berth_with(config, {"backup", "adopt"});
  EXPECT_EQ(adopted.exit_code, 0) << adopted.output;
  EXPECT_TRUE(contains(adopted.output, "now belongs to " + volume.string())) << adopted.output;
  EXPECT_TRUE(contains(berth.command({"status"}).output, "NOT THIS VOLUME'S"));  // the original is the stranger now
}

// --force writes over a folder nobody uses, never over a live volume: not the running service's,
// not a restored copy another berth serves, not the backup volume itself.
TEST(BackupCli, RestoreRefusesAVolumeSomethingRunsOn) {
  BerthInstance berth(shop);
  auto const url = trimmed(berth.command({"db", "url", "shop"}).output);
  auto const id = snapshot_after(berth, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)");

  auto const over_live = berth.command({"backup", "restore", id, "--to", berth.data_dir().string(), "--force"});
  EXPECT_EQ(over_live.exit_code, 1) << over_live.output;
  EXPECT_TRUE(contains(over_live.output, "berth serve (pid " + std::to_string(berth.process().pid()) + ") runs on it"))
      << over_live.output;
  EXPECT_TRUE(contains(over_live.output, "stop that berth first")) << over_live.output;
  EXPECT_EQ(trimmed(psql(url, "SELECT count(*) FROM kept").output), "1");  // nothing was touched

  auto const into_backup = berth.command(
      {"backup", "restore", id, "--to", (berth.backup_dir() / "restored").string()});
  EXPECT_EQ(into_backup.exit_code, 1) << into_backup.output;
  EXPECT_TRUE(contains(into_backup.output, "it is inside the backup volume")) << into_backup.output;
  EXPECT_FALSE(fs::exists(berth.backup_dir() / "restored"));

  // A restored copy served beside the original: refused while it runs, allowed once it stopped.
  TempDir restored;
  fs::permissions(restored.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const volume = restored.path() / "var";
  ASSERT_EQ(berth.command({"backup", "restore", id, "--to", volume.string()}).exit_code, 0);
  RestoredService service(restored, volume);
  ASSERT_NE(service.port, 0) << service.serve.output();
  auto const over_copy = berth.command({"backup", "restore", id, "--to", volume.string(), "--force"});
  EXPECT_EQ(over_copy.exit_code, 1) << over_copy.output;
  EXPECT_TRUE(contains(over_copy.output, "berth serve (pid " + std::to_string(service.serve.pid()) + ")"))
      << over_copy.output;
  EXPECT_EQ(trimmed(psql(service.database_url(), "SELECT count(*) FROM kept").output), "1");
  EXPECT_EQ(service.stop(), 0) << service.serve.output();
  auto const unused = berth.command({"backup", "restore", id, "--to", volume.string(), "--force"});
  EXPECT_EQ(unused.exit_code, 0) << unused.output;
}

TEST(BackupCli, PointInTimeRestoreKeepsExactlyWhatWasCommittedByThatMoment) {
  BerthInstance berth(shop);
  auto const url = trimmed(berth.command({"db", "url", "shop"}).output);
  ASSERT_EQ(psql(url, "CREATE TABLE events (id int PRIMARY KEY, what text); INSERT INTO events VALUES (1, 'before')")
                .exit_code,
            0);
  auto const snapshot = berth.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;

  // The moment lies between two commits, read from the server's own clock.
  ASSERT_EQ(psql(url, "INSERT INTO events VALUES (2, 'kept')").exit_code, 0);
  auto const moment =
      trimmed(psql(url, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')").output) +
      " UTC";
  ASSERT_EQ(psql(url, "INSERT INTO events VALUES (3, 'lost')").exit_code, 0);

  // Close the WAL segment holding both commits and wait until it is archived.
  auto const superuser =
      "host=" + (berth.data_dir() / "run" / "postgres").string() +
      " user=berth dbname=shop password=" + trimmed(read_file(berth.data_dir() / "secrets" / "postgres-superuser"));
  auto const segment = trimmed(psql(superuser, "SELECT pg_walfile_name(pg_switch_wal())").output);
  ASSERT_EQ(segment.size(), 24u) << segment;
  EXPECT_TRUE(eventually(
      60s,
      [&] {
        return trimmed(psql(superuser, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").output) >=
               segment;
      }))
      << "segment " << segment << " was not archived";
  berth.kill_hard();

  TempDir restored;
  fs::permissions(restored.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const volume = restored.path() / "var";
  auto const restore = berth.command({"backup", "restore", "--pg-time", moment, "--to", volume.string()});
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  EXPECT_TRUE(contains(restore.output, "database replayed to ")) << restore.output;
  {
    RestoredService service(restored, volume);
    ASSERT_NE(service.port, 0) << service.serve.output();
    EXPECT_EQ(trimmed(psql(service.database_url(), "SELECT string_agg(what, ',' ORDER BY id) FROM events").output),
              "before,kept");
    // The recovered cluster is promoted: it takes writes.
    EXPECT_EQ(psql(service.database_url(), "INSERT INTO events VALUES (4, 'after the restore')").exit_code, 0);
    EXPECT_EQ(service.stop(), 0) << service.serve.output();
  }

  // A moment the archive does not reach yet fails at restore time, with the reason.
  TempDir future;
  fs::permissions(future.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const too_late = berth.command(
      {"backup", "restore", "--pg-time", "2099-01-01 00:00:00 UTC", "--to", (future.path() / "var").string()});
  EXPECT_EQ(too_late.exit_code, 1) << too_late.output;
  EXPECT_TRUE(contains(too_late.output, "the database replay stopped before reaching 2099-01-01 00:00:00.000000+00"))
      << too_late.output;
  // A moment before the first snapshot names the earliest one that can be reached.
  auto const too_early = berth.command(
      {"backup", "restore", "--pg-time", "2001-01-01 00:00:00 UTC", "--to", (future.path() / "early").string()});
  EXPECT_EQ(too_early.exit_code, 1) << too_early.output;
  EXPECT_TRUE(contains(too_early.output, "the earliest moment that can be recovered is ")) << too_early.output;
}

TEST(BackupCli, KilledRunLeavesNothingVisibleAndAPoolBlobCorruptionIsNamed) {
  BerthInstance berth;
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto const image = layout.add_image({96 * 1024 * 1024, 96 * 1024 * 1024}, 5);
  layout.tag(image.manifest, "v1");
  auto const pushed = push(berth.port(), layout.dir(), "model/big:v1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto const config = berth.dir().path() / "berth.yaml";
  auto const snapshots = berth.backup_dir() / "snapshots";
  auto const partial_exists = [&] {
    std::error_code ec;
    for (auto const& entry : fs::directory_iterator(snapshots, ec))
      if (entry.path().filename().string().rfind(".partial-", 0) == 0) return true;
    return false;
  };
  {
    Process run_to_kill({BERTH_BINARY, "--config", config.string(), "backup", "run"}, scratch.path() / "killed.log");
    ASSERT_TRUE(eventually(30s, partial_exists));
    run_to_kill.send_signal(SIGKILL);
    EXPECT_EQ(run_to_kill.wait_exit(10s), 128 + SIGKILL) << "the run finished before it was killed";
  }
  auto const empty = berth.command({"backup", "list"});
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_TRUE(contains(empty.output, "no snapshots")) << empty.output;

  auto const next = berth.command({"backup", "run"});
  ASSERT_EQ(next.exit_code, 0) << next.output;
  EXPECT_FALSE(partial_exists());
  auto const ids = snapshot_ids(berth.command({"backup", "list"}).output);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(berth.command({"backup", "verify", ids[0]}).exit_code, 0);

  auto const layer = image.layers[0].digest.substr(7);
  auto const pooled = "pool/sha256/" + layer.substr(0, 2) + "/" + layer;
  {
    std::fstream blob(berth.backup_dir() / pooled, std::ios::in | std::ios::out | std::ios::binary);
    blob.seekp(4096);
    blob.put('!');
  }
  auto const verify = berth.command({"backup", "verify"});
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_TRUE(contains(verify.output, ids[0] + ": " + pooled + ": sha256 is ")) << verify.output;
}

}  // namespace
}  // namespace berth::testing

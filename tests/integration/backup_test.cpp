// `berth backup` as an operator runs it: a snapshot of a running service (images pushed with
// skopeo, rows in an application database) that verifies, copies no blob twice, and restores into
// a volume `berth serve` starts on with the same images and rows; a kill -9 mid-run leaves no
// visible snapshot, and a corrupted pool blob makes verify fail naming it.
#include <signal.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "command_output.hpp"

#include "berth/testing/eventually.hpp"
#include "berth/testing/oci_layout.hpp"
#include "berth/testing/process.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_text(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

RunResult berth_with(fs::path const& config, std::vector<std::string> args) {
  std::vector<std::string> argv = {BERTH_BINARY, "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

// The snapshot ids `berth backup list` prints, oldest first.
std::vector<std::string> snapshot_ids(std::string const& list_output) {
  std::vector<std::string> ids;
  std::regex const id(R"((^|\n)(\d{8}T\d{6}Z) )");
  for (std::sregex_iterator it(list_output.begin(), list_output.end(), id), end; it != end; ++it)
    ids.push_back((*it)[2]);
  return ids;
}

RunResult push(std::uint16_t port, fs::path const& layout, std::string const& target) {
  return skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout.string() + ":v1",
                 "docker://127.0.0.1:" + std::to_string(port) + "/" + target});
}

std::string manifest_digest(std::uint16_t port, std::string const& target) {
  auto inspect = skopeo({"inspect", "--tls-verify=false", "docker://127.0.0.1:" + std::to_string(port) + "/" + target});
  if (inspect.exit_code != 0) return "inspect failed: " + inspect.output;
  std::smatch match;
  std::regex_search(inspect.output, match, std::regex(R"re("Digest": "(sha256:[0-9a-f]{64})")re"));
  return match[1];
}

constexpr char shop[] = "postgres:\n  enabled: true\ndatabases:\n  - name: shop\n";

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

  auto const manifest = read_text(berth.backup_dir() / "snapshots" / ids[1] / "manifest.json");
  EXPECT_TRUE(contains(manifest, "\"start_lsn\"")) << manifest;
  EXPECT_TRUE(std::regex_search(manifest, std::regex(R"("start_wal": "[0-9A-F]{24}")"))) << manifest;

  // Restore the second snapshot into an empty folder and serve from it.
  TempDir restored;
  fs::permissions(restored.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const volume = restored.path() / "var";
  auto const restore = berth.command({"backup", "restore", ids[1], "--to", volume.string()});
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  berth.kill_hard();

  auto const config = restored.write("berth.yaml", std::string(shop) + "volumes:\n  primary: " + volume.string() +
                                                       "\n  backup: " + (restored.path() / "backup").string() + "\n");
  Process serve({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"},
                restored.path() / "serve.log", restored.path());
  auto const listening = serve.wait_for_output("listening address=", 90s);
  ASSERT_TRUE(listening) << serve.output();
  auto const port = static_cast<std::uint16_t>(std::stoi(listening->substr(listening->rfind(':') + 1)));
  EXPECT_EQ(manifest_digest(port, "api/orders:v1"), image.manifest.digest);
  auto const restored_url = trimmed(berth_with(config, {"db", "url", "shop"}).output);
  EXPECT_EQ(trimmed(psql(restored_url, "SELECT count(*) FROM orders").output), "501");
  EXPECT_EQ(trimmed(psql(restored_url, "SELECT item FROM orders WHERE id = 501").output), "after the first snapshot");
  serve.send_signal(SIGTERM);
  EXPECT_EQ(serve.wait_exit(60s), 0) << serve.output();

  // A non-empty target needs --force.
  auto const refused = berth.command({"backup", "restore", ids[1], "--to", volume.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.output, "it is not empty")) << refused.output;
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

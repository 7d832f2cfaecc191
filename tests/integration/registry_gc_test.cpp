// Registry housekeeping as an operator meets it: `berth registry gc` beside a live `berth serve`
// with skopeo pushing and pulling, quotas refusing a real push, and `berth registry fsck --repair`
// putting a damaged blob right from the backup volume's pool.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>

#include <gtest/gtest.h>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"
#include "command_output.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

// Sets every file under `root` back two hours, past the default grace period.
void age(fs::path const& root) {
  for (auto const& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file())
      fs::last_write_time(entry.path(), fs::last_write_time(entry.path()) - std::chrono::hours(2));
}

fs::path blob_file(BerthInstance const& berth, std::string const& digest) {
  auto hex = digest.substr(digest.find(':') + 1);
  return berth.data_dir() / "registry" / "blobs" / "sha256" / hex.substr(0, 2) / hex;
}

class RegistryHousekeeping : public ::testing::Test {
protected:
  explicit RegistryHousekeeping(std::string const& config_yaml = "")
      : berth_(config_yaml), layout_(scratch_.path() / "src") {}

  std::string registry(std::string const& repository_and_tag) const {
    return "docker://127.0.0.1:" + std::to_string(berth_.port()) + "/" + repository_and_tag;
  }
  RunResult push(Blob const& manifest, std::string const& target) {
    layout_.tag(manifest, "src");
    return skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout_.dir().string() + ":src", registry(target)});
  }
  // Pulls into a fresh layout; the manifest digest it got, or the failure.
  RunResult pull(std::string const& source, fs::path const& into) {
    return skopeo({"copy", "--src-tls-verify=false", registry(source), "oci:" + into.string() + ":got"});
  }

  TempDir scratch_;
  BerthInstance berth_;
  OciLayout layout_;
};

TEST_F(RegistryHousekeeping, GcBesideALiveServerReclaimsDeletedImagesAndKeepsEverythingTagged) {
  auto const shared = layout_.add_layer(64 * 1024, 1);
  auto const only_old = layout_.add_layer(256 * 1024, 2);
  auto const config_old = layout_.add_config({shared, only_old});
  auto const old_image = layout_.add_image_manifest(config_old, {shared, only_old});
  auto const config_kept = layout_.add_config({shared});
  auto const kept_image = layout_.add_image_manifest(config_kept, {shared});
  ASSERT_EQ(push(old_image, "api/orders:old").exit_code, 0);
  ASSERT_EQ(push(kept_image, "api/orders:v1").exit_code, 0);
  ASSERT_EQ(push(kept_image, "site/web:v1").exit_code, 0);

  auto deleted = http_request("127.0.0.1", berth_.port(), "DELETE", "/v2/api/orders/manifests/old");
  ASSERT_TRUE(deleted);
  ASSERT_EQ(deleted->status, 202);
  age(berth_.data_dir() / "registry");

  // Nothing goes while the untagged manifest is kept (the default)...
  auto gc = berth_.command({"registry", "gc", "--dry-run"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_TRUE(contains(gc.output, "dry run: would reclaim 0 B:")) << gc.output;

  // ...and with --delete-untagged the old image goes, its unique layer with it.
  gc = berth_.command({"registry", "gc", "--delete-untagged", "--dry-run"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_TRUE(contains(gc.output, "would remove manifest api/orders@" + old_image.digest)) << gc.output;
  EXPECT_TRUE(contains(gc.output, "would remove blob " + only_old.digest)) << gc.output;
  EXPECT_FALSE(contains(gc.output, "would remove blob " + shared.digest)) << gc.output;
  EXPECT_TRUE(fs::exists(blob_file(berth_, only_old.digest)));

  gc = berth_.command({"registry", "gc", "--delete-untagged"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_TRUE(contains(gc.output, "1 manifests, 3 blobs")) << gc.output;  // the layer, the config, the manifest
  EXPECT_FALSE(fs::exists(blob_file(berth_, only_old.digest)));
  EXPECT_FALSE(fs::exists(blob_file(berth_, config_old.digest)));
  EXPECT_TRUE(fs::exists(blob_file(berth_, shared.digest)));

  // What is tagged still pulls, byte for byte, from the server that ran all along.
  auto pulled = pull("api/orders:v1", scratch_.path() / "pulled");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  OciLayout got(scratch_.path() / "pulled");
  EXPECT_TRUE(fs::exists(got.dir() / "blobs" / "sha256" / shared.digest.substr(7)));
  auto manifest = http_request("127.0.0.1", berth_.port(), "GET", "/v2/api/orders/manifests/old", "",
                               {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->status, 404);
  auto blob = http_request("127.0.0.1", berth_.port(), "HEAD", "/v2/api/orders/blobs/" + only_old.digest);
  ASSERT_TRUE(blob);
  EXPECT_EQ(blob->status, 404);

  // A pushed-again image comes back whole: the registry took nothing it still needed.
  ASSERT_EQ(push(old_image, "api/orders:old").exit_code, 0);
  auto fsck = berth_.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;

  auto status = berth_.command({"status"});
  EXPECT_TRUE(contains(status.output, "last gc: ")) << status.output;
  EXPECT_TRUE(contains(status.output, "(1 manifests, 3 blobs)")) << status.output;

  // A second run finds nothing more to take.
  gc = berth_.command({"registry", "gc", "--delete-untagged"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_TRUE(contains(gc.output, "reclaimed 0 B:")) << gc.output;
}

TEST_F(RegistryHousekeeping, GcWaitsForASnapshotAndSaysSo) {
  fs::create_directories(berth_.backup_dir());
  auto fd = ::open((berth_.backup_dir() / ".lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as `berth backup run` holds it
  auto gc = berth_.command({"registry", "gc"});
  ::close(fd);
  EXPECT_EQ(gc.exit_code, 1);
  EXPECT_TRUE(contains(gc.output, "a snapshot, prune or drill holds")) << gc.output;
  EXPECT_TRUE(contains(gc.output, "HINT: run `berth registry gc` again")) << gc.output;
}

TEST_F(RegistryHousekeeping, RunAsRootItWorksAsTheVolumesOwnerSoTheServiceCanStillWrite) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto const image = layout_.add_image({10 * 1024}, 5);
  ASSERT_EQ(push(image.manifest, "api/orders:v1").exit_code, 0);
  fs::create_directories(berth_.backup_dir());
  for (auto const& volume : {berth_.data_dir(), berth_.backup_dir()}) {
    ASSERT_EQ(::chown(volume.c_str(), 65534, 65534), 0);
    for (auto const& entry : fs::recursive_directory_iterator(volume))
      ASSERT_EQ(::lchown(entry.path().c_str(), 65534, 65534), 0) << entry.path();
  }
  auto gc = berth_.command({"registry", "gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  auto repair = berth_.command({"registry", "fsck", "--repair"});
  ASSERT_EQ(repair.exit_code, 0) << repair.output;
  for (auto const& volume : {berth_.data_dir() / "registry", berth_.backup_dir()})
    for (auto const& entry : fs::recursive_directory_iterator(volume)) {
      struct stat info {};
      ASSERT_EQ(::lstat(entry.path().c_str(), &info), 0);
      EXPECT_EQ(info.st_uid, 65534u) << entry.path() << " belongs to uid " << info.st_uid;
    }
  EXPECT_TRUE(fs::exists(berth_.data_dir() / "registry" / "gc.json"));
}

class RegistryScrub : public RegistryHousekeeping {
protected:
  RegistryScrub() : RegistryHousekeeping("registry:\n  scrub: {interval: 168h, rate: 10MiB}\n") {}
};

TEST_F(RegistryScrub, TheBackgroundScrubRepairsABlobFromTheBackupPoolWhileServing) {
  ASSERT_TRUE(berth_.process().wait_for_output("scrub finished", std::chrono::seconds(30)))
      << berth_.process().output();  // a first pass at the first start
  auto const image = layout_.add_image({200 * 1024}, 6);
  ASSERT_EQ(push(image.manifest, "api/orders:v1").exit_code, 0);
  auto snapshot = berth_.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;

  // Damage on disk, found by the next pass (the record of the last one removed to make it due).
  berth_.kill_hard();
  fs::remove(berth_.data_dir() / "registry" / "scrub-last");
  { std::ofstream(blob_file(berth_, image.layers[0].digest), std::ios::in | std::ios::out) << "bit rot"; }
  berth_.start();
  auto line = berth_.process().wait_for_output("scrub finished", std::chrono::seconds(30));
  ASSERT_TRUE(line) << berth_.process().output();
  EXPECT_TRUE(contains(*line, "repaired=1 problems=0")) << *line;
  EXPECT_TRUE(contains(berth_.process().output(), "scrub repaired blob " + image.layers[0].digest + " is corrupt"));
  auto pulled = pull("api/orders:v1", scratch_.path() / "pulled");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(berth_.command({"registry", "fsck"}).exit_code, 0);
}

class RegistryQuota : public RegistryHousekeeping {
protected:
  RegistryQuota() : RegistryHousekeeping("registry:\n  quotas: {api: 1MiB}\n") {}
};

TEST_F(RegistryQuota, APushOverTheQuotaIsDeniedWithUsageAndOtherNamespacesAreFree) {
  auto const small = layout_.add_image({100 * 1024}, 1);
  auto const large = layout_.add_image({2 * 1024 * 1024}, 2);
  ASSERT_EQ(push(small.manifest, "api/small:v1").exit_code, 0);
  auto refused = push(large.manifest, "api/large:v1");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(contains(refused.output, "denied")) << refused.output;
  EXPECT_TRUE(contains(refused.output, "over its quota")) << refused.output;
  EXPECT_TRUE(contains(refused.output, "of 1.0 MiB")) << refused.output;
  EXPECT_EQ(push(large.manifest, "site/large:v1").exit_code, 0);

  auto ls = berth_.command({"registry", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_TRUE(contains(ls.output, "1.0 MiB (")) << ls.output;  // the quota column with its use
}

TEST_F(RegistryHousekeeping, FsckRepairRestoresADamagedBlobFromTheBackupPool) {
  auto const image = layout_.add_image({300 * 1024}, 3);
  ASSERT_EQ(push(image.manifest, "model/llama:v1").exit_code, 0);
  auto snapshot = berth_.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;

  auto damaged = blob_file(berth_, image.layers[0].digest);
  { std::ofstream(damaged, std::ios::in | std::ios::out) << "bit rot"; }
  auto fsck = berth_.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 1) << fsck.output;
  EXPECT_TRUE(contains(fsck.output, "DAMAGED blob " + image.layers[0].digest + " is corrupt")) << fsck.output;
  EXPECT_TRUE(contains(fsck.output, "model/llama:v1: manifest refers to blob " + image.layers[0].digest))
      << fsck.output;
  EXPECT_TRUE(contains(fsck.output, "HINT: `berth registry fsck --repair`")) << fsck.output;

  auto repair = berth_.command({"registry", "fsck", "--repair"});
  EXPECT_EQ(repair.exit_code, 0) << repair.output;
  EXPECT_TRUE(contains(repair.output, "REPAIRED blob " + image.layers[0].digest + " is corrupt")) << repair.output;
  EXPECT_TRUE(contains(repair.output, "no problems")) << repair.output;

  auto pulled = pull("model/llama:v1", scratch_.path() / "pulled");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(read_file(scratch_.path() / "pulled" / "blobs" / "sha256" / image.layers[0].digest.substr(7)),
            read_file(layout_.dir() / "blobs" / "sha256" / image.layers[0].digest.substr(7)));
}

TEST_F(RegistryHousekeeping, FsckRepairReportsWhatHasNoGoodCopy) {
  auto const image = layout_.add_image({10 * 1024}, 4);
  ASSERT_EQ(push(image.manifest, "api/orders:v2").exit_code, 0);
  fs::remove(blob_file(berth_, image.layers[0].digest));  // never snapshotted
  auto repair = berth_.command({"registry", "fsck", "--repair"});
  EXPECT_EQ(repair.exit_code, 1) << repair.output;
  EXPECT_TRUE(contains(repair.output,
                       "DAMAGED api/orders: linked blob " + image.layers[0].digest + " is missing from the store"))
      << repair.output;
  EXPECT_TRUE(contains(repair.output, "api/orders:v2: manifest refers to blob")) << repair.output;
  EXPECT_TRUE(contains(repair.output, "HINT: what could not be repaired")) << repair.output;
}

}  // namespace
}  // namespace berth::testing

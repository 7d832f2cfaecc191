// Clients other than skopeo against `berth serve`: podman pushes an image from its own storage
// and pulls it back (no daemon; storage in the test's temp dir).
#include <gtest/gtest.h>

#include "berth/testing/oci_layout.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

class Podman {
public:
  explicit Podman(std::filesystem::path const& dir)
      : base_{"/usr/bin/podman",
              "--root",
              (dir / "root").string(),
              "--runroot",
              (dir / "run").string(),
              "--storage-driver",
              "vfs",
              "--cgroup-manager",
              "cgroupfs",
              "--events-backend",
              "none"} {}
  RunResult operator()(std::vector<std::string> const& args) const {
    auto argv = base_;
    argv.insert(argv.end(), args.begin(), args.end());
    // Podman 5 (Debian 13) warns on every command where the machine has cgroups v1.
    return run(argv, {"PODMAN_IGNORE_CGROUPSV1_WARNING=1"});
  }

private:
  std::vector<std::string> base_;
};

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

TEST(RegistryClients, PodmanPushesAndPullsBack) {
  BerthInstance berth;
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  auto image = layout.add_image({64 * 1024, 128 * 1024}, 61);
  layout.tag(image.manifest, "v1");
  Podman podman(scratch.path() / "podman");
  auto target = "127.0.0.1:" + std::to_string(berth.port()) + "/site/podman:v1";

  // Into podman's storage under a name of our choosing (podman would name it after the path).
  auto storage = "containers-storage:[vfs@" + (scratch.path() / "podman" / "root").string() + "+" +
                 (scratch.path() / "podman" / "run").string() + "]localhost/app:v1";
  auto imported = skopeo({"copy", "oci:" + layout.dir().string() + ":v1", storage});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto id = image.config.digest.substr(7);
  auto pushed = podman({"push", "--tls-verify=false", "localhost/app:v1", "docker://" + target});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  ASSERT_EQ(podman({"rmi", "--all", "--force"}).exit_code, 0);
  auto pulled = podman({"pull", "--tls-verify=false", target});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  // The image ID is the config's digest: the same image came back.
  auto inspected = podman({"image", "inspect", "--format", "{{.Id}}", target});
  EXPECT_EQ(trim(inspected.output), id) << inspected.output;
  auto fsck = berth.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
}

}  // namespace
}  // namespace berth::testing

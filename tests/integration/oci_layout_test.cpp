// The OCI layout builder the registry tests push with, checked against real skopeo between
// on-disk layouts (no registry): what it writes is valid, stable, and survives a copy byte for
// byte, and skopeo's handling of Docker media types, indexes and artifacts is pinned down.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

std::string read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The manifest bytes skopeo sees at `reference` (e.g. "oci:DIR:TAG", "dir:DIR").
std::string raw_manifest(std::string const& reference) {
  auto result = skopeo({"inspect", "--raw", reference});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

void expect_copied(RunResult const& result) {
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(OciLayout, WritesAValidLayoutWithStableDigests) {
  TempDir dir;
  OciLayout layout(dir.path() / "image");
  layout.tag(layout.add_image({100}, 6).manifest, "v1");
  auto image = layout.add_image({4096, 1, 10000}, 7);
  layout.tag(image.manifest, "v1");  // replaces the entry above

  EXPECT_EQ(read_file(dir.path() / "image" / "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
  auto index = nlohmann::json::parse(read_file(dir.path() / "image" / "index.json"));
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_EQ(index["manifests"][0]["digest"], image.manifest.digest);
  EXPECT_EQ(index["manifests"][0]["mediaType"], media_type::oci_manifest);
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1");

  for (auto const& entry : fs::directory_iterator(dir.path() / "image" / "blobs" / "sha256"))
    EXPECT_EQ(sha256_digest(read_file(entry.path())), "sha256:" + entry.path().filename().string());

  auto config = nlohmann::json::parse(layout.read_blob(image.config.digest));
  EXPECT_EQ(config["architecture"], "amd64");
  EXPECT_EQ(config["os"], "linux");
  ASSERT_EQ(config["rootfs"]["diff_ids"].size(), 3u);
  for (std::size_t layer_idx = 0; layer_idx < 3; ++layer_idx) {
    auto const& layer = image.layers[layer_idx];
    EXPECT_EQ(config["rootfs"]["diff_ids"][layer_idx], layer.diff_id);
    EXPECT_EQ(fs::file_size(layout.blob_path(layer.digest)), layer.size);
    // gzip, not libarchive, decides whether the layer is real gzip and what its tar hashes to.
    auto tar = run({"/bin/gzip", "-dc", layout.blob_path(layer.digest).string()});
    ASSERT_EQ(tar.exit_code, 0) << tar.output;
    EXPECT_EQ(sha256_digest(tar.output), layer.diff_id);
  }
  auto listing = run({"/bin/tar", "-tvzf", layout.blob_path(image.layers[2].digest).string()});
  EXPECT_NE(listing.output.find(" 10000 "), std::string::npos) << listing.output;

  // Same inputs, same bytes: tests may compute expected digests by building twice.
  OciLayout again(dir.path() / "again");
  EXPECT_EQ(again.add_image({4096, 1, 10000}, 7).manifest.digest, image.manifest.digest);
  EXPECT_NE(again.add_image({4096, 1, 10000}, 8).manifest.digest, image.manifest.digest);
}

TEST(OciLayout, SkopeoCopiesAnOciImageByteForByte) {
  TempDir dir;
  OciLayout source(dir.path() / "src");
  auto image = source.add_image({4096, 8192, 100}, 1);
  source.tag(image.manifest, "v1");
  auto src = "oci:" + (dir.path() / "src").string() + ":v1";
  EXPECT_EQ(raw_manifest(src), source.read_blob(image.manifest.digest));

  expect_copied(skopeo({"copy", "-q", src, "oci:" + (dir.path() / "dst").string() + ":v1"}));
  EXPECT_EQ(raw_manifest("oci:" + (dir.path() / "dst").string() + ":v1"), source.read_blob(image.manifest.digest));
  OciLayout copy(dir.path() / "dst");
  EXPECT_EQ(copy.read_blob(image.config.digest), source.read_blob(image.config.digest));
  for (auto const& layer : image.layers) EXPECT_EQ(copy.read_blob(layer.digest), source.read_blob(layer.digest));

  expect_copied(skopeo({"copy", "-q", src, "dir:" + (dir.path() / "out").string()}));
  EXPECT_EQ(read_file(dir.path() / "out" / "manifest.json"), source.read_blob(image.manifest.digest));
  for (auto const& layer : image.layers)
    EXPECT_EQ(read_file(dir.path() / "out" / layer.digest.substr(7)), source.read_blob(layer.digest));
}

TEST(OciLayout, SkopeoKeepsDockerMediaTypesOnlyInDirLayouts) {
  TempDir dir;
  OciLayout source(dir.path() / "src");
  auto image = source.add_image({4096, 2048}, 2, MediaTypes::docker);
  source.tag(image.manifest, "v1");
  auto manifest = nlohmann::json::parse(source.read_blob(image.manifest.digest));
  EXPECT_EQ(manifest["mediaType"], media_type::docker_manifest);
  EXPECT_EQ(manifest["config"]["mediaType"], media_type::docker_config);
  EXPECT_EQ(manifest["layers"][0]["mediaType"], media_type::docker_layer);

  // skopeo reads no Docker-typed manifest from an oci: layout: 1.9 does not see the entry, 1.18
  // refuses its media type.
  auto from_oci =
      skopeo({"copy", "-q", "oci:" + (dir.path() / "src").string() + ":v1", "dir:" + (dir.path() / "x").string()});
  EXPECT_NE(from_oci.exit_code, 0);
  EXPECT_TRUE(from_oci.output.find("no descriptor found for reference") != std::string::npos ||
              from_oci.output.find("unsupported manifest MIME types") != std::string::npos)
      << from_oci.output;

  // dir: to dir: keeps the Docker manifest as it is.
  source.export_dir(image.manifest, dir.path() / "docker");
  auto docker_dir = "dir:" + (dir.path() / "docker").string();
  EXPECT_EQ(raw_manifest(docker_dir), source.read_blob(image.manifest.digest));
  expect_copied(skopeo({"copy", "-q", "--preserve-digests", docker_dir, "dir:" + (dir.path() / "out").string()}));
  EXPECT_EQ(read_file(dir.path() / "out" / "manifest.json"), source.read_blob(image.manifest.digest));

  // An oci: destination converts the manifest to OCI (a new digest)...
  expect_copied(skopeo({"copy", "-q", docker_dir, "oci:" + (dir.path() / "converted").string() + ":v1"}));
  auto converted = nlohmann::json::parse(raw_manifest("oci:" + (dir.path() / "converted").string() + ":v1"));
  EXPECT_EQ(converted["layers"][0]["mediaType"], media_type::oci_layer);
  EXPECT_EQ(converted["layers"][0]["digest"], image.layers[0].digest);

  // ...and a Docker manifest list with --all cannot keep its digest there at all.
  auto arm = source.add_image({1024}, 3, MediaTypes::docker, {"arm64", "linux", "v8"});
  auto list = source.add_index({{image.manifest, {}}, {arm.manifest, {"arm64", "linux", "v8"}}}, MediaTypes::docker);
  source.export_dir(list, dir.path() / "list");
  auto list_dir = "dir:" + (dir.path() / "list").string();
  auto refused =
      skopeo({"copy", "-q", "--all", "--preserve-digests", list_dir, "oci:" + (dir.path() / "l").string() + ":v1"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("Manifest list must be converted"), std::string::npos) << refused.output;
  expect_copied(
      skopeo({"copy", "-q", "--all", "--preserve-digests", list_dir, "dir:" + (dir.path() / "lout").string()}));
  EXPECT_EQ(read_file(dir.path() / "lout" / "manifest.json"), source.read_blob(list.digest));
  EXPECT_EQ(read_file(dir.path() / "lout" / (arm.manifest.digest.substr(7) + ".manifest.json")),
            source.read_blob(arm.manifest.digest));
}

TEST(OciLayout, SkopeoCopiesATwoPlatformIndexWithAll) {
  TempDir dir;
  OciLayout source(dir.path() / "src");
  Platform arm{"arm64", "linux", "v8"};
  auto amd64_image = source.add_image({4096}, 4);
  auto arm64_image = source.add_image({4096}, 5, MediaTypes::oci, arm);
  auto index = source.add_index({{amd64_image.manifest, {}}, {arm64_image.manifest, arm}});
  source.tag(index, "multi");
  auto src = "oci:" + (dir.path() / "src").string() + ":multi";

  expect_copied(skopeo({"copy", "-q", "--all", src, "oci:" + (dir.path() / "dst").string() + ":multi"}));
  EXPECT_EQ(raw_manifest("oci:" + (dir.path() / "dst").string() + ":multi"), source.read_blob(index.digest));
  OciLayout copy(dir.path() / "dst");
  for (auto const* image : {&amd64_image, &arm64_image}) {
    EXPECT_EQ(copy.read_blob(image->manifest.digest), source.read_blob(image->manifest.digest));
    EXPECT_EQ(copy.read_blob(image->layers[0].digest), source.read_blob(image->layers[0].digest));
  }

  expect_copied(skopeo({"copy", "-q", "--all", src, "dir:" + (dir.path() / "out").string()}));
  EXPECT_EQ(read_file(dir.path() / "out" / "manifest.json"), source.read_blob(index.digest));
  EXPECT_EQ(read_file(dir.path() / "out" / (arm64_image.manifest.digest.substr(7) + ".manifest.json")),
            source.read_blob(arm64_image.manifest.digest));

  // Without --all skopeo copies the one image for the (here overridden) platform.
  expect_copied(skopeo({"--override-arch", "arm64", "--override-variant", "v8", "copy", "-q", src,
                        "oci:" + (dir.path() / "one").string() + ":arm"}));
  EXPECT_EQ(raw_manifest("oci:" + (dir.path() / "one").string() + ":arm"),
            source.read_blob(arm64_image.manifest.digest));
}

TEST(OciLayout, SkopeoCopiesAnArtifactWithItsSubject) {
  TempDir dir;
  OciLayout source(dir.path() / "src");
  auto image = source.add_image({4096}, 6);
  source.tag(image.manifest, "v1");
  auto artifact = source.add_artifact("application/vnd.example.sbom.v1+json", image.manifest, "{\"sbom\":true}",
                                      "application/json");
  source.tag(artifact, "sbom");
  auto manifest = nlohmann::json::parse(source.read_blob(artifact.digest));
  EXPECT_EQ(manifest["artifactType"], "application/vnd.example.sbom.v1+json");
  EXPECT_EQ(manifest["config"]["mediaType"], media_type::oci_empty);
  EXPECT_EQ(manifest["config"]["digest"], "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_EQ(manifest["subject"]["digest"], image.manifest.digest);
  EXPECT_EQ(manifest["subject"]["size"], image.manifest.size);

  auto src = "oci:" + (dir.path() / "src").string() + ":sbom";
  expect_copied(skopeo({"copy", "-q", src, "oci:" + (dir.path() / "dst").string() + ":sbom"}));
  EXPECT_EQ(raw_manifest("oci:" + (dir.path() / "dst").string() + ":sbom"), source.read_blob(artifact.digest));
  OciLayout copy(dir.path() / "dst");
  EXPECT_EQ(copy.read_blob(manifest["config"]["digest"].get<std::string>()), "{}");
  EXPECT_EQ(copy.read_blob(manifest["layers"][0]["digest"].get<std::string>()), "{\"sbom\":true}");

  expect_copied(skopeo({"copy", "-q", src, "dir:" + (dir.path() / "out").string()}));
  EXPECT_EQ(read_file(dir.path() / "out" / "manifest.json"), source.read_blob(artifact.digest));
}

}  // namespace
}  // namespace berth::testing

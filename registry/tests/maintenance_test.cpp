// fsck and ls over real storage, with damage done to the files by hand.
#include "berth/registry/maintenance.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "berth/testing/temp_dir.hpp"
#include "push_helpers.hpp"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;

class Maintenance : public ::testing::Test {
protected:
  Maintenance() {
    Config config;
    config.root = dir_.path() / "registry";
    storage_ = std::make_unique<Storage>(config);
  }

  Digest put_blob(std::string const& repo, std::string const& content) {
    return testing::put_blob(*storage_, repo, content);
  }

  // An image with one layer, tagged.
  Digest put_image(std::string const& repo, std::string const& tag, std::string const& layer) {
    auto config = put_blob(repo, "{}");
    auto layer_digest = put_blob(repo, layer);
    std::string bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                        config.to_string() +
                        R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
                        layer_digest.to_string() + R"(","size":)" + std::to_string(layer.size()) + "}]}";
    return storage_->put_manifest(repo, bytes, parse_manifest(bytes, ""), tag);
  }

  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
};

TEST_F(Maintenance, CleanRegistryPassesFsck) {
  put_image("api/orders", "v1", "layer");
  auto report = fsck(*storage_);
  EXPECT_TRUE(report.clean()) << report.problems.front();
  EXPECT_EQ(report.blobs_checked, 3u);  // config, layer, manifest
  EXPECT_EQ(report.manifests_checked, 1u);
  EXPECT_EQ(report.repositories_checked, 1u);
}

TEST_F(Maintenance, FsckNamesACorruptBlobAndTheImageItBreaks) {
  put_image("api/orders", "v1", "layer");
  auto layer = digest_of("layer");
  std::ofstream(storage_->blob_path(layer), std::ios::trunc) << "flipped";
  auto report = fsck(*storage_);
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_EQ(report.problems[0],
            "blob " + layer.to_string() + " is corrupt: its content hashes to " + digest_of("flipped").to_string());
  EXPECT_EQ(report.problems[1],
            "api/orders:v1: manifest refers to blob " + layer.to_string() + ", which is missing or corrupt");
}

TEST_F(Maintenance, FsckFindsAMissingBlob) {
  put_image("api/orders", "v1", "layer");
  fs::remove(storage_->blob_path(digest_of("layer")));
  auto report = fsck(*storage_);
  EXPECT_FALSE(report.clean());
  EXPECT_EQ(report.problems[0],
            "api/orders: linked blob " + digest_of("layer").to_string() + " is missing from the store");
}

TEST_F(Maintenance, FsckFindsADanglingTag) {
  auto digest = put_image("api/orders", "v1", "layer");
  fs::remove(dir_.path() / "registry/repositories/api/orders/_manifests/revisions/sha256" / digest.hex());
  auto report = fsck(*storage_);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0],
            "api/orders:v1: tag points to manifest " + digest.to_string() + ", which is not in the repository");
}

TEST_F(Maintenance, SummarizeListsRepositoriesUnderAPrefix) {
  put_image("api/orders", "v1", "layer-a");
  put_image("api/orders", "v2", "layer-b");
  put_image("site/web", "latest", "layer-c");
  auto all = summarize(*storage_);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "api/orders");
  EXPECT_EQ(all[0].tags, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(all[0].manifests, 2u);
  EXPECT_EQ(all[0].bytes, 2u + 7 + 7);  // "{}" once, two layers
  auto api = summarize(*storage_, "api");
  ASSERT_EQ(api.size(), 1u);
  EXPECT_TRUE(summarize(*storage_, "ap").empty());
}

}  // namespace
}  // namespace berth::registry

// Garbage collection, quotas and fsck repair on real storage. Age is made by setting file times
// back (the grace period is at least a minute); concurrency by real threads on one Storage.
#include "berth/registry/gc.hpp"

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "berth/core/file_lock.hpp"
#include "berth/registry/maintenance.hpp"
#include "berth/testing/temp_dir.hpp"
#include "push_helpers.hpp"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;

// Sets every file under `root` back by `by`, as if it had been written then.
void age(fs::path const& root, std::chrono::hours by = std::chrono::hours(2)) {
  for (auto const& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) fs::last_write_time(entry.path(), fs::last_write_time(entry.path()) - by);
}

std::string image_manifest(Digest const& config, std::vector<std::pair<Digest, std::size_t>> const& layers,
                           std::optional<Digest> subject = std::nullopt) {
  std::string text = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                     R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                     config.to_string() + R"(","size":2},"layers":[)";
  for (std::size_t idx = 0; idx < layers.size(); ++idx)
    text += std::string(idx ? "," : "") + R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
            layers[idx].first.to_string() + R"(","size":)" + std::to_string(layers[idx].second) + "}";
  text += "]";
  if (subject)
    text += R"(,"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
            subject->to_string() + R"(","size":1})";
  return text + "}";
}

class Gc : public ::testing::Test {
protected:
  Gc() { storage_ = std::make_unique<Storage>(config()); }

  Config config() const {
    Config config;
    config.root = dir_.path() / "registry";
    return config;
  }

  Digest put_blob(std::string const& repo, std::string const& content) {
    return testing::put_blob(*storage_, repo, content);
  }

  // An image with one layer; tagged when `tag` is given.
  Digest put_image(std::string const& repo, std::optional<std::string> const& tag, std::string const& layer,
                   std::optional<Digest> subject = std::nullopt) {
    auto config = put_blob(repo, "{}");
    auto layer_digest = put_blob(repo, layer);
    auto bytes = image_manifest(config, {{layer_digest, layer.size()}}, subject);
    return storage_->put_manifest(repo, bytes, parse_manifest(bytes, ""), tag);
  }

  Digest put_index(std::string const& repo, std::string const& tag, std::vector<Digest> const& children) {
    std::string bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
    for (std::size_t idx = 0; idx < children.size(); ++idx)
      bytes += std::string(idx ? "," : "") + R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
               children[idx].to_string() + R"(","size":1})";
    bytes += "]}";
    return storage_->put_manifest(repo, bytes, parse_manifest(bytes, ""), tag);
  }

  GcReport collect(bool delete_untagged = false, bool dry_run = false) {
    return collect_garbage(
        *storage_, {.grace_period = std::chrono::hours(1), .delete_untagged = delete_untagged, .dry_run = dry_run});
  }

  bool stored(std::string const& content) const { return fs::exists(storage_->blob_path(digest_of(content))); }

  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
};

TEST_F(Gc, DeletesOnlyBlobsNoManifestNeedsOnceTheyAreOlderThanTheGracePeriod) {
  put_image("api/orders", "v1", "kept layer");
  put_blob("api/orders", "orphan");
  age(config().root);
  put_blob("api/orders", "fresh orphan");  // pushed within the grace period: a push in flight
  auto report = collect();
  EXPECT_EQ(report.blobs_deleted, 1u);
  EXPECT_EQ(report.bytes_reclaimed, 6u);
  EXPECT_EQ(report.links_removed, 1u);  // api/orders no longer lists the orphan
  EXPECT_FALSE(stored("orphan"));
  EXPECT_FALSE(storage_->find_blob("api/orders", digest_of("orphan")));
  EXPECT_TRUE(stored("kept layer"));
  EXPECT_TRUE(stored("fresh orphan"));
  EXPECT_TRUE(fsck(*storage_).clean());
  EXPECT_TRUE(fs::is_empty(config().root / "gc-trash"));
}

TEST_F(Gc, DryRunListsWhatWouldGoAndChangesNothing) {
  put_image("api/orders", "v1", "kept layer");
  put_blob("api/orders", "orphan");
  age(config().root);
  auto report = collect(false, true);
  EXPECT_TRUE(report.dry_run);
  EXPECT_EQ(report.blobs_deleted, 1u);
  ASSERT_EQ(report.removed.size(), 2u);
  EXPECT_EQ(report.removed[0], "link api/orders " + digest_of("orphan").to_string());
  EXPECT_EQ(report.removed[1], "blob " + digest_of("orphan").to_string() + " (6 bytes)");
  EXPECT_TRUE(stored("orphan"));
  EXPECT_TRUE(storage_->find_blob("api/orders", digest_of("orphan")));
  EXPECT_FALSE(last_gc(*storage_));  // a dry run is not recorded as a collection
}

TEST_F(Gc, UntaggedManifestsStayUnlessAskedAndThenOnlyWhenNothingKeepsThem) {
  auto untagged = put_image("api/a", std::nullopt, "untagged layer");
  auto child = put_image("api/a", std::nullopt, "child layer");
  put_index("api/a", "multi", {child});
  auto tagged = put_image("api/a", "v1", "tagged layer");
  auto signature = put_image("api/a", std::nullopt, "signature layer", tagged);
  age(config().root);
  auto young = put_image("api/a", std::nullopt, "young layer");

  auto report = collect();
  EXPECT_EQ(report.manifests_deleted, 0u);
  EXPECT_EQ(report.blobs_deleted, 0u);

  report = collect(true);
  EXPECT_EQ(report.manifests_deleted, 1u);
  EXPECT_FALSE(storage_->has_manifest("api/a", untagged));
  EXPECT_FALSE(stored("untagged layer"));                   // its blobs go in the same run
  EXPECT_TRUE(storage_->has_manifest("api/a", child));      // listed by a tagged index
  EXPECT_TRUE(storage_->has_manifest("api/a", signature));  // a referrer of a tagged manifest
  EXPECT_TRUE(storage_->has_manifest("api/a", young));      // within the grace period
  EXPECT_TRUE(stored("child layer"));
  EXPECT_TRUE(stored("signature layer"));
  EXPECT_EQ(storage_->referrers("api/a", tagged).size(), 1u);
  EXPECT_TRUE(fsck(*storage_).clean());
}

TEST_F(Gc, DeletingATagLetsTheNextCollectionTakeTheImageAndItsReferrers) {
  auto image = put_image("api/a", "v1", "layer");
  put_image("api/a", std::nullopt, "sbom", image);
  put_image("api/b", "v1", "layer");  // the same layer, still needed elsewhere
  ASSERT_TRUE(storage_->delete_tag("api/a", "v1"));
  age(config().root);
  auto report = collect(true);
  EXPECT_EQ(report.manifests_deleted, 2u);
  EXPECT_TRUE(storage_->referrers("api/a", image).empty());
  EXPECT_FALSE(stored("sbom"));
  EXPECT_TRUE(stored("layer"));
  EXPECT_FALSE(storage_->find_blob("api/a", digest_of("layer")));
  EXPECT_TRUE(storage_->find_blob("api/b", digest_of("layer")));
  EXPECT_TRUE(fsck(*storage_).clean());
  auto record = last_gc(*storage_);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->report.manifests_deleted, 2u);
  EXPECT_GT(record->finished, std::chrono::system_clock::now() - std::chrono::minutes(1));
}

TEST_F(Gc, APushThatRefersToABlobStampsItSoItIsNotCollected) {
  put_blob("api/a", "old layer");  // unreferenced and old: a candidate...
  age(config().root);
  auto config_blob = put_blob("api/a", "{}");
  auto bytes = image_manifest(config_blob, {{digest_of("old layer"), 9}});
  storage_->put_manifest("api/a", bytes, parse_manifest(bytes, ""), "v1");  // ...until a manifest needs it
  collect();
  EXPECT_TRUE(stored("old layer"));
  EXPECT_TRUE(fsck(*storage_).clean());
}

TEST_F(Gc, AManifestReferringToAVanishedBlobIsRefusedNotStored) {
  auto config_blob = put_blob("api/a", "{}");
  auto layer = put_blob("api/a", "layer");
  fs::remove(storage_->blob_path(layer));  // as if a collection had just taken it
  auto bytes = image_manifest(config_blob, {{layer, 5}});
  EXPECT_THROW(storage_->put_manifest("api/a", bytes, parse_manifest(bytes, ""), "v1"), ReferenceGone);
  EXPECT_FALSE(storage_->resolve_tag("api/a", "v1"));
}

TEST_F(Gc, ARunKilledMidSweepHasItsObjectsPutBack) {
  auto image = put_image("api/a", "v1", "layer");
  auto link = storage_->blob_link_path("api/a", digest_of("layer"));
  fs::create_directories(config().root / "gc-trash");
  fs::rename(link, config().root / "gc-trash" / "repositories+api+a+_layers+sha256+" += digest_of("layer").hex());
  EXPECT_TRUE(storage_->find_blob("api/a", digest_of("layer")));  // readers look aside too
  EXPECT_EQ(recover_interrupted_gc(*storage_), 1u);
  EXPECT_TRUE(fs::exists(link));
  EXPECT_TRUE(storage_->find_blob("api/a", digest_of("layer")));
  EXPECT_TRUE(storage_->has_manifest("api/a", image));
  EXPECT_TRUE(fsck(*storage_).clean());
}

TEST_F(Gc, OnlyOneCollectionRunsAtATime) {
  FileLock held(config().root / "gc.lock");
  ASSERT_TRUE(held.locked());
  EXPECT_THROW(collect(), GcBusy);
  EXPECT_EQ(recover_interrupted_gc(*storage_), 0u);
}

TEST_F(Gc, ExpiredUploadsGoAndRecentOnesStay) {
  auto old_id = storage_->start_upload("api/a");
  storage_->open_upload("api/a", old_id)->write(std::string(100, 'x'));
  age(config().root, std::chrono::hours(25));
  auto new_id = storage_->start_upload("api/a");
  auto report = collect();
  EXPECT_EQ(report.uploads_expired, 1u);
  EXPECT_FALSE(storage_->upload_size("api/a", old_id));
  EXPECT_EQ(storage_->upload_size("api/a", new_id), 0u);
}

TEST_F(Gc, QuotaRefusesWhatWouldGoOverAndCountsEachBlobOncePerNamespace) {
  auto limited = config();
  limited.quotas["api"] = 100;
  storage_ = std::make_unique<Storage>(limited);
  put_blob("api/a", std::string(60, 'a'));
  put_blob("api/b", std::string(60, 'a'));    // the same blob again: free
  put_blob("site/c", std::string(200, 'b'));  // no quota on site
  try {
    put_blob("api/a", std::string(50, 'c'));
    FAIL() << "expected QuotaExceeded";
  } catch (QuotaExceeded const& error) {
    EXPECT_NE(std::string(error.what()).find("over its quota: it holds 60 B of 100 B"), std::string::npos)
        << error.what();
  }
  put_blob("api/a", std::string(40, 'd'));  // exactly fills it
  EXPECT_THROW(storage_->start_upload("api/a"), QuotaExceeded);
  auto usage = namespace_usage(*storage_);
  ASSERT_EQ(usage.size(), 3u);
  EXPECT_EQ(usage[0].name, "api");
  EXPECT_EQ(usage[0].bytes, 100u);
  EXPECT_EQ(usage[0].blobs, 2u);
  EXPECT_EQ(usage[0].quota, 100u);
  EXPECT_EQ(usage[1].name, "site");
  EXPECT_EQ(usage[1].bytes, 200u);
  EXPECT_FALSE(usage[1].quota);

  // Usage after a collection: the unreferenced blobs went, and a new storage (a restarted
  // service) counts what is left.
  age(config().root);
  collect();
  EXPECT_EQ(namespace_usage(*storage_)[0].bytes, 0u);
  storage_ = std::make_unique<Storage>(limited);
  put_blob("api/a", std::string(90, 'e'));
}

TEST_F(Gc, FsckRepairsADamagedOrMissingBlobFromAGoodCopy) {
  put_image("api/a", "v1", "layer one");
  put_image("api/b", "v1", "layer two");
  auto good = dir_.path() / "pool";
  fs::create_directories(good);
  std::ofstream(good / digest_of("layer one").hex()) << "layer one";
  std::ofstream(good / digest_of("layer two").hex()) << "layer 2!!";  // a bad copy
  std::ofstream(storage_->blob_path(digest_of("layer one")), std::ios::trunc) << "flipped";
  fs::remove(storage_->blob_path(digest_of("layer two")));
  auto source = [&](Digest const& digest) -> std::optional<fs::path> {
    auto path = good / digest.hex();
    return fs::exists(path) ? std::optional(path) : std::nullopt;
  };
  auto report = fsck_and_repair(*storage_, source);
  ASSERT_EQ(report.repaired.size(), 1u);
  EXPECT_NE(report.repaired[0].find("is corrupt"), std::string::npos);
  EXPECT_TRUE(stored("layer one"));
  EXPECT_TRUE(fsck(*storage_).problems.size() > 0);  // layer two is still missing: reported with its image
  bool names_image = false;
  for (auto const& problem : report.problems) names_image |= problem.starts_with("api/b:v1:");
  EXPECT_TRUE(names_image);
  std::ifstream in(storage_->blob_path(digest_of("layer one")));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "layer one");
}

// Pushers, taggers and pullers on one storage while collections run back to back. Old images
// are collected as their tags go; new pushes reuse old layers (the dangerous case: a blob that
// is a candidate when the push refers to it). Every pull of an image whose tag still points at
// it must succeed, and fsck must be clean at the end.
TEST_F(Gc, StressConcurrentPushesTagMovesDeletesAndCollections) {
  constexpr int old_images = 40;
  for (int idx = 0; idx < old_images; ++idx)
    put_image("api/r" + std::to_string(idx % 4), "old" + std::to_string(idx), "old layer " + std::to_string(idx));
  age(config().root);

  std::atomic<bool> stop{false};
  std::atomic<int> pushes{0}, pulls{0}, collections{0}, deletes{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  auto fail = [&](std::string const& what) {
    std::lock_guard lock(failures_mutex);
    failures.push_back(what);
  };
  auto pull = [&](std::string const& repo, std::string const& tag) {
    auto digest = storage_->resolve_tag(repo, tag);
    if (!digest) return;
    auto manifest = storage_->get_manifest(repo, *digest);
    bool ok = manifest.has_value();
    if (ok)
      for (auto const& blob : parse_manifest(manifest->bytes, manifest->media_type).required_blobs()) {
        auto info = storage_->find_blob(repo, blob);
        std::string content;
        if (info)  // as the API opens it: where it is, or where a collection has it for a moment
          for (auto const& path : {info->path, storage_->gc_trash_path(info->path), info->path})
            if (std::ifstream in(path); in) {
              content.assign(std::istreambuf_iterator<char>(in), {});
              break;
            }
        ok = ok && info && digest_of(content) == blob;
      }
    if (!ok && storage_->resolve_tag(repo, tag) == digest) fail("pull of " + repo + ":" + tag + " failed");
    ++pulls;
  };

  std::vector<std::thread> threads;
  for (int pusher = 0; pusher < 2; ++pusher)
    threads.emplace_back([&, pusher] {
      std::mt19937 random(pusher);
      for (int round = 0; !stop; ++round) {
        auto repo = "api/r" + std::to_string(random() % 4);
        // Half the pushes reuse an old layer, which may be a collection candidate right now.
        auto layer = random() % 2 ? "old layer " + std::to_string(random() % old_images)
                                  : "new layer " + std::to_string(pusher) + "-" + std::to_string(round);
        try {
          put_image(repo, "new" + std::to_string(pusher) + "-" + std::to_string(round % 8), layer);
          ++pushes;
        } catch (ReferenceGone const&) {
          // A refused push is loud and retried by clients; it is not a loss.
        } catch (std::exception const& error) {
          fail(std::string("push: ") + error.what());
        }
      }
    });
  threads.emplace_back([&] {  // deletes old tags, so their images become garbage
    for (int idx = 0; idx < old_images && !stop; ++idx) {
      storage_->delete_tag("api/r" + std::to_string(idx % 4), "old" + std::to_string(idx));
      ++deletes;
      std::this_thread::yield();
    }
  });
  threads.emplace_back([&] {
    std::mt19937 random(7);
    while (!stop) {
      auto repo = "api/r" + std::to_string(random() % 4);
      for (auto const& tag : storage_->tags(repo).value_or(std::vector<std::string>{})) pull(repo, tag);
    }
  });
  threads.emplace_back([&] {
    while (!stop) try {
        collect(true);
        ++collections;
      } catch (std::exception const& error) {
        fail(std::string("gc: ") + error.what());
      }
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (std::chrono::steady_clock::now() < deadline && (collections < 20 || deletes < old_images))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  for (auto& thread : threads) thread.join();

  for (auto const& failure : failures) ADD_FAILURE() << failure;
  EXPECT_GT(pushes, 10);
  EXPECT_GT(pulls, 10);
  EXPECT_GE(collections, 2);
  auto report = fsck(*storage_);
  for (auto const& problem : report.problems) ADD_FAILURE() << problem;
  // Every image still tagged pulls.
  for (auto const& repo : storage_->repositories())
    for (auto const& tag : storage_->tags(repo).value_or(std::vector<std::string>{})) pull(repo, tag);
  for (auto const& failure : failures) ADD_FAILURE() << failure;
  // The deleted old images' unique layers were collected.
  age(config().root);
  collect(true);
  int old_left = 0;
  for (int idx = 0; idx < old_images; ++idx) old_left += stored("old layer " + std::to_string(idx));
  int reused = 0;
  for (auto const& repo : storage_->repositories())
    for (auto const& digest : storage_->linked_blobs(repo))
      for (int idx = 0; idx < old_images; ++idx) reused += digest == digest_of("old layer " + std::to_string(idx));
  EXPECT_LE(old_left, reused);  // only layers new images took over survive
  EXPECT_TRUE(fsck(*storage_).clean());
}

}  // namespace
}  // namespace berth::registry

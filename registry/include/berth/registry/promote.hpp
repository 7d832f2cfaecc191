// Promotion: copying an image from the local registry storage to another registry byte for
// byte, so its digest there equals the local one. Walks a manifest or an index (every child
// manifest) and optionally the referrers (signatures, SBOMs); skips blobs and manifests the
// target already holds; uploads the missing blobs in parallel, then puts child manifests before
// the manifests that reference them, and the top manifest last under each tag. Re-promoting an
// unchanged image sends no content. Knows nothing of ECR or the command line.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "berth/registry/digest.hpp"
#include "berth/registry/registry_client.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {

struct PromoteRequest {
  std::string repository;           ///< local repository, e.g. "api/orders"
  std::string reference;            ///< a tag or "sha256:..." digest in it
  std::string target_repository{};  ///< repository at the target (empty: the same name)
  /// Tags to put the image under at the target. Empty: the source tag (or none when the source
  /// is a digest: the image is then pushed by digest only).
  std::vector<std::string> tags{};
  bool with_referrers = false;  ///< also copy the manifests whose subject is a copied manifest
  bool dry_run = false;         ///< check the target and report, but send nothing
  unsigned parallel = 4;        ///< blobs uploaded at once (at least 1)
};

enum class ItemState { present, sent, would_send };

/// One blob or manifest and what happened to it.
struct PromotedItem {
  Digest digest;
  std::uint64_t size = 0;
  bool manifest = false;
  std::string media_type{};
  ItemState state = ItemState::present;
};

struct PromoteResult {
  Digest digest;  ///< the top manifest's (equal at the target)
  std::string media_type{};
  std::vector<std::string> tags{};    ///< tags put (or that would be) at the target
  std::vector<PromotedItem> items{};  ///< blobs first, then manifests in the order put
  std::uint64_t bytes_sent = 0;       ///< blob and manifest bytes sent (0 for a dry run)
  std::uint64_t blobs_sent = 0;
  std::uint64_t blobs_present = 0;
  std::uint64_t manifests_sent = 0;
};

/// Called once per blob when its upload starts and when it ends (or is found present), from
/// worker threads, one call at a time. Must not throw.
struct BlobProgress {
  Digest digest;
  std::uint64_t size = 0;
  enum class Stage { checking_done, uploading, uploaded } stage = Stage::uploading;
  bool present = false;  ///< for checking_done: the target had it already
};
using ProgressCallback = std::function<void(BlobProgress const&)>;

/// Copies what `request` names from `storage` to `target`. Throws berth::Error when the source
/// is missing or incomplete (naming what), RegistryError / TagImmutableError /
/// http::TransportError from the target. Nothing is tagged at the target unless every blob and
/// child manifest is there. Blocks; runs `request.parallel` threads of its own.
PromoteResult promote(Storage const& storage, RegistryClient& target, PromoteRequest const& request,
                      ProgressCallback const& progress = {});

}  // namespace berth::registry

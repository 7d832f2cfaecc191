// Promotion in three steps: plan (read the local manifests, collect blobs and manifests in the
// order the target must receive them), blobs (HEAD each, upload the missing ones on a few
// worker threads), manifests (children and the top one, then referrers). Nothing is tagged
// before every blob is in place, so an interrupted promotion leaves at most untagged content
// at the target and a re-run picks up where it stopped.
#include "berth/registry/promote.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "berth/registry/manifest.hpp"

namespace berth::registry {
namespace {

struct PlannedManifest {
  StoredManifest stored;
  bool top = false;
};

struct Plan {
  std::vector<std::pair<Digest, std::uint64_t>> blobs;  // in first-seen order, no duplicates
  std::vector<PlannedManifest> manifests;               // children before parents, top, then referrers
  std::set<Digest> seen_blobs;
  std::set<Digest> seen_manifests;
};

class Planner {
public:
  Planner(Storage const& storage, PromoteRequest const& request) : storage_(storage), request_(request) {}

  Plan plan(Digest const& top) {
    std::vector<Digest> referrer_queue;
    visit(top, true, "", referrer_queue);
    // Referrers of anything copied, and referrers of those (a signature of an SBOM), after the
    // image itself: a registry may want their subject to exist first.
    for (std::size_t queue_idx = 0; queue_idx < referrer_queue.size(); ++queue_idx) {
      auto subject = referrer_queue[queue_idx];
      for (auto const& descriptor : storage_.referrers(request_.repository, subject)) {
        auto json = nlohmann::json::parse(descriptor, nullptr, false);
        auto digest = json.is_object() ? Digest::parse(json.value("digest", std::string())) : std::nullopt;
        if (!digest) continue;
        visit(*digest, false, "referrer of " + subject.to_string(), referrer_queue);
      }
    }
    return std::move(plan_);
  }

private:
  void visit(Digest const& digest, bool top, std::string const& referenced_by, std::vector<Digest>& referrer_queue) {
    if (!plan_.seen_manifests.insert(digest).second) return;
    auto stored = storage_.get_manifest(request_.repository, digest);
    if (!stored)
      throw Error(
          "manifest " + digest.to_string() + (referenced_by.empty() ? "" : " (" + referenced_by + ")") + " is not in " +
          request_.repository +
          " locally\nHINT: push the complete image (skopeo copy --all for a multi-arch index) before promoting");
    auto manifest = parse_manifest(stored->bytes, stored->media_type);
    for (auto const& child : manifest.manifests)
      visit(child.digest, false, "listed in " + digest.to_string(), referrer_queue);
    for (auto const& blob : manifest.required_blobs()) {
      if (!plan_.seen_blobs.insert(blob).second) continue;
      auto info = storage_.find_blob(request_.repository, blob);
      if (!info)
        throw Error("blob " + blob.to_string() + " of manifest " + digest.to_string() + " is not in " +
                    request_.repository + " locally\nHINT: run berth registry fsck; push the image again");
      plan_.blobs.emplace_back(blob, info->size);
    }
    plan_.manifests.push_back({std::move(*stored), top});
    if (request_.with_referrers) referrer_queue.push_back(digest);
  }

  Storage const& storage_;
  PromoteRequest const& request_;
  Plan plan_;
};

bool is_digest(std::string const& reference) {
  return Digest::parse(reference).has_value();
}

}  // namespace

PromoteResult promote(Storage const& storage, RegistryClient& target, PromoteRequest const& request,
                      ProgressCallback const& progress) {
  auto log = logger("promote");
  auto const target_repository = request.target_repository.empty() ? request.repository : request.target_repository;

  std::optional<Digest> top;
  if (is_digest(request.reference))
    top = Digest::parse(request.reference);
  else
    top = storage.resolve_tag(request.repository, request.reference);
  if (!top || !storage.has_manifest(request.repository, *top))
    throw Error("no image " + request.repository + (is_digest(request.reference) ? "@" : ":") + request.reference +
                " in the local registry\nHINT: berth registry ls " + request.repository + " lists its tags");

  auto plan = Planner(storage, request).plan(*top);
  PromoteResult result{.digest = *top};
  result.tags = request.tags;
  if (result.tags.empty() && !is_digest(request.reference)) result.tags.push_back(request.reference);

  // Blobs: HEAD every one, upload what is missing, `parallel` at a time.
  std::vector<PromotedItem> blob_items(plan.blobs.size(), PromotedItem{*top, 0, false, "", ItemState::present});
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::exception_ptr failure;
  std::atomic<bool> failed{false};
  auto const report = [&](BlobProgress const& event) {
    if (!progress) return;
    std::lock_guard lock(progress_mutex);
    progress(event);
  };
  auto const work = [&] {
    for (;;) {
      auto const blob_idx = next++;
      if (blob_idx >= plan.blobs.size() || failed) return;
      auto const& [digest, size] = plan.blobs[blob_idx];
      auto& item = blob_items[blob_idx];
      item = PromotedItem{digest, size, false, "", ItemState::present};
      try {
        bool const present = target.blob_size(target_repository, digest).has_value();
        report({digest, size, BlobProgress::Stage::checking_done, present});
        if (present) continue;
        if (request.dry_run) {
          item.state = ItemState::would_send;
          continue;
        }
        report({digest, size, BlobProgress::Stage::uploading, false});
        target.upload_blob(target_repository, digest, storage.blob_path(digest));
        item.state = ItemState::sent;
        report({digest, size, BlobProgress::Stage::uploaded, false});
      } catch (...) {
        std::lock_guard lock(progress_mutex);
        if (!failure) failure = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  auto const workers = std::clamp<std::size_t>(request.parallel, 1, std::max<std::size_t>(plan.blobs.size(), 1));
  std::vector<std::thread> threads;
  for (std::size_t worker_idx = 1; worker_idx < workers; ++worker_idx) threads.emplace_back(work);
  work();
  for (auto& thread : threads) thread.join();
  if (failure) std::rethrow_exception(failure);
  for (auto const& item : blob_items) {
    if (item.state == ItemState::sent) {
      ++result.blobs_sent;
      result.bytes_sent += item.size;
    } else if (item.state == ItemState::present) {
      ++result.blobs_present;
    }
  }
  result.items = std::move(blob_items);

  // Manifests, in plan order: children, then the top one under each tag, then referrers.
  for (auto const& planned : plan.manifests) {
    auto const& stored = planned.stored;
    if (planned.top) result.media_type = stored.media_type;
    std::vector<std::string> references;
    if (planned.top && !result.tags.empty())
      references = result.tags;
    else
      references.push_back(stored.digest.to_string());
    PromotedItem item{stored.digest, stored.bytes.size(), true, stored.media_type, ItemState::present};
    for (auto const& reference : references) {
      auto existing = target.head_manifest(target_repository, reference);
      if (existing && existing->digest == stored.digest) continue;
      if (request.dry_run) {
        item.state = ItemState::would_send;
        continue;
      }
      auto const reported = target.put_manifest(target_repository, reference, stored.media_type, stored.bytes);
      if (reported != stored.digest.to_string())
        throw Error("the target stored manifest " + stored.digest.to_string() + " under digest " + reported +
                    "\nHINT: the target rewrote the manifest; it cannot keep digests equal");
      item.state = ItemState::sent;
      result.bytes_sent += stored.bytes.size();
    }
    if (item.state == ItemState::sent) ++result.manifests_sent;
    result.items.push_back(std::move(item));
  }
  log->debug("promoted source={}@{} target={}/{} blobs_sent={} blobs_present={} manifests_sent={} bytes={}{}",
             request.repository, top->to_string(), target.url(), target_repository, result.blobs_sent,
             result.blobs_present, result.manifests_sent, result.bytes_sent, request.dry_run ? " dry_run=true" : "");
  return result;
}

}  // namespace berth::registry

#include "berth/registry/maintenance.hpp"

#include <fcntl.h>
#include <algorithm>
#include <map>
#include <set>

#include "file_io.hpp"

namespace berth::registry {
namespace {

// The content's digest, or nullopt if the file cannot be read.
std::optional<Digest> rehash(std::filesystem::path const& path, DigestAlgorithm algorithm, std::uint64_t& bytes) {
  try {
    File file(path, O_RDONLY);
    Hasher hasher(algorithm);
    std::vector<char> buffer(1 << 20);
    bytes = 0;
    while (auto got = file.read_at(buffer, bytes)) {
      hasher.update({buffer.data(), got});
      bytes += got;
    }
    return hasher.finish();
  } catch (Error const&) {
    return std::nullopt;
  }
}

}  // namespace

std::unordered_map<std::string, std::uint64_t> linked_blob_sizes(Storage const& storage,
                                                                 std::string const& name_space) {
  std::unordered_map<std::string, std::uint64_t> sizes;
  for (auto const& name : storage.repositories()) {
    if (!name.starts_with(name_space + "/")) continue;
    for (auto const& digest : storage.linked_blobs(name)) {
      auto key = digest.to_string();
      if (sizes.contains(key)) continue;
      std::error_code ec;
      auto size = std::filesystem::file_size(storage.blob_path(digest), ec);
      if (!ec) sizes.emplace(std::move(key), size);  // a dangling link holds no space
    }
  }
  return sizes;
}

std::vector<NamespaceUsage> namespace_usage(Storage const& storage) {
  std::vector<NamespaceUsage> usage;
  for (auto const& name : storage.config().namespaces) {
    NamespaceUsage entry;
    entry.name = name;
    for (auto const& [digest, bytes] : linked_blob_sizes(storage, name)) {
      entry.bytes += bytes;
      ++entry.blobs;
    }
    if (auto quota = storage.config().quotas.find(name); quota != storage.config().quotas.end())
      entry.quota = quota->second;
    usage.push_back(std::move(entry));
  }
  return usage;
}

std::vector<RepositorySummary> summarize(Storage const& storage, std::string const& prefix) {
  std::vector<RepositorySummary> summaries;
  for (auto const& name : storage.repositories()) {
    if (!prefix.empty() && name != prefix && !name.starts_with(prefix + "/")) continue;
    RepositorySummary summary;
    summary.name = name;
    summary.tags = storage.tags(name).value_or(std::vector<std::string>{});
    for (auto const& tag : summary.tags) {
      auto const digest = storage.resolve_tag(name, tag);
      summary.tag_details.push_back({tag, digest ? digest->to_string() : "?", storage.tag_pushed(name, tag)});
    }
    summary.manifests = storage.manifests(name).size();
    for (auto const& digest : storage.linked_blobs(name)) {
      std::error_code ec;
      auto size = std::filesystem::file_size(storage.blob_path(digest), ec);
      if (!ec) summary.bytes += size;
    }
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

namespace {

// Puts a damaged or missing blob right from `source`; true when it did. Notes the outcome.
using Repairer = std::function<bool(Digest const&, std::string const& damage, FsckReport&)>;

FsckReport check(Storage const& storage, FsckProgress const& progress, Repairer const& repair) {
  FsckReport report;
  std::set<Digest> intact;
  for (auto const& digest : storage.stored_blobs()) {
    std::uint64_t bytes = 0;
    auto actual = rehash(storage.blob_path(digest), digest.algorithm(), bytes);
    ++report.blobs_checked;
    report.bytes_checked += bytes;
    if (progress) progress(digest, bytes);
    std::string damage;
    if (!actual)
      damage = "cannot be read";
    else if (*actual != digest)
      damage = "is corrupt: its content hashes to " + actual->to_string();
    if (damage.empty() || (repair && repair(digest, damage, report)))
      intact.insert(digest);
    else
      report.problems.push_back("blob " + digest.to_string() + " " + damage);
  }

  for (auto const& repository : storage.repositories()) {
    ++report.repositories_checked;
    std::set<Digest> linked;
    for (auto const& digest : storage.linked_blobs(repository)) {
      linked.insert(digest);
      if (intact.contains(digest) || std::filesystem::exists(storage.blob_path(digest))) continue;
      if (repair && repair(digest, "is missing from the store", report))
        intact.insert(digest);
      else
        report.problems.push_back(repository + ": linked blob " + digest.to_string() + " is missing from the store");
    }
    // Which tags name each manifest, so a problem can say which images it breaks.
    std::map<Digest, std::vector<std::string>> tags_of;
    for (auto const& tag : storage.tags(repository).value_or(std::vector<std::string>{})) {
      auto digest = storage.resolve_tag(repository, tag);
      if (!digest)
        report.problems.push_back(repository + ":" + tag + ": tag file does not hold a digest");
      else if (!storage.has_manifest(repository, *digest))
        report.problems.push_back(repository + ":" + tag + ": tag points to manifest " + digest->to_string() +
                                  ", which is not in the repository");
      else
        tags_of[*digest].push_back(tag);
    }
    auto manifests = storage.manifests(repository);
    std::set<Digest> present(manifests.begin(), manifests.end());
    for (auto const& digest : manifests) {
      ++report.manifests_checked;
      auto where = repository + "@" + digest.to_string();
      if (auto tags = tags_of.find(digest); tags != tags_of.end()) {
        where = repository + ":" + tags->second.front();
        for (std::size_t tag_idx = 1; tag_idx < tags->second.size(); ++tag_idx) where += "," + tags->second[tag_idx];
      }
      auto stored = storage.get_manifest(repository, digest);
      if (!stored) {
        report.problems.push_back(where + ": manifest " + digest.to_string() + " is missing from the store");
        continue;
      }
      Manifest manifest;
      try {
        manifest = parse_manifest(stored->bytes, stored->media_type);
      } catch (ManifestError const& error) {
        report.problems.push_back(where + ": manifest " + digest.to_string() + " no longer parses: " + error.what());
        continue;
      }
      for (auto const& blob : manifest.required_blobs()) {
        if (!linked.contains(blob))
          report.problems.push_back(where + ": manifest refers to blob " + blob.to_string() +
                                    ", which is not linked into the repository");
        else if (!intact.contains(blob))
          report.problems.push_back(where + ": manifest refers to blob " + blob.to_string() +
                                    ", which is missing or corrupt");
      }
      for (auto const& child : manifest.manifests)
        if (!present.contains(child.digest))
          report.problems.push_back(where + ": index refers to manifest " + child.digest.to_string() +
                                    ", which is not in the repository");
    }
    for (auto const& [subject, referrer] : storage.referrer_entries(repository))
      if (!present.contains(referrer))
        report.problems.push_back(repository + ": referrer entry for " + subject.to_string() + " names manifest " +
                                  referrer.to_string() + ", which is not in the repository");
  }
  return report;
}

}  // namespace

FsckReport fsck(Storage const& storage, FsckProgress const& progress) {
  return check(storage, progress, {});
}

FsckReport fsck_and_repair(Storage& storage, RepairSource const& source, FsckProgress const& progress) {
  std::set<Digest> tried;  // a blob linked into several repositories is repaired (or not) once
  auto repair = [&](Digest const& digest, std::string const& damage, FsckReport& report) {
    if (!tried.insert(digest).second) return std::filesystem::exists(storage.blob_path(digest));
    auto copy = source(digest);
    if (!copy) return false;
    if (!storage.restore_blob(digest, *copy)) {
      report.problems.push_back("blob " + digest.to_string() + ": the copy at " + copy->string() +
                                " does not hash right either; not repaired");
      return false;
    }
    report.repaired.push_back("blob " + digest.to_string() + " " + damage + "; restored from " + copy->string());
    return true;
  };
  return check(storage, progress, repair);
}

}  // namespace berth::registry

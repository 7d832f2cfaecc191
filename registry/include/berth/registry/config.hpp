// Settings of the registry. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace berth::registry {

struct Config {
  std::filesystem::path root;  ///< registry storage, <primary volume>/registry
  /// Top-level namespaces repositories must live under (api/orders, site/web, model/llama).
  std::vector<std::string> namespaces{"api", "site", "model"};
  bool delete_enabled = true;                          ///< DELETE of manifests, tags and blobs
  std::uint64_t max_manifest_bytes = 4 * 1024 * 1024;  ///< larger manifest PUTs get 413
  std::chrono::hours upload_expiry{24};                ///< unfinished uploads older than this are removed
  /// Bytes of blobs each namespace may hold (each blob counted once per namespace); namespaces
  /// not listed are unlimited.
  std::map<std::string, std::uint64_t> quotas;
  struct Gc {
    std::chrono::seconds interval{std::chrono::hours(24)};  ///< between scheduled runs in `berth serve`; 0: none
    std::chrono::seconds grace_period{std::chrono::hours(1)};
    bool delete_untagged = false;
  } gc;
};

}  // namespace berth::registry

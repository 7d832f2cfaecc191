#include "registry_commands.hpp"

#include <cstdio>
#include <filesystem>

#include "berth/registry/maintenance.hpp"
#include "human.hpp"

namespace berth::appliance {
namespace {

// The registry is only read here; a missing storage directory means an empty registry, not an
// error, and is not created.
registry::Config readable(Config const& config) {
  if (!std::filesystem::is_directory(config.registry.root))
    throw Error("no registry at " + config.registry.root.string() +
                "\nHINT: check volumes.primary (or --config); berth serve creates it on first start");
  return config.registry;
}

}  // namespace

int registry_ls(Config const& config, std::string const& prefix, std::ostream& out) {
  registry::Storage storage(readable(config));
  auto summaries = registry::summarize(storage, prefix);
  std::size_t width = 10;
  for (auto const& summary : summaries) width = std::max(width, summary.name.size());
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %9s  %10s  %s\n", static_cast<int>(width), "REPOSITORY", "MANIFESTS", "SIZE",
                "TAGS");
  out << line;
  std::uint64_t total = 0;
  for (auto const& summary : summaries) {
    std::string tags;
    for (auto const& tag : summary.tags) tags += (tags.empty() ? "" : " ") + tag;
    std::snprintf(line, sizeof line, "%-*s  %9zu  %10s  ", static_cast<int>(width), summary.name.c_str(),
                  summary.manifests, human_size(summary.bytes).c_str());
    out << line << (tags.empty() ? "-" : tags) << "\n";
    total += summary.bytes;
  }
  out << summaries.size() << " repositories, " << human_size(total)
      << " (blobs shared between repositories count in each)\n";
  return 0;
}

int registry_fsck(Config const& config, std::ostream& out) {
  registry::Storage storage(readable(config));
  auto report = registry::fsck(storage);
  for (auto const& problem : report.problems) out << "DAMAGED " << problem << "\n";
  out << "checked " << report.blobs_checked << " blobs (" << human_size(report.bytes_checked) << "), "
      << report.manifests_checked << " manifests in " << report.repositories_checked
      << " repositories: " << (report.clean() ? "no problems" : std::to_string(report.problems.size()) + " problems")
      << "\n";
  return report.clean() ? 0 : 1;
}

}  // namespace berth::appliance

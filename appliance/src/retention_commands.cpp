// `berth registry retention`: the plan from the registry library, the promotion audit log as
// the set of protected images, and the operator's view of both.
#include "retention_commands.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "promote_commands.hpp"

namespace berth::appliance {
namespace {

std::string plural(std::size_t count, std::string const& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::string kind_of(registry::RetentionItem const& item) {
  return item.tag ? "tag" : "manifest";
}

void print(std::ostream& out, std::string const& verb, registry::RetentionItem const& item) {
  out << verb << " " << kind_of(item) << " " << item.name() << ": " << item.reason << " [rule " << item.rule << "]\n";
}

}  // namespace

registry::ProtectedImages promoted_images(Config const& config) {
  registry::ProtectedImages images;
  std::ifstream in(promotion_log_file(config));
  for (std::string line; std::getline(in, line);) {
    auto const record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object() || record.value("result", std::string()) != "ok") continue;
    auto const source = record.value("source", std::string());
    auto const digest = registry::Digest::parse(record.value("digest", std::string()));
    // REPOSITORY@DIGEST or REPOSITORY:TAG; repository names hold no ':' or '@'.
    auto const end = source.find_first_of("@:");
    if (!digest || end == std::string::npos || end == 0) continue;
    images.emplace(source.substr(0, end), *digest);
  }
  return images;
}

int registry_retention(Config const& config, RetentionCommandOptions const& options, std::ostream& out) {
  auto const& rules = config.registry.retention;
  if (rules.empty()) {
    out << "no registry.retention rules in "
        << (config.source.empty() ? std::string("the configuration") : config.source.string())
        << ": nothing to do\nHINT: add rules like \"retention: [{repositories: api/*, keep_last: 10, "
           "untagged_after: 7d}]\" under registry:\n";
    return 0;
  }
  if (!std::filesystem::is_directory(config.registry.root))
    throw Error("no registry at " + config.registry.root.string() +
                "\nHINT: check volumes.primary (or --config); berth serve creates it on first start");
  registry::Storage storage(config.registry);
  auto const plan = registry::plan_retention(storage, rules, config.registry.immutable_tags, promoted_images(config),
                                             std::chrono::system_clock::now(),
                                             {.repositories = options.repositories, .explain_kept = options.verbose});
  if (options.verbose)
    for (auto const& item : plan.kept) print(out, "keep", item);

  auto const in_repositories = " in " + plural(plan.repositories_checked, "repository") + " with a rule";
  if (options.dry_run) {
    for (auto const& item : plan.tags_to_delete) print(out, "would delete", item);
    for (auto const& item : plan.manifests_to_delete) print(out, "would delete", item);
    out << "dry run: would delete " << plural(plan.tags_to_delete.size(), "tag") << " and "
        << plural(plan.manifests_to_delete.size(), "manifest") << in_repositories << "; nothing was changed\n";
    return 0;
  }
  auto const report = registry::apply_retention(storage, plan);
  for (auto const& item : report.deleted) print(out, "deleted", item);
  for (auto const& skipped : report.skipped) out << "skipped " << skipped << "\n";
  out << "deleted " << plural(report.tags_deleted, "tag") << " and " << plural(report.manifests_deleted, "manifest")
      << in_repositories;
  if (report.manifests_deleted > 0) out << "; run `berth registry gc` to reclaim the space of their blobs";
  out << "\n";
  return 0;
}

}  // namespace berth::appliance

// `berth registry retention`: apply (or preview) registry.retention, protecting every image the
// promotion audit log says was promoted.
#pragma once

#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"
#include "berth/registry/retention.hpp"

namespace berth::appliance {

struct RetentionCommandOptions {
  std::string repositories;  ///< REPOSITORY-GLOB: only these; empty: all
  bool dry_run = false;
  bool verbose = false;  ///< also list what is kept, and why
};

/// One line per tag and manifest that would go (--dry-run) or went, with its reason, then a
/// summary. Safe while `berth serve` runs. Returns the exit code; throws berth::Error when the
/// registry cannot be read or changed.
int registry_retention(Config const& config, RetentionCommandOptions const& options, std::ostream& out);

/// (source repository, digest) of every successful promotion in the audit log; an absent log
/// is empty, unreadable lines (a torn last line) are skipped.
registry::ProtectedImages promoted_images(Config const& config);

}  // namespace berth::appliance

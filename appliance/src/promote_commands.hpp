// `berth promote`: copy an image from the local registry to AWS ECR (--to ENV) or any OCI
// registry (--to-registry URL), and the audit trail of every promotion (--history).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

struct PromoteOptions {
  std::string source;       ///< REPO:TAG or REPO@DIGEST
  std::string environment;  ///< --to ENV (promotion.targets.ENV)
  std::string registry;     ///< --to-registry URL, e.g. https://host:5000 or https://host/prefix
  std::string creds;        ///< --creds USER:PASS for --to-registry (or BERTH_PROMOTE_CREDS)
  std::string ca_file;      ///< --ca-file: extra CA for --to-registry
  std::vector<std::string> tags;
  bool with_referrers = false;
  bool dry_run = false;
  unsigned parallel = 4;
};

/// Runs one promotion and appends it to the audit log (dry runs excepted). Progress per blob on
/// stderr when it is a terminal; on stdout a summary (one JSON line when stdout is not a
/// terminal). Returns the exit code; throws berth::Error on failure (already recorded).
int promote(Config const& config, PromoteOptions const& options, std::ostream& out);

/// `berth promote --history`: the audit log, oldest first. Returns the exit code.
int promote_history(Config const& config, bool json, std::ostream& out);

/// The audit log file: <primary>/promotions/history.jsonl.
std::filesystem::path promotion_log_file(Config const& config);

}  // namespace berth::appliance

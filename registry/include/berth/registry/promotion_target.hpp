// Settings of one promotion target (promotion.targets.ENV in berth.yaml). Plain values;
// `appliance` fills them from berth.yaml. Kept apart from config.hpp, which the whole registry
// includes, because only the promote command needs it.
#pragma once

#include <filesystem>
#include <string>

namespace berth::registry {

/// promotion.targets.ENV: an AWS ECR registry that `berth promote --to ENV` copies images to.
struct PromotionTarget {
  std::string name;                ///< ENV, e.g. "prod"
  std::string registry;            ///< ACCOUNT.dkr.ecr.REGION.amazonaws.com
  std::string region;              ///< e.g. "eu-west-1"; must agree with `registry`
  std::string repository_prefix;   ///< put before the local name: "prod/" + "api/app"
  bool create_repository = false;  ///< CreateRepository when the ECR repository is missing
  std::string api_endpoint;        ///< ECR API URL; empty: https://api.ecr.REGION.amazonaws.com
  std::filesystem::path ca_file;   ///< extra CA certificates (PEM) to trust; empty: system store only
};

}  // namespace berth::registry

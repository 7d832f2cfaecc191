// What the `berth backup` integration tests share: running berth with a config, pushing a test
// image, and the snapshot ids `berth backup list` prints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/process.hpp"

namespace berth::testing {

/// `berth --config CONFIG ARGS...`.
inline RunResult berth_with(std::filesystem::path const& config, std::vector<std::string> const& args) {
  std::vector<std::string> argv = {BERTH_BINARY, "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

/// The snapshot ids `berth backup list` prints, oldest first.
inline std::vector<std::string> snapshot_ids(std::string const& list_output) {
  std::vector<std::string> ids;
  std::regex const id(R"((^|\n)(\d{8}T\d{6}Z) )");
  for (std::sregex_iterator it(list_output.begin(), list_output.end(), id), end; it != end; ++it)
    ids.push_back((*it)[2]);
  return ids;
}

/// skopeo copy of the layout's tag v1 to 127.0.0.1:PORT/TARGET over plain HTTP.
inline RunResult push(std::uint16_t port, std::filesystem::path const& layout, std::string const& target) {
  return skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout.string() + ":v1",
                 "docker://127.0.0.1:" + std::to_string(port) + "/" + target});
}

}  // namespace berth::testing

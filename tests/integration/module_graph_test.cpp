// The module dependency graph points downwards (docs/ARCHITECTURE.md): every `#include
// "berth/<module>/..."` in a module's sources must name the module itself or one it may use.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

// Which modules each module may include. Nothing may include appliance.
std::map<std::string, std::set<std::string>> const allowed = {
    {"core", {}},
    {"proxy", {"core"}},
    {"registry", {"core", "proxy"}},
    {"postgres", {"core", "proxy"}},
    {"flyway", {"core", "postgres"}},
    {"backup", {"core", "proxy", "registry", "postgres"}},
    {"appliance", {"core", "proxy", "registry", "postgres", "flyway", "backup"}},
};

TEST(ModuleGraph, IncludesPointDownwardsOnly) {
  std::regex include_line(R"re(#\s*include\s*"berth/([a-z_]+)/)re");
  int files_checked = 0;
  for (auto const& [module, may_use] : allowed) {
    fs::path root = fs::path(BERTH_SOURCE_DIR) / module;
    ASSERT_TRUE(fs::is_directory(root)) << root;
    for (auto const& entry : fs::recursive_directory_iterator(root)) {
      auto extension = entry.path().extension();
      if (!entry.is_regular_file() || (extension != ".cpp" && extension != ".hpp" && extension != ".in")) continue;
      if (entry.path().string().find("/tests/") != std::string::npos) continue;  // tests may use helpers
      ++files_checked;
      std::ifstream in(entry.path());
      int line_number = 0;
      for (std::string line; std::getline(in, line);) {
        ++line_number;
        std::smatch match;
        if (!std::regex_search(line, match, include_line)) continue;
        auto used = match[1].str();
        EXPECT_TRUE(used == module || may_use.contains(used))
            << entry.path().string() << ":" << line_number << ": module " << module << " must not include berth/"
            << used;
      }
    }
  }
  EXPECT_GT(files_checked, 10);
}

}  // namespace

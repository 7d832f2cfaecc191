#include "berth/testing/temp_dir.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace berth::testing {

TempDir::TempDir() {
  auto base = std::filesystem::temp_directory_path() / "berth-test-XXXXXX";
  std::string pattern = base.string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::write(std::string const& relative, std::string const& text) const {
  auto target = path_ / relative;
  std::filesystem::create_directories(target.parent_path());
  std::ofstream out(target, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + target.string());
  return target;
}

std::string read_file(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace berth::testing

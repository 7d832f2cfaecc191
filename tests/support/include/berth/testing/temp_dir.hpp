// A fresh directory under $TMPDIR for one test, removed with everything in it afterwards.
#pragma once

#include <filesystem>
#include <string>

namespace berth::testing {

class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(TempDir const&) = delete;
  TempDir& operator=(TempDir const&) = delete;
  std::filesystem::path const& path() const { return path_; }
  /// Writes `text` to path()/relative (creating parent directories) and returns the full path.
  std::filesystem::path write(std::string const& relative, std::string const& text) const;

private:
  std::filesystem::path path_;
};

/// The whole content of a file ("" when it cannot be read).
std::string read_file(std::filesystem::path const& path);

}  // namespace berth::testing

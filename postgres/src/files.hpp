// Small file helpers of the postgres module: secrets are written durably and atomically, and read
// back without their trailing newline.
#pragma once

#include <filesystem>
#include <string>

#include "os_user.hpp"

namespace berth::postgres::detail {

/// The file's content without trailing whitespace. Throws Error naming the file.
std::string read_trimmed(std::filesystem::path const& file);

/// fsync of a file or directory; errors ignored (best effort after a rename).
void fsync_path(std::filesystem::path const& path);

/// Writes `text` to `file` with mode 0600, durably and atomically (temp file, fsync, rename),
/// owned by `owner` when given. Throws Error naming the file.
void write_private_file(std::filesystem::path const& file, std::string const& text, OsUser const* owner = nullptr);

}  // namespace berth::postgres::detail

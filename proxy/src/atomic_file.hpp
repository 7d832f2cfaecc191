// Reading and the atomic rewrite the front door's account files share (htpasswd, groups, robots).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace berth::proxy {

/// Replaces `file` with `text` atomically: a temporary file in the same directory, renamed over
/// it. With `durable`, the data and the directory are fsync'ed too. A new file gets mode 0640
/// and its directory's group; a replaced file keeps its mode, owner and group. Throws berth::Error.
/// The file's lines without line ends (CRLF too); a missing file has none. Throws berth::Error
/// naming the file when it cannot be read.
std::vector<std::string> read_lines(std::filesystem::path const& file);

void write_file_atomically(std::filesystem::path const& file, std::string const& text, bool durable = true);

}  // namespace berth::proxy

// The parameters the server is started with: berth's defaults for a small shared server, the
// operator's `postgres.settings`, and the ones berth manages itself (listen addresses, WAL
// archiving). Passed as `-c name=value` so they always win over postgresql.conf and show in
// pg_settings with source "command line".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "berth/postgres/config.hpp"
#include "berth/postgres/installation.hpp"

namespace berth::postgres::detail {

/// Throws Error naming every entry of `settings` the installed server does not know (asks
/// `postgres --describe-config`), that berth manages itself, or whose value holds a line break.
/// Custom parameters of extensions ("pg_stat_statements.max") are accepted unchecked.
void check_settings(Installation const& installation, std::map<std::string, std::string> const& settings);

/// `-c name=value` pairs (flattened) for `postgres`. `memory_bytes` sizes shared_buffers and
/// effective_cache_size.
std::vector<std::string> server_arguments(Config const& config, std::uint64_t memory_bytes);

/// The client authentication rules berth writes to <data_dir>/berth_hba.conf at every start:
/// scram-sha-256 for everyone, over the Unix socket and loopback, and from the directly
/// connected networks (samenet) only when a listen address is not loopback. Replication
/// (pg_basebackup) is allowed over the same paths.
std::string hba_rules(Config const& config);

/// Where hba_rules() is written: berth owns it, so postgresql.conf's own pg_hba.conf stays unused.
std::filesystem::path hba_file(Config const& config);

/// Total RAM of this machine in bytes (sysconf).
std::uint64_t physical_memory();

/// `text` as one word for /bin/sh: single-quoted, with ' written '\''.
std::string shell_quote(std::string const& text);

}  // namespace berth::postgres::detail

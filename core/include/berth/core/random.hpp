// Unguessable identifiers and secrets from the kernel's CSPRNG (upload ids, passwords).
#pragma once

#include <cstddef>
#include <string>

namespace berth {

/// `bytes` random bytes as 2*bytes lowercase hex characters: safe in file names, URLs and
/// connection strings without quoting. Throws berth::Error if the kernel cannot supply them.
std::string random_hex(std::size_t bytes);

}  // namespace berth

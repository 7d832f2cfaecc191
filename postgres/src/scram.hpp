// SCRAM-SHA-256 password verifiers (RFC 5802/7677, as PostgreSQL stores them in pg_authid), so
// that CREATE ROLE carries a verifier and the password itself never reaches the server's logs.
#pragma once

#include <string>

namespace berth::postgres::detail {

/// "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>" for `password` with a random salt.
/// Throws Error when OpenSSL fails.
std::string scram_verifier(std::string const& password);

}  // namespace berth::postgres::detail

// The AWS credential chain for an on-prem server, without an SDK: environment variables, then
// the profile (AWS_PROFILE, else "default") from the shared credentials file and the config
// file, including credential_process. No EC2/ECS metadata, no SSO; role_arn (AssumeRole via STS)
// is recognised but not supported yet. The inputs (environment, home directory) are passed in,
// so the chain is testable without touching the real process environment.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "berth/core/error.hpp"
#include "berth/registry/sigv4.hpp"

namespace berth::registry::aws {

/// No usable credentials, or a broken credentials/config file or credential_process.
class CredentialsError : public Error {
public:
  using Error::Error;
};

/// What the chain reads: environment variables and the home directory (for ~/.aws).
struct Environment {
  std::map<std::string, std::string> variables;
  std::filesystem::path home;

  /// The current process environment and $HOME. Thread-safe as long as nobody calls setenv.
  static Environment current();
};

struct ResolvedCredentials {
  sigv4::Credentials credentials;
  /// When temporary credentials run out (credential_process with Expiration); refresh before.
  std::optional<std::chrono::system_clock::time_point> expiration;
  /// Where they came from, for logs and errors, e.g. "profile 'ci' in /root/.aws/credentials".
  /// Never contains a secret.
  std::string source;
};

/// Resolves credentials in the SDK order without instance metadata: AWS_ACCESS_KEY_ID +
/// AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); then the profile's static keys in the
/// credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials); then in the config
/// file (AWS_CONFIG_FILE, else ~/.aws/config) the profile's static keys or credential_process
/// (run without a shell, waited for at most `process_timeout`). Throws CredentialsError naming
/// the file and line or profile on anything unusable. Blocks while credential_process runs; do
/// not call it on an event-loop thread. Thread-safe.
ResolvedCredentials resolve_credentials(Environment const& environment,
                                        std::chrono::seconds process_timeout = std::chrono::seconds(60));

/// AWS_REGION, then AWS_DEFAULT_REGION, then the profile's `region` in the config file; nullopt
/// when none is set. Throws CredentialsError on an unreadable or malformed config file.
std::optional<std::string> resolve_region(Environment const& environment);

/// Parses credential_process output (JSON, Version 1). Throws CredentialsError naming
/// `command_for_errors` (the output itself is never quoted: it holds secrets).
ResolvedCredentials parse_process_output(std::string const& output, std::string const& command_for_errors);

/// Splits a credential_process command line into argv the way a POSIX shell would for plain
/// words, '...' and "..." quotes and backslash escapes (no variables, globs or pipes).
/// Throws CredentialsError on an unterminated quote.
std::vector<std::string> split_command_line(std::string const& command);

}  // namespace berth::registry::aws

// The AWS credential chain for an on-prem server, without an SDK: environment variables, then
// the profile (AWS_PROFILE, else "default") from the shared credentials file and the config
// file: static keys, credential_process, or role_arn (AssumeRole through STS, as the AWS CLI
// does it: source_profile chains, possibly through other role profiles, or
// credential_source = Environment). No EC2/ECS metadata, no SSO, no MFA prompts. The inputs
// (environment, home directory) are passed in, so the chain is testable without touching the
// real process environment; plan_credentials() shows what would be done without doing it.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/registry/sigv4.hpp"
#include "berth/registry/sts.hpp"

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
  /// When temporary credentials run out (credential_process with Expiration, AssumeRole);
  /// refresh before.
  std::optional<std::chrono::system_clock::time_point> expiration;
  /// Where they came from, for logs and errors, e.g. "profile 'ci' in /root/.aws/credentials".
  /// Never contains a secret.
  std::string source;
};

struct ResolveOptions {
  std::chrono::seconds process_timeout{60};  ///< longest wait for a credential_process
  /// Region of the STS endpoint when neither AWS_REGION, AWS_DEFAULT_REGION nor the profile's
  /// `region` names one (berth passes the promotion target's); none: the global endpoint.
  std::optional<std::string> default_region{};
  /// PEM file of extra CA certificates trusted for STS besides the system store (stand-ins).
  std::optional<std::filesystem::path> extra_ca_file{};
};

/// One AssumeRole call of a chain: the role profile and what is sent.
struct RoleStep {
  std::string profile;
  std::string location;  ///< "profile 'NAME' in FILE line N" (the role_arn line), for messages
  sts::AssumeRoleParameters parameters;
};

/// What resolve_credentials() will do: start from base credentials, then assume each role in
/// `roles` in order, each with the credentials the previous step gave. Holds secrets (static
/// keys): never log it.
struct CredentialPlan {
  enum class Base { environment, static_keys, process };
  Base base = Base::environment;
  sigv4::Credentials keys{};      ///< for environment and static_keys
  std::string process_command{};  ///< for process: the credential_process line
  std::string source{};           ///< where the base credentials come from (no secret)
  std::vector<RoleStep> roles{};  ///< empty: the base credentials are the result
  sts::Endpoint sts_endpoint{};   ///< where the roles are assumed (set when `roles` is not empty)
};

/// Reads the chain's configuration without running anything: AWS_ACCESS_KEY_ID +
/// AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); else the profile (AWS_PROFILE, else "default")
/// merged from the credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; its
/// values win) and the config file (AWS_CONFIG_FILE, else ~/.aws/config). A profile with
/// role_arn is assumed (with source_profile, which may itself be a role profile, a static-keys
/// or a credential_process profile, or credential_source = Environment; external_id,
/// role_session_name (default "berth-promote-<unix time>"), duration_seconds 900..43200);
/// otherwise its static keys, otherwise its credential_process. A role profile named by
/// AWS_PROFILE is assumed even when AWS_ACCESS_KEY_ID is set (as the CLI's --profile does),
/// so that credential_source = Environment works. The STS endpoint is AWS_ENDPOINT_URL_STS when
/// set (https only), else the regional one for AWS_REGION, AWS_DEFAULT_REGION, the profile's
/// region or `options.default_region` (sts_regional_endpoints / AWS_STS_REGIONAL_ENDPOINTS =
/// legacy selects the global one for the legacy regions, as does no region at all). Throws
/// CredentialsError naming the file and line (or the profiles of a source_profile loop) on
/// anything unusable, and for mfa_serial (no one is there to type a code). Thread-safe.
CredentialPlan plan_credentials(Environment const& environment, ResolveOptions const& options = {});

/// Carries out plan_credentials(): runs credential_process (without a shell, waited for at most
/// `options.process_timeout`) and calls STS AssumeRole over HTTPS for each role (SigV4,
/// retried on throttling and 5xx). Throws CredentialsError: STS refusals say which role and
/// which source identity, with a HINT (AccessDenied, ExpiredToken, unknown key, wrong secret,
/// clock skew, duration over the role's maximum); http::TransportError when STS is
/// unreachable. Blocks (process, network); do not call it on an event-loop thread. Thread-safe.
ResolvedCredentials resolve_credentials(Environment const& environment, ResolveOptions const& options = {});

/// AWS_REGION, then AWS_DEFAULT_REGION, then the profile's `region` in the config file; nullopt
/// when none is set. Throws CredentialsError on an unreadable or malformed config file.
std::optional<std::string> resolve_region(Environment const& environment);

/// Parses credential_process output (JSON, Version 1). Throws CredentialsError naming
/// `command_for_errors` (the output itself is never quoted: it holds secrets).
ResolvedCredentials parse_process_output(std::string const& output, std::string const& command_for_errors);

/// Parses an RFC 3339 time ("2026-11-27T17:00:00Z", fraction and +HH:MM offsets allowed), as
/// credential_process and STS give an Expiration; nullopt when it is not one.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

/// Splits a credential_process command line into argv the way a POSIX shell would for plain
/// words, '...' and "..." quotes and backslash escapes (no variables, globs or pipes).
/// Throws CredentialsError on an unterminated quote.
std::vector<std::string> split_command_line(std::string const& command);

}  // namespace berth::registry::aws

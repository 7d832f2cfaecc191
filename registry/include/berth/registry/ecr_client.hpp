// The ECR control plane over HTTPS: GetAuthorizationToken (cached until shortly before it
// expires), DescribeRepositories and CreateRepository, each signed with SigV4. What it hands
// out is the registry login for RegistryClient: user "AWS", the token's password.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "berth/registry/aws_credentials.hpp"
#include "berth/registry/ecr.hpp"
#include "berth/registry/http_client.hpp"

namespace berth::registry::ecr {

/// The ECR API refused a call; `type` is the AWS error type (e.g. "AccessDeniedException").
class ApiCallError : public Error {
public:
  ApiCallError(std::string const& message, std::string type) : Error(message), type_(std::move(type)) {}
  std::string const& type() const { return type_; }

private:
  std::string type_;
};

struct Target {
  std::string registry_host;  ///< "<account>.dkr.ecr.<region>.amazonaws.com" (or a stand-in's host:port)
  std::string region;         ///< must agree with registry_host when that is an ECR host
  /// Where the ECR API is, e.g. "https://127.0.0.1:8443" for a stand-in. Empty: the real one,
  /// https://api.ecr.<region>.amazonaws.com.
  std::string api_endpoint{};
  std::optional<std::filesystem::path> ca_file{};  ///< extra CA for both endpoints (stand-ins)
  bool create_repository = false;                  ///< CreateRepository when missing (else an error)
};

/// Checks `target`: the region is plausible and agrees with an ECR registry host. Throws
/// berth::Error saying what disagrees.
void validate_target(Target const& target);

using CredentialsSource = std::function<aws::ResolvedCredentials()>;

/// One ECR account/region. Thread-safe; calls block.
class Client {
public:
  /// `credentials` is asked at the first call, again `refresh_before` their expiration when
  /// they are temporary (credential_process, AssumeRole), and when AWS says they expired.
  Client(Target target, CredentialsSource credentials,
         std::chrono::system_clock::duration refresh_before = std::chrono::minutes(5));
  ~Client();

  /// The registry login, fetched with GetAuthorizationToken and reused until `refresh_before`
  /// its expiry. Throws ApiCallError (clear messages for expired or wrong credentials and
  /// clock skew) or http::TransportError.
  AuthorizationToken authorization_token();

  /// Makes sure `repository` exists: DescribeRepositories, then CreateRepository when allowed.
  /// Returns true when it created it. Throws ApiCallError (RepositoryNotFoundException with a
  /// HINT when creating is not allowed).
  bool ensure_repository(std::string const& repository);

  /// "https://<registry_host>" (the registry, not the API).
  std::string registry_url() const;
  http::ClientConfig const& http_config() const;

  /// GetAuthorizationToken calls made so far (tests of the cache). Thread-safe.
  int token_requests() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace berth::registry::ecr

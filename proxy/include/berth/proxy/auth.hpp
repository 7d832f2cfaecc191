// Authentication and authorization at the front door, the way Docker clients expect it: an
// unauthenticated request gets 401 with a Bearer challenge naming the token endpoint; GET /token
// with Basic credentials answers an ES256 token whose `access` claim holds what the grants allow;
// the guarded routes accept that token, or Basic credentials directly. Which repository and action
// a request needs is the route owner's business (a RequiredAccessRule handed in by the composer).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "berth/proxy/access.hpp"
#include "berth/proxy/htpasswd.hpp"
#include "berth/proxy/http.hpp"
#include "berth/proxy/jwt.hpp"
#include "berth/proxy/robots.hpp"
#include "berth/proxy/router.hpp"

namespace berth::proxy {

struct AuthConfig {
  std::string service = "berth";  ///< the token audience and the challenge's service
  std::string issuer = "berth";
  std::chrono::seconds token_lifetime{300};
  std::string scheme = "http";  ///< of the token realm URL: "https" behind TLS
};

/// What one request needs: `action` on `repository` (empty for Action::catalog).
struct RequiredAccess {
  std::string repository;
  Action action = Action::pull;
};

/// Maps a request to what it needs; nullopt means only "signed in" (e.g. GET /v2/).
using RequiredAccessRule = std::function<std::optional<RequiredAccess>(Request const&)>;

class Authenticator {
public:
  /// `robots` (may be null: no robot accounts) signs in "robot+NAME" logins; everyone else is
  /// checked against `passwords`.
  Authenticator(AuthConfig config, std::shared_ptr<PasswordChecker const> passwords, AccessPolicy policy, TokenKey key,
                std::shared_ptr<RobotChecker const> robots = nullptr);

  /// Lets `request` through, or throws HttpError: 401 UNAUTHORIZED with a Bearer challenge when
  /// credentials are missing, wrong, or a token lacks the scope the user could have, or was
  /// issued to a robot since revoked, expired, deleted or rotated; 403 DENIED
  /// naming the action and repository when the grants do not allow it. Thread-safe.
  void authorize(Request const& request, std::optional<RequiredAccess> const& required) const;

  /// The token endpoint (GET /token?service=...&scope=...&scope=..., Basic credentials or none
  /// for an anonymous token). Throws HttpError 401 for wrong credentials, 400 for a malformed
  /// scope or another service. Thread-safe.
  Response issue_token(Request const& request) const;

private:
  [[noreturn]] void challenge(Request const& request, std::optional<RequiredAccess> const& required,
                              std::string const& message) const;
  /// nullopt when `user` signs in with `password`; else what to tell the client (logged here).
  std::optional<std::string> refusal(std::string const& user, std::string const& password,
                                     Request const& request) const;
  bool allows(std::optional<std::string> const& user, std::string_view repository, Action action) const;
  AuthConfig config_;
  std::shared_ptr<PasswordChecker const> passwords_;
  AccessPolicy policy_;
  TokenKey key_;
  std::shared_ptr<RobotChecker const> robots_;
};

/// Registers GET /token and guards every route under `prefix` with `authenticator`, asking
/// `rule` what each request needs.
void add_authentication(Router& router, std::shared_ptr<Authenticator const> authenticator, std::string prefix,
                        RequiredAccessRule rule);

}  // namespace berth::proxy

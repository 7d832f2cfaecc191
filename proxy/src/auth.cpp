// The Docker token flow and the guard in front of the registry routes. Passwords and tokens
// never reach a log line; only user names, scopes and outcomes do.
#include "berth/proxy/auth.hpp"

#include <algorithm>
#include <array>
#include <ctime>

#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "request_notes.hpp"

namespace berth::proxy {
namespace {

using Clock = std::chrono::system_clock;

struct Credentials {
  std::string user;
  std::string password;
};

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string decode_query_component(std::string_view text) {
  std::string out;
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] == '+') {
      out += ' ';
    } else if (text[at] == '%' && at + 2 < text.size() && hex_value(text[at + 1]) >= 0 &&
               hex_value(text[at + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[at + 1]) * 16 + hex_value(text[at + 2]));
      at += 2;
    } else {
      out += text[at];
    }
  }
  return out;
}

// Every value of a repeated query parameter (Request::query_param gives only the first); a
// scope value may itself hold several scopes separated by spaces (RFC 6749 §3.3).
std::vector<std::string> scopes_of(Request const& request) {
  std::vector<std::string> scopes;
  std::string_view rest = request.query;
  while (!rest.empty()) {
    auto const amp = rest.find('&');
    auto const pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto const eq = pair.find('=');
    if (eq == std::string_view::npos || decode_query_component(pair.substr(0, eq)) != "scope") continue;
    auto const value = decode_query_component(pair.substr(eq + 1));
    std::size_t start = 0;
    while (start < value.size()) {
      auto end = value.find(' ', start);
      if (end == std::string::npos) end = value.size();
      if (end > start) scopes.push_back(value.substr(start, end - start));
      start = end + 1;
    }
  }
  return scopes;
}

// Authentication schemes compare case-insensitively (RFC 9110 §11.1).
bool starts_with_scheme(std::string_view header, std::string_view scheme) {
  return header.size() > scheme.size() && std::equal(scheme.begin(), scheme.end(), header.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

std::optional<Credentials> basic_credentials(std::string_view header) {
  if (!starts_with_scheme(header, "Basic ")) return std::nullopt;
  auto encoded = std::string(header.substr(6));
  std::replace(encoded.begin(), encoded.end(), '+', '-');
  std::replace(encoded.begin(), encoded.end(), '/', '_');
  while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
  auto const decoded = base64url_decode(encoded);
  if (!decoded) return std::nullopt;
  auto const colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::optional<std::string_view> bearer_token(std::string_view header) {
  if (!starts_with_scheme(header, "Bearer ")) return std::nullopt;
  return header.substr(7);
}

// The actions a client asks for in a challenge's scope: pushing needs pull too (clients check
// for existing blobs before uploading them).
std::string scope_of(RequiredAccess const& required) {
  if (required.action == Action::catalog) return "registry:catalog:*";
  auto const actions =
      required.action == Action::push ? std::string("pull,push") : std::string(to_string(required.action));
  return "repository:" + required.repository + ":" + actions;
}

bool covers(TokenClaims const& claims, RequiredAccess const& required) {
  return std::any_of(claims.access.begin(), claims.access.end(), [&](ResourceAccess const& entry) {
    if (required.action == Action::catalog)
      return entry.type == "registry" && entry.name == "catalog" &&
             std::find(entry.actions.begin(), entry.actions.end(), "*") != entry.actions.end();
    return entry.type == "repository" && entry.name == required.repository &&
           std::find(entry.actions.begin(), entry.actions.end(), to_string(required.action)) != entry.actions.end();
  });
}

// A Host header goes into a quoted header value; anything that could break out of the quotes
// is replaced by a neutral name.
std::string safe_host(Request const& request) {
  auto const host = request.headers.get("Host").value_or("localhost");
  bool const safe = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' || ch == '[' ||
           ch == ']';
  });
  return safe ? std::string(host) : std::string("localhost");
}

std::string random_id() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) throw Error("cannot make a random token id");
  return base64url_encode(std::string_view(reinterpret_cast<char const*>(bytes.data()), bytes.size()));
}

std::string rfc3339(Clock::time_point time) {
  auto const seconds = Clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

HttpError unauthorized(std::string const& message) {
  HttpError error(401, "UNAUTHORIZED", message);
  error.headers.set("Docker-Distribution-API-Version", "registry/2.0");
  return error;
}

}  // namespace

Authenticator::Authenticator(AuthConfig config, std::shared_ptr<PasswordChecker const> passwords, AccessPolicy policy,
                             TokenKey key, std::shared_ptr<RobotChecker const> robots)
    : config_(std::move(config)),
      passwords_(std::move(passwords)),
      policy_(std::move(policy)),
      key_(std::move(key)),
      robots_(std::move(robots)) {}

std::optional<std::string> Authenticator::refusal(std::string const& user, std::string const& password,
                                                  Request const& request) const {
  auto const robot = robot_name_of(user);
  if (!robot) {
    if (passwords_->check(user, password)) return std::nullopt;
    logger("auth")->info("sign-in refused user={} remote={}", user, request.remote_address);
    return "wrong user name or password";
  }
  // Robots never reach the bcrypt check: a 256-bit secret needs no slow hash.
  auto const outcome = robots_ ? robots_->check(*robot, password) : RobotCheck::wrong_secret;
  switch (outcome) {
    case RobotCheck::ok: return std::nullopt;
    case RobotCheck::wrong_secret:
      logger("auth")->info("sign-in refused user={} remote={}", user, request.remote_address);
      return "wrong user name or password";
    // Only a client holding the right secret learns the robot's state.
    case RobotCheck::expired:
      logger("auth")->info("sign-in refused user={} reason=expired remote={}", user, request.remote_address);
      return "robot " + *robot + " has expired; ask the registry's administrator to rotate it";
    case RobotCheck::revoked:
      logger("auth")->info("sign-in refused user={} reason=revoked remote={}", user, request.remote_address);
      return "robot " + *robot + " has been revoked";
  }
  return "wrong user name or password";
}

bool Authenticator::allows(std::optional<std::string> const& user, std::string_view repository, Action action) const {
  if (!user) return policy_.allows(std::nullopt, repository, action);
  auto const robot = robot_name_of(*user);
  return policy_.allows(*user, repository, action,
                        robot && robots_ ? robots_->groups_of(*robot) : std::vector<std::string>{});
}

void Authenticator::challenge(Request const& request, std::optional<RequiredAccess> const& required,
                              std::string const& message) const {
  auto error = unauthorized(message);
  std::string value =
      "Bearer realm=\"" + config_.scheme + "://" + safe_host(request) + "/token\",service=\"" + config_.service + "\"";
  if (required) value += ",scope=\"" + scope_of(*required) + "\"";
  error.headers.set("WWW-Authenticate", value);
  throw error;
}

void Authenticator::authorize(Request const& request, std::optional<RequiredAccess> const& required) const {
  auto const header = request.headers.get("Authorization");
  std::optional<std::string> user;  // nullopt: anonymous
  std::optional<TokenClaims> claims;
  if (required) note_access(required->repository, to_string(required->action));
  if (header) {
    if (auto const token = bearer_token(*header)) {
      claims = key_.verify(*token, config_.service, Clock::now());
      if (!claims) challenge(request, required, "the bearer token is invalid or expired; sign in again");
      if (!claims->subject.empty()) user = claims->subject;
      // A robot's token dies with the robot (revoke, del, expiry) and with its old secret (rotate).
      if (auto const robot = robot_name_of(claims->subject);
          robot && !(robots_ && robots_->token_stands(*robot, claims->issued_at))) {
        logger("auth")->info("bearer token refused user={} reason=robot-no-longer-valid remote={}", claims->subject,
                             request.remote_address);
        challenge(request, required, "the robot this token was issued to is no longer valid; sign in again");
      }
    } else if (auto const credentials = basic_credentials(*header)) {
      if (auto const message = refusal(credentials->user, credentials->password, request))
        challenge(request, required, *message);
      user = credentials->user;
    } else {
      challenge(request, required, "unsupported authorization scheme; use Basic or Bearer");
    }
  }
  if (user) note_user(*user);  // the access log and the per-user rate limit (may throw 429)

  if (!required) {
    if (user || claims) return;
    challenge(request, required, "authentication required");
  }
  bool const allowed = allows(user, required->repository, required->action);
  if (claims ? covers(*claims, *required) : allowed) return;
  std::string const what = required->action == Action::catalog ? std::string("listing the catalog")
                                                               : std::string(to_string(required->action)) +
                                                                     " access to repository " + required->repository;
  // Anonymous (no credentials, or an anonymous token): a 401 challenge, so that clients ask for a
  // login instead of reporting a bare 403. A token that lacks a scope the user would get: the same,
  // to fetch a token for it.
  if (!user)
    challenge(request, required,
              "authentication required: sign in (docker login, podman login, skopeo --creds) for " + what);
  if (claims && allowed) challenge(request, required, "authentication required");
  logger("auth")->info("denied user={} action={} repository={}", *user, to_string(required->action),
                       required->repository);
  // The grant that is missing, in the configuration's own words.
  std::string const grant =
      required->action == Action::catalog
          ? "- users: [" + *user + "]  actions: [catalog]"
          : "- users: [" + *user + "]  actions: [" +
                (required->action == Action::pull ? std::string("pull") : "pull, " + std::string(to_string(required->action))) +
                "]  repositories: [" + required->repository + "]";
  HttpError error(403, "DENIED",
                  "requested access to the resource is denied: " + what + " is not granted to user " + *user +
                      "; an administrator grants it under access: in berth.yaml (" + grant +
                      "), then restarts berth");
  error.headers.set("Docker-Distribution-API-Version", "registry/2.0");
  throw error;
}

Response Authenticator::issue_token(Request const& request) const {
  std::optional<std::string> user;
  if (auto const header = request.headers.get("Authorization")) {
    auto const credentials = basic_credentials(*header);
    auto const message = credentials ? refusal(credentials->user, credentials->password, request)
                                     : std::optional<std::string>("wrong user name or password");
    if (message) {
      logger("auth")->info("token refused remote={}", request.remote_address);
      auto error = unauthorized(*message);
      error.headers.set("WWW-Authenticate", "Basic realm=\"" + config_.service + "\"");
      throw error;
    }
    user = credentials->user;
    note_user(*user);
  }
  if (auto const service = request.query_param("service"); service && *service != config_.service)
    throw HttpError(400, "UNSUPPORTED", "this token service is \"" + config_.service + "\", not \"" + *service + "\"");

  TokenClaims claims;
  for (auto const& scope : scopes_of(request)) {
    auto const first = scope.find(':');
    auto const last = scope.rfind(':');
    if (first == std::string::npos || last == first)
      throw HttpError(400, "UNSUPPORTED", "malformed scope \"" + scope + "\"; expected TYPE:NAME:ACTIONS");
    ResourceAccess granted{scope.substr(0, first), scope.substr(first + 1, last - first - 1), {}};
    std::string_view actions = std::string_view(scope).substr(last + 1);
    if (granted.type == "registry" && granted.name == "catalog") {
      if (allows(user, "", Action::catalog)) granted.actions.push_back("*");
    } else if (granted.type == "repository") {
      while (!actions.empty()) {
        auto const comma = actions.find(',');
        auto const word = actions.substr(0, comma);
        actions = comma == std::string_view::npos ? std::string_view{} : actions.substr(comma + 1);
        for (auto action : {Action::pull, Action::push, Action::delete_}) {
          bool const asked = word == "*" || word == to_string(action);
          auto const name = std::string(to_string(action));
          if (asked && allows(user, granted.name, action) &&
              std::find(granted.actions.begin(), granted.actions.end(), name) == granted.actions.end())
            granted.actions.push_back(name);
        }
      }
    }
    if (!granted.actions.empty()) claims.access.push_back(std::move(granted));
  }

  auto const now = Clock::now();
  claims.issuer = config_.issuer;
  claims.subject = user.value_or("");
  claims.audience = config_.service;
  claims.issued_at = now;
  claims.not_before = now;
  claims.expires_at = now + config_.token_lifetime;
  claims.id = random_id();
  auto const token = key_.sign(claims);
  std::string granted;
  for (auto const& entry : claims.access) {
    granted += (granted.empty() ? "" : " ") + entry.type + ":" + entry.name + ":";
    for (std::size_t action_idx = 0; action_idx < entry.actions.size(); ++action_idx)
      granted += (action_idx ? "," : "") + entry.actions[action_idx];
  }
  logger("auth")->debug("token issued user={} access={}", user.value_or("(anonymous)"), granted);
  nlohmann::json body = {{"token", token},
                         {"access_token", token},
                         {"expires_in", config_.token_lifetime.count()},
                         {"issued_at", rfc3339(now)}};
  auto response = json_response(200, body.dump() + "\n");
  response.headers.set("Cache-Control", "no-store");
  return response;
}

void add_authentication(Router& router, std::shared_ptr<Authenticator const> authenticator, std::string prefix,
                        RequiredAccessRule rule) {
  router.add(Method::get, "/token",
             [authenticator](Request const& request) -> Reply { return authenticator->issue_token(request); });
  router.add_guard(std::move(prefix), [authenticator, rule = std::move(rule)](Request const& request) {
    authenticator->authorize(request, rule(request));
  });
}

}  // namespace berth::proxy

// ECR API calls: sign, send, classify the answer. Errors are turned into messages that say
// what to do (credentials expired, unknown key, clock off, IAM lacks an action), because the
// raw AWS texts rarely do. The authorization token is cached in memory only: it is a password.
#include "berth/registry/ecr_client.hpp"

#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"

namespace berth::registry::ecr {
namespace {

constexpr int api_attempts = 4;

}  // namespace

void validate_target(Target const& target) {
  api_host(target.region);  // throws on an implausible region
  auto const& host = target.registry_host;
  auto const dkr = host.find(".dkr.ecr.");
  if (dkr != std::string::npos && host.ends_with(".amazonaws.com")) {
    auto region_start = dkr + std::string_view(".dkr.ecr.").size();
    auto region = host.substr(region_start, host.find('.', region_start) - region_start);
    if (region != target.region)
      throw Error("the registry " + host + " is in region " + region + ", not in the configured region " +
                  target.region + "\nHINT: set the target's region to " + region);
  }
  if (host.empty() || host.find('/') != std::string::npos)
    throw Error("invalid registry host '" + host + "'\nHINT: use ACCOUNT.dkr.ecr.REGION.amazonaws.com");
}

struct Client::State {
  Target target;
  CredentialsSource source;
  std::chrono::system_clock::duration refresh_before;
  http::ClientConfig http_config;
  std::unique_ptr<http::Client> http;
  std::string api_url;
  std::string api_authority;
  std::shared_ptr<spdlog::logger> log = logger("promote");

  std::mutex mutex;
  std::optional<aws::ResolvedCredentials> credentials;
  std::optional<AuthorizationToken> token;
  int token_requests = 0;

  aws::ResolvedCredentials current_credentials(bool refresh) {
    std::lock_guard lock(mutex);
    auto const now = std::chrono::system_clock::now();
    // Temporary credentials (credential_process, AssumeRole) are renewed shortly before they
    // run out, like the token, so a call never goes out with keys about to expire.
    bool const stale = credentials && credentials->expiration && *credentials->expiration <= now + refresh_before;
    if (!credentials || refresh || stale) {
      credentials = source();
      if (credentials->expiration && *credentials->expiration <= now)
        throw ApiCallError("the AWS credentials from " + credentials->source +
                               " have expired\nHINT: renew them (e.g. refresh the session token or fix "
                               "credential_process) and run the command again",
                           "ExpiredTokenException");
    }
    return *credentials;
  }

  nlohmann::json call(std::string const& operation, std::string const& body) {
    bool refreshed = false;
    for (int attempt = 1;; ++attempt) {
      auto const creds = current_credentials(false);
      auto signed_request = sign_api_request(operation, body, target.region, creds.credentials,
                                             std::chrono::system_clock::now(), api_authority);
      http::Request request{
          .method = "POST", .url = api_url, .headers = {}, .body = signed_request.body, .body_file = {}};
      for (auto const& header : signed_request.headers)
        if (header.name != "Host") request.headers.emplace_back(header.name, header.value);
      auto response = http->send(request);
      if (response.status >= 200 && response.status < 300) {
        auto json = nlohmann::json::parse(response.body, nullptr, false);
        if (!json.is_object())
          throw ApiCallError("ECR " + operation + " at " + api_url + " answered no JSON object", "");
        return json;
      }
      auto const error = parse_api_error(response.body, response.header("x-amzn-ErrorType").value_or(""));
      auto const prefix = "ECR " + operation + " at " + api_url +
                          " failed: " + (error.type.empty() ? "HTTP " + std::to_string(response.status) : error.type) +
                          (error.message.empty() ? "" : " (" + error.message + ")");
      bool const expired =
          error.type == "ExpiredTokenException" || error.type == "RequestExpired" ||
          (error.type == "InvalidSignatureException" && error.message.find("expired") != std::string::npos);
      if (error.type == "ExpiredTokenException" && !refreshed) {
        // Temporary credentials ran out: the chain may hand out fresh ones (credential_process).
        refreshed = true;
        current_credentials(true);
        continue;
      }
      if (error.type == "ExpiredTokenException")
        throw ApiCallError(
            prefix + "\nthe AWS credentials from " + creds.source +
                " have expired\nHINT: renew them (e.g. a new session token, or check credential_process) "
                "and run the command again",
            error.type);
      if (expired)
        throw ApiCallError(prefix +
                               "\nHINT: this machine's clock is off by more than a few minutes; sync it (timedatectl "
                               "set-ntp true)",
                           error.type);
      if (error.type == "UnrecognizedClientException")
        throw ApiCallError(prefix + "\nHINT: AWS does not know the access key from " + creds.source +
                               "; check AWS_ACCESS_KEY_ID or the profile",
                           error.type);
      if (error.type == "InvalidSignatureException")
        throw ApiCallError(prefix + "\nHINT: the secret access key from " + creds.source + " is wrong", error.type);
      if (error.type == "AccessDeniedException")
        throw ApiCallError(prefix + "\nHINT: allow ecr:" + operation + " to the IAM identity of " + creds.source,
                           error.type);
      bool const transient = error.type == "ThrottlingException" || response.status >= 500 || response.status == 429;
      if (transient && attempt < api_attempts) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
        continue;
      }
      throw ApiCallError(prefix, error.type);
    }
  }
};

Client::Client(Target target, CredentialsSource credentials, std::chrono::system_clock::duration refresh_before)
    : state_(std::make_unique<State>()) {
  validate_target(target);
  state_->target = std::move(target);
  state_->source = std::move(credentials);
  state_->refresh_before = refresh_before;
  state_->http_config.extra_ca_file = state_->target.ca_file;
  state_->http = std::make_unique<http::Client>(state_->http_config);
  if (state_->target.api_endpoint.empty()) {
    state_->api_authority = api_host(state_->target.region);
    state_->api_url = "https://" + state_->api_authority + "/";
  } else {
    auto url = http::Url::parse(state_->target.api_endpoint);
    state_->api_authority = url.authority();
    state_->api_url = url.origin() + "/";
  }
}

Client::~Client() = default;

AuthorizationToken Client::authorization_token() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->token && std::chrono::system_clock::now() + state_->refresh_before < state_->token->expires_at)
      return *state_->token;
  }
  auto json = state_->call("GetAuthorizationToken", "{}");
  auto token = parse_authorization_token(json.dump());
  std::lock_guard lock(state_->mutex);
  ++state_->token_requests;
  state_->token = token;
  state_->log->debug(
      "ecr token issued registry={} expires_in={}s", state_->target.registry_host,
      std::chrono::duration_cast<std::chrono::seconds>(token.expires_at - std::chrono::system_clock::now()).count());
  return token;
}

bool Client::ensure_repository(std::string const& repository) {
  nlohmann::json describe = {{"repositoryNames", {repository}}};
  try {
    state_->call("DescribeRepositories", describe.dump());
    return false;
  } catch (ApiCallError const& error) {
    if (error.type() != "RepositoryNotFoundException") throw;
    if (!state_->target.create_repository)
      throw ApiCallError(std::string(error.what()) + "\nHINT: create the repository " + repository +
                             " in ECR, or set create_repository: true for this target",
                         error.type());
  }
  nlohmann::json create = {{"repositoryName", repository}};
  try {
    state_->call("CreateRepository", create.dump());
  } catch (ApiCallError const& error) {
    if (error.type() == "RepositoryAlreadyExistsException") return false;  // created meanwhile by someone else
    throw;
  }
  state_->log->info("ecr repository created registry={} repository={}", state_->target.registry_host, repository);
  return true;
}

std::string Client::registry_url() const {
  return "https://" + state_->target.registry_host;
}
http::ClientConfig const& Client::http_config() const {
  return state_->http_config;
}

int Client::token_requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->token_requests;
}

}  // namespace berth::registry::ecr

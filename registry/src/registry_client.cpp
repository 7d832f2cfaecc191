// The registry client: every request goes through send(), which adds credentials, answers
// auth challenges once, and retries what is worth retrying. The auth state (scheme, tokens per
// scope) is shared by all threads behind one mutex that is never held during I/O.
#include "berth/registry/registry_client.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "berth/registry/manifest.hpp"

namespace berth::registry {
namespace {

constexpr char accept_manifests[] =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// Promotion pushes: every request to a repository asks for pull and push at once, so one token
// serves the whole transfer.
std::string push_scope(std::string const& repository) {
  return "repository:" + repository + ":pull,push";
}

// A HEAD or GET of a manifest that accepts every manifest type berth promotes.
http::Request manifest_request(std::string method, std::string url) {
  return {.method = std::move(method),
          .url = std::move(url),
          .headers = {{"Accept", accept_manifests}},
          .body = {},
          .body_file = {}};
}

struct Challenge {
  std::string scheme;  // "basic" or "bearer", lowercase
  std::map<std::string, std::string> params;
};

// `Bearer realm="https://auth",service="registry",scope="repository:a:pull"` (one challenge).
Challenge parse_challenge(std::string_view text) {
  Challenge challenge;
  auto space = text.find(' ');
  auto scheme = text.substr(0, space);
  for (char c : scheme) challenge.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (space == std::string_view::npos) return challenge;
  auto rest = text.substr(space + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    auto equals = rest.find('=');
    if (equals == std::string_view::npos) break;
    std::string key;
    for (char c : rest.substr(0, equals)) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    rest.remove_prefix(equals + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest.front() != '"') {
        if (rest.front() == '\\' && rest.size() > 1) rest.remove_prefix(1);
        value += rest.front();
        rest.remove_prefix(1);
      }
      if (!rest.empty()) rest.remove_prefix(1);
    } else {
      auto end = rest.find(',');
      value = std::string(rest.substr(0, end));
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    }
    challenge.params[key] = value;
  }
  return challenge;
}

std::string query_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The OCI error envelope's first code and message, or the ECR/AWS style, or the raw text.
std::pair<std::string, std::string> error_details(http::Response const& response) {
  auto const json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_object()) {
    if (auto errors = json.find("errors"); errors != json.end() && errors->is_array() && !errors->empty()) {
      auto const& first = (*errors)[0];
      return {first.value("code", std::string()), first.value("message", std::string())};
    }
    if (json.contains("__type") || json.contains("message"))
      return {json.value("__type", std::string()), json.value("message", std::string())};
  }
  auto text = response.body.substr(0, 200);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return {"", text};
}

bool retryable(int status) {
  return status == 429 || status >= 500;
}

std::chrono::milliseconds backoff(RetryPolicy const& policy, int failures) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  auto delay = policy.first_delay;
  for (int i = 1; i < failures && delay < policy.max_delay; ++i) delay *= 2;
  delay = std::min(delay, policy.max_delay);
  // Full jitter over the upper half: spreads parallel workers without ever waiting zero.
  std::uniform_int_distribution<long> spread(delay.count() / 2, std::max<long>(delay.count(), 1));
  return std::chrono::milliseconds(spread(random));
}

}  // namespace

struct RegistryClient::State {
  RegistryTarget target;
  http::Client http;
  std::string origin;
  std::shared_ptr<spdlog::logger> log = logger("promote");
  std::atomic<std::uint64_t> bytes_sent{0};

  std::mutex mutex;
  std::string scheme;                         // "", "basic" or "bearer": learnt from the first 401
  std::map<std::string, std::string> tokens;  // scope → bearer token
  Challenge bearer;                           // the last Bearer challenge (realm, service)

  explicit State(RegistryTarget t) : target(std::move(t)), http(target.http) {
    auto url = http::Url::parse(target.url);
    origin = url.origin();
  }

  std::string basic() const { return "Basic " + http::base64(target.username + ":" + target.password); }

  std::optional<std::string> authorization(std::string const& scope) {
    std::lock_guard lock(mutex);
    if (scheme == "basic" && !target.username.empty()) return basic();
    if (scheme == "bearer")
      if (auto found = tokens.find(scope); found != tokens.end()) return "Bearer " + found->second;
    return std::nullopt;
  }

  [[noreturn]] void refuse(http::Request const& request, http::Response const& response, std::string const& what) {
    auto [code, message] = error_details(response);
    auto text = what + " at " + origin + " failed: HTTP " + std::to_string(response.status) +
                (code.empty() ? "" : " " + code) + (message.empty() ? "" : ": " + message);
    (void)request;
    // The hint follows the cause: no credentials at all, or credentials that are wrong or short.
    bool const anonymous = target.username.empty();
    if (response.status == 401)
      throw RegistryError(text + (anonymous ? "\nHINT: " + origin + " wants a login and none was given: --creds USER:PASS"
                                            : "\nHINT: check the credentials for " + origin +
                                                  " (--creds USER:PASS, or the target's AWS credentials)"),
                          response.status, code);
    if (response.status == 403)
      throw RegistryError(text + (anonymous ? "\nHINT: no credentials were given, and " + origin +
                                                  " lets anonymous clients do less: --creds USER:PASS of an account "
                                                  "with push rights on this repository"
                                            : "\nHINT: the credentials of " + target.username +
                                                  " work but lack push rights on this repository at " + origin),
                          response.status, code);
    bool const immutable = code == "TAG_INVALID" || code.find("ImageTagAlreadyExists") != std::string::npos ||
                           message.find("immutable") != std::string::npos;
    if (immutable && request.method == "PUT")
      throw TagImmutableError(text +
                                  "\nHINT: the target keeps tags immutable and this tag names another image; "
                                  "promote under a new tag (--tag NEWTAG)",
                              response.status, code);
    throw RegistryError(text, response.status, code);
  }

  // Answers a 401 challenge: remembers the scheme and, for Bearer, fetches a token for `scope`.
  // False when there is nothing more to try (no credentials for Basic).
  bool answer_challenge(http::Response const& response, std::string const& scope) {
    auto header = response.header("WWW-Authenticate");
    if (!header) return false;
    auto challenge = parse_challenge(*header);
    if (challenge.scheme == "basic") {
      std::lock_guard lock(mutex);
      scheme = "basic";
      return !target.username.empty();
    }
    if (challenge.scheme != "bearer" || !challenge.params.contains("realm")) return false;
    auto const realm = challenge.params["realm"];
    auto token_url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
    if (auto service = challenge.params.find("service"); service != challenge.params.end())
      token_url += "service=" + query_encode(service->second);
    auto wanted = scope.empty() ? challenge.params["scope"] : scope;
    if (!wanted.empty()) token_url += "&scope=" + query_encode(wanted);
    http::Request token_request{.method = "GET", .url = token_url, .headers = {}, .body = {}, .body_file = {}};
    if (!target.username.empty()) token_request.headers.emplace_back("Authorization", basic());
    auto token_response = http.send(token_request);
    if (token_response.status != 200) refuse(token_request, token_response, "token request to " + realm);
    auto json = nlohmann::json::parse(token_response.body, nullptr, false);
    std::string token;
    if (json.is_object()) token = json.value("token", json.value("access_token", std::string()));
    if (token.empty()) throw RegistryError("the token endpoint " + realm + " answered no token", 200, "");
    std::lock_guard lock(mutex);
    scheme = "bearer";
    tokens[scope] = token;
    return true;
  }

  // One request with auth and, when `retry`, backoff on 5xx/429/transport failures.
  http::Response send(http::Request request, std::string const& scope, bool retry = true) {
    bool challenged = false;
    int failures = 0;
    auto const attempts = retry ? std::max(target.retry.attempts, 1) : 1;
    for (;;) {
      auto attempt = request;
      if (auto value = authorization(scope)) attempt.headers.emplace_back("Authorization", *value);
      http::Response response;
      try {
        response = http.send(attempt);
      } catch (http::ProtocolMismatch const&) {
        throw;
      } catch (http::TransportError const& error) {
        if (++failures >= attempts) throw;
        auto delay = backoff(target.retry, failures);
        log->warn("retrying request={} {} after={}ms reason=\"{}\"", request.method, request.url, delay.count(),
                  error.what());
        std::this_thread::sleep_for(delay);
        continue;
      }
      if (response.status == 401 && !challenged) {
        challenged = true;
        if (answer_challenge(response, scope)) continue;
      }
      if (retryable(response.status) && ++failures < attempts) {
        auto delay = backoff(target.retry, failures);
        if (auto after = response.header("Retry-After"); after && response.status == 429) {
          auto seconds = std::atoi(after->c_str());
          if (seconds > 0 && seconds <= 60) delay = std::max(delay, std::chrono::milliseconds(seconds * 1000));
        }
        log->warn("retrying request={} {} after={}ms status={}", request.method, request.url, delay.count(),
                  response.status);
        std::this_thread::sleep_for(delay);
        continue;
      }
      return response;
    }
  }

  std::string v2(std::string const& repository, std::string const& rest) const {
    return origin + "/v2/" + repository + rest;
  }
};

RegistryClient::RegistryClient(RegistryTarget target) : state_(std::make_unique<State>(std::move(target))) {}
RegistryClient::~RegistryClient() = default;

std::uint64_t RegistryClient::bytes_sent() const {
  return state_->bytes_sent.load();
}
std::string const& RegistryClient::url() const {
  return state_->origin;
}

void RegistryClient::check_access() {
  http::Request request{.method = "GET", .url = state_->origin + "/v2/", .headers = {}, .body = {}, .body_file = {}};
  auto response = state_->send(request, "");
  if (response.status != 200) state_->refuse(request, response, "GET /v2/");
}

std::optional<std::uint64_t> RegistryClient::blob_size(std::string const& repository, Digest const& digest) {
  auto const scope = push_scope(repository);
  http::Request request{.method = "HEAD",
                        .url = state_->v2(repository, "/blobs/" + digest.to_string()),
                        .headers = {},
                        .body = {},
                        .body_file = {}};
  auto response = state_->send(request, scope);
  if (response.status == 404) return std::nullopt;
  if (response.status != 200) state_->refuse(request, response, "HEAD blob " + digest.to_string());
  auto length = response.header("Content-Length");
  return length ? std::stoull(*length) : 0;
}

void RegistryClient::upload_blob(std::string const& repository, Digest const& digest,
                                 std::filesystem::path const& content) {
  auto const scope = push_scope(repository);
  auto const size = std::filesystem::file_size(content);
  int failures = 0;
  for (;;) {
    http::Request start{
        .method = "POST", .url = state_->v2(repository, "/blobs/uploads/"), .headers = {}, .body = {}, .body_file = {}};
    auto started = state_->send(start, scope);
    if (started.status != 202) state_->refuse(start, started, "starting the upload of " + digest.to_string());
    auto location = started.header("Location");
    if (!location) throw RegistryError("the upload of " + digest.to_string() + " got no Location", 202, "");
    auto url =
        location->starts_with("http://") || location->starts_with("https://") ? *location : state_->origin + *location;
    url += (url.find('?') == std::string::npos ? "?digest=" : "&digest=") + query_encode(digest.to_string());
    // The whole blob in one PUT: the registry sees one streamed body, never several chunks.
    http::Request put{.method = "PUT",
                      .url = url,
                      .headers = {{"Content-Type", "application/octet-stream"}},
                      .body = {},
                      .body_file = content};
    try {
      auto response = state_->send(put, scope, false);
      if (response.status == 201 || response.status == 204) {
        state_->bytes_sent += size;
        return;
      }
      if (!retryable(response.status) || ++failures >= state_->target.retry.attempts)
        state_->refuse(put, response, "uploading " + digest.to_string());
    } catch (http::ProtocolMismatch const&) {
      throw;
    } catch (http::TransportError const&) {
      if (++failures >= state_->target.retry.attempts) throw;
    }
    auto delay = backoff(state_->target.retry, failures);
    state_->log->warn("retrying upload digest={} after={}ms", digest.to_string(), delay.count());
    std::this_thread::sleep_for(delay);
  }
}

std::optional<RemoteManifest> RegistryClient::head_manifest(std::string const& repository,
                                                            std::string const& reference) {
  auto const scope = push_scope(repository);
  auto const request = manifest_request("HEAD", state_->v2(repository, "/manifests/" + reference));
  auto response = state_->send(request, scope);
  if (response.status == 404) return std::nullopt;
  auto digest_header = response.header("Docker-Content-Digest");
  auto digest = digest_header ? Digest::parse(*digest_header) : std::nullopt;
  // Some registries (ECR, for indexes) refuse HEAD or leave out the digest: GET tells the same.
  if (response.status != 200 || !digest) return get_manifest(repository, reference);
  RemoteManifest manifest{.digest = *digest,
                          .media_type = response.header("Content-Type").value_or(""),
                          .size = std::stoull(response.header("Content-Length").value_or("0")),
                          .bytes = {}};
  return manifest;
}

std::optional<RemoteManifest> RegistryClient::get_manifest(std::string const& repository,
                                                           std::string const& reference) {
  auto const scope = push_scope(repository);
  auto const request = manifest_request("GET", state_->v2(repository, "/manifests/" + reference));
  auto response = state_->send(request, scope);
  if (response.status == 404) return std::nullopt;
  if (response.status != 200) state_->refuse(request, response, "GET manifest " + repository + ":" + reference);
  auto digest = digest_of(response.body);
  return RemoteManifest{.digest = digest,
                        .media_type = response.header("Content-Type").value_or(""),
                        .size = response.body.size(),
                        .bytes = std::move(response.body)};
}

std::string RegistryClient::put_manifest(std::string const& repository, std::string const& reference,
                                         std::string const& media_type, std::string const& bytes) {
  auto const scope = push_scope(repository);
  http::Request request{.method = "PUT",
                        .url = state_->v2(repository, "/manifests/" + reference),
                        .headers = {{"Content-Type", media_type}},
                        .body = bytes,
                        .body_file = {}};
  auto response = state_->send(request, scope);
  if (response.status != 201 && response.status != 200)
    state_->refuse(request, response, "PUT manifest " + repository + ":" + reference);
  return response.header("Docker-Content-Digest").value_or(digest_of(bytes).to_string());
}

}  // namespace berth::registry

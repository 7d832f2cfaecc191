// A local stand-in for the ECR control plane and STS: an HTTPS endpoint (berth's own server, TLS
// with a CA of its own) that checks every request's SigV4 signature by recomputing it with the
// signer from the request it received, refuses an unknown key, a wrong secret, a date more than
// 5 minutes off, a wrong or expired session token the way AWS does, and answers
// GetAuthorizationToken (the token is the Basic password of user AWS on the registry the test
// runs next to it), DescribeRepositories and CreateRepository (AWS JSON 1.1), and STS
// AssumeRole (form-encoded Query API, XML answers) for the roles a test adds, checking their
// trust (which identity may assume them) and ExternalId. Temporary keys it issues are accepted
// only with their session token, and it records which key signed each call.
#pragma once

#include <atomic>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "berth/proxy/server.hpp"
#include "berth/proxy/tls_material.hpp"
#include "berth/registry/http_client.hpp"
#include "berth/registry/sigv4.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {

class EcrStandIn {
public:
  static constexpr char access_key[] = "AKIDSTANDIN";
  static constexpr char secret_key[] = "stand-in-secret/K7MDENG+bPxRfiCY";
  static constexpr char expired_session_token[] = "expired-session";
  /// The IAM identity of access_key, as STS names it in AccessDenied messages.
  static constexpr char user_arn[] = "arn:aws:iam::111111111111:user/ci";

  /// `registry_password`: what GetAuthorizationToken hands out as user AWS's password;
  /// `registry_endpoint`: its proxyEndpoint ("https://127.0.0.1:PORT").
  EcrStandIn(std::string region, std::string registry_password, std::string registry_endpoint)
      : region_(std::move(region)), password_(std::move(registry_password)), endpoint_(std::move(registry_endpoint)) {
    identities_[access_key] = {secret_key, "", std::chrono::system_clock::time_point::max(), user_arn, user_arn};
    material_ = proxy::ensure_local_tls(dir_.path() / "tls", {"localhost", "127.0.0.1"});
    proxy::Router routes;
    routes.add(proxy::Method::post, "/",
               proxy::buffered(
                   1 << 20, [this](proxy::Request const& request, std::string body) { return answer(request, body); }));
    proxy::ServerConfig config;
    config.port = 0;
    config.threads = 2;
    config.access_log = false;
    config.tls = {true, material_.server_cert, material_.server_key};
    server_ = std::make_unique<proxy::Server>(config, std::move(routes));
    thread_ = std::thread([this] { server_->run(); });
  }
  ~EcrStandIn() {
    server_->stop();
    thread_.join();
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(server_->local_port()); }
  std::filesystem::path ca_file() const { return material_.ca_cert; }
  int calls(std::string const& operation) const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(operations_.count(operation));
  }
  std::set<std::string> repositories() const {
    std::lock_guard lock(mutex_);
    return repositories_;
  }
  void add_repository(std::string name) {
    std::lock_guard lock(mutex_);
    repositories_.insert(std::move(name));
  }
  /// A role AssumeRole may hand out: `trusted` are the identities its trust policy allows (user
  /// ARNs, or role ARNs for role chaining); a non-empty `external_id` must be sent.
  void add_role(std::string arn, std::string external_id, std::set<std::string> trusted) {
    std::lock_guard lock(mutex_);
    roles_[std::move(arn)] = {std::move(external_id), std::move(trusted)};
  }
  /// The access key IDs that signed each call of `operation`, in order.
  std::vector<std::string> signers(std::string const& operation) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> keys;
    for (auto const& [name, key] : signed_by_)
      if (name == operation) keys.push_back(key);
    return keys;
  }
  /// The role ARN a temporary key was issued for by AssumeRole; "" for any other key.
  std::string role_of(std::string const& key_id) const {
    std::lock_guard lock(mutex_);
    auto const it = identities_.find(key_id);
    return it == identities_.end() || it->second.session_token.empty() ? "" : it->second.principal;
  }

private:
  static proxy::Response aws_error(int status, std::string const& type, std::string const& message) {
    auto response = proxy::json_response(status, nlohmann::json{{"__type", type}, {"message", message}}.dump());
    response.headers.set("x-amzn-ErrorType", type);
    return response;
  }

  // "20261127T101500Z" → time point (UTC).
  static std::optional<std::chrono::system_clock::time_point> parse_amz_date(std::string const& text) {
    std::tm parts{};
    if (text.size() != 16 || ::strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &parts) == nullptr) return std::nullopt;
    return std::chrono::system_clock::from_time_t(::timegm(&parts));
  }

  struct Refusal {
    int status;
    std::string type;
    std::string message;
  };

  static proxy::Response sts_error(Refusal const& refusal) {
    proxy::Response response;
    response.status = refusal.status;
    response.headers.set("Content-Type", "text/xml");
    response.body =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>" +
        refusal.type + "</Code><Message>" + refusal.message +
        "</Message></Error><RequestId>0000</RequestId></ErrorResponse>";
    return response;
  }

  static std::string form_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out.push_back(' ');
      } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    }
    return out;
  }

  static std::map<std::string, std::string> form_fields(std::string const& body) {
    std::map<std::string, std::string> fields;
    for (std::size_t start = 0; start < body.size();) {
      auto end = body.find('&', start);
      if (end == std::string::npos) end = body.size();
      auto const pair = std::string_view(body).substr(start, end - start);
      auto const eq = pair.find('=');
      fields[form_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : form_decode(pair.substr(eq + 1));
      start = end + 1;
    }
    return fields;
  }

  static std::string iso8601(std::chrono::system_clock::time_point time) {
    auto const seconds = std::chrono::system_clock::to_time_t(time);
    std::tm parts{};
    ::gmtime_r(&seconds, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
  }

  // Checks the signature of `request` for `service` as AWS would; on success, returns nothing and
  // sets `key_id` to the signer. Called with mutex_ held.
  std::optional<Refusal> verify(proxy::Request const& request, std::string const& body, std::string const& service,
                                std::string& key_id) {
    auto const authorization = std::string(request.headers.get("Authorization").value_or(""));
    auto const date_text = std::string(request.headers.get("X-Amz-Date").value_or(""));
    // AWS4-HMAC-SHA256 Credential=AKID/20261127/eu-west-1/ecr/aws4_request, SignedHeaders=a;b, Signature=hex
    auto field = [&](std::string const& name) -> std::string {
      auto start = authorization.find(name + "=");
      if (start == std::string::npos) return "";
      start += name.size() + 1;
      return authorization.substr(start, authorization.find(',', start) - start);
    };
    auto const credential = field("Credential");
    key_id = credential.substr(0, credential.find('/'));
    if (!authorization.starts_with("AWS4-HMAC-SHA256 ") || credential.empty())
      return Refusal{400, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter."};
    auto const identity = identities_.find(key_id);
    if (identity == identities_.end())
      return Refusal{403, "UnrecognizedClientException", "The security token included in the request is invalid."};
    // AKID/DATE/REGION/SERVICE/aws4_request: this endpoint's region and service only.
    std::vector<std::string> scope;
    for (std::size_t start = 0;;) {
      auto const end = credential.find('/', start);
      scope.push_back(credential.substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (scope.size() != 5 || scope[2] != region_ || scope[3] != service)
      return Refusal{403, "InvalidSignatureException",
                     "Credential should be scoped to a valid region and service, not '" +
                         (scope.size() == 5 ? scope[2] + "/" + scope[3] : credential) + "'."};
    auto const time = parse_amz_date(date_text);
    if (!time) return Refusal{400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed."};
    auto const skew = std::chrono::system_clock::now() - *time;
    if (skew > std::chrono::minutes(5) || skew < -std::chrono::minutes(5))
      return Refusal{403, "InvalidSignatureException",
                     "Signature expired: " + date_text + " is now earlier than the allowed window."};

    // Recompute the signature from what arrived: the signed headers except those the signer adds.
    auto const token = std::string(request.headers.get("X-Amz-Security-Token").value_or(""));
    registry::sigv4::Credentials credentials{key_id, identity->second.secret, token};
    std::vector<registry::sigv4::Header> headers;
    auto signed_names = field("SignedHeaders");
    bool token_signed = false;
    for (std::size_t start = 0; start <= signed_names.size();) {
      auto end = signed_names.find(';', start);
      if (end == std::string::npos) end = signed_names.size();
      auto name = signed_names.substr(start, end - start);
      start = end + 1;
      if (name == "x-amz-security-token") token_signed = true;
      if (name == "x-amz-date" || name == "x-amz-security-token") continue;
      headers.push_back({name, std::string(request.headers.get(name).value_or(""))});
    }
    std::string expected;
    try {
      auto const signature = registry::sigv4::sign({"POST", request.target, headers, body}, credentials,
                                                   {.region = region_, .service = service}, *time);
      expected = signature.authorization;
    } catch (std::exception const& error) {
      return Refusal{400, "IncompleteSignatureException", error.what()};
    }
    if (expected != authorization)
      return Refusal{403, "InvalidSignatureException",
                     "The request signature we calculated does not match the signature you provided."};
    if (token == expired_session_token)
      return Refusal{403, "ExpiredTokenException", "The security token included in the request is expired"};
    // Temporary keys count only with their own session token, signed.
    if (!identity->second.session_token.empty() && (token != identity->second.session_token || !token_signed))
      return Refusal{403, "UnrecognizedClientException", "The security token included in the request is invalid."};
    if (std::chrono::system_clock::now() >= identity->second.expires)
      return Refusal{403, "ExpiredTokenException", "The security token included in the request is expired"};
    return std::nullopt;
  }

  proxy::Response answer(proxy::Request const& request, std::string const& body) {
    auto const content_type = std::string(request.headers.get("Content-Type").value_or(""));
    std::lock_guard lock(mutex_);
    if (content_type.starts_with("application/x-www-form-urlencoded")) return assume_role(request, body);
    std::string key_id;
    if (auto const refusal = verify(request, body, "ecr", key_id))
      return aws_error(refusal->status == 403 ? 400 : refusal->status, refusal->type, refusal->message);

    auto const target = std::string(request.headers.get("X-Amz-Target").value_or(""));
    auto const operation = target.substr(target.find('.') + 1);
    auto const json = nlohmann::json::parse(body, nullptr, false);
    operations_.insert(operation);
    signed_by_.emplace_back(operation, key_id);
    if (operation == "GetAuthorizationToken") {
      auto const expires =
          std::chrono::duration<double>((std::chrono::system_clock::now() + std::chrono::hours(12)).time_since_epoch());
      nlohmann::json data = {{"authorizationToken", registry::http::base64("AWS:" + password_)},
                             {"expiresAt", expires.count()},
                             {"proxyEndpoint", endpoint_}};
      return proxy::json_response(200, nlohmann::json{{"authorizationData", {data}}}.dump());
    }
    if (operation == "DescribeRepositories") {
      auto const name = json.value("repositoryNames", nlohmann::json::array()).at(0).get<std::string>();
      if (!repositories_.contains(name))
        return aws_error(400, "RepositoryNotFoundException",
                         "The repository with name '" + name + "' does not exist in the registry");
      return proxy::json_response(200, nlohmann::json{{"repositories", {{{"repositoryName", name}}}}}.dump());
    }
    if (operation == "CreateRepository") {
      auto const name = json.value("repositoryName", std::string());
      if (!repositories_.insert(name).second)
        return aws_error(400, "RepositoryAlreadyExistsException", "The repository already exists");
      return proxy::json_response(200, nlohmann::json{{"repository", {{"repositoryName", name}}}}.dump());
    }
    return aws_error(400, "UnknownOperationException", "unknown operation " + operation);
  }

  // STS AssumeRole (called with mutex_ held). STS names its errors without "Exception".
  proxy::Response assume_role(proxy::Request const& request, std::string const& body) {
    std::string key_id;
    if (auto refusal = verify(request, body, "sts", key_id)) {
      if (refusal->type == "UnrecognizedClientException") refusal->type = "InvalidClientTokenId";
      if (refusal->type == "InvalidSignatureException") refusal->type = "SignatureDoesNotMatch";
      if (refusal->type == "ExpiredTokenException") refusal->type = "ExpiredToken";
      if (refusal->type == "IncompleteSignatureException") refusal->type = "IncompleteSignature";
      return sts_error(*refusal);
    }
    auto fields = form_fields(body);
    if (fields["Action"] != "AssumeRole" || fields["Version"] != "2011-06-15")
      return sts_error(
          {400, "InvalidAction", "Could not find operation " + fields["Action"] + " for version " + fields["Version"]});
    operations_.insert("AssumeRole");
    signed_by_.emplace_back("AssumeRole", key_id);
    auto const& caller = identities_.at(key_id);
    auto const& role_arn = fields["RoleArn"];
    auto const role = roles_.find(role_arn);
    auto const denied = Refusal{
        403, "AccessDenied",
        "User: " + caller.caller_arn + " is not authorized to perform: sts:AssumeRole on resource: " + role_arn};
    if (role == roles_.end() || !role->second.trusted.contains(caller.principal)) return sts_error(denied);
    if (fields["ExternalId"] != role->second.external_id) return sts_error(denied);
    auto const& session = fields["RoleSessionName"];
    if (session.size() < 2 || session.size() > 64)
      return sts_error(
          {400, "ValidationError",
           "1 validation error detected: Value '" + session + "' at 'roleSessionName' failed to satisfy constraint"});
    int duration = 3600;
    if (fields.contains("DurationSeconds")) duration = std::stoi(fields["DurationSeconds"]);
    if (duration < 900 || duration > 43200)
      return sts_error({400, "ValidationError",
                        "1 validation error detected: Value '" + std::to_string(duration) +
                            "' at 'durationSeconds' failed to satisfy constraint"});
    if (!caller.session_token.empty() && duration > 3600)
      return sts_error({400, "ValidationError",
                        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
                        "chaining."});

    auto const issued = ++issued_;
    auto const new_key = "ASIASTANDIN" + std::to_string(1000 + issued);
    auto const expires = std::chrono::system_clock::now() + std::chrono::seconds(duration);
    auto const role_name = role_arn.substr(role_arn.rfind('/') + 1);
    auto const account = role_arn.substr(13, role_arn.find(':', 13) - 13);  // arn:aws:iam::ACCOUNT:role/...
    Identity identity{"temporary-secret-" + std::to_string(issued) + "/+x", "session-token-" + std::to_string(issued),
                      expires, role_arn, "arn:aws:sts::" + account + ":assumed-role/" + role_name + "/" + session};
    identities_[new_key] = identity;
    proxy::Response response;
    response.headers.set("Content-Type", "text/xml");
    response.body =
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n<AssumeRoleResult>\n"
        "<AssumedRoleUser><Arn>" +
        identity.caller_arn + "</Arn><AssumedRoleId>AROASTANDIN:" + session +
        "</AssumedRoleId></AssumedRoleUser>\n<Credentials>\n<AccessKeyId>" + new_key +
        "</AccessKeyId>\n<SecretAccessKey>" + identity.secret + "</SecretAccessKey>\n<SessionToken>" +
        identity.session_token + "</SessionToken>\n<Expiration>" + iso8601(expires) +
        "</Expiration>\n</Credentials>\n</AssumeRoleResult>\n<ResponseMetadata><RequestId>" + std::to_string(issued) +
        "</RequestId></ResponseMetadata>\n</AssumeRoleResponse>\n";
    return response;
  }

  struct Identity {
    std::string secret;
    std::string session_token;  // "" for long-term keys
    std::chrono::system_clock::time_point expires;
    std::string principal;   // what trust policies name: the user ARN, or the assumed role's ARN
    std::string caller_arn;  // what error messages name
  };
  struct Role {
    std::string external_id;
    std::set<std::string> trusted;
  };

  std::string region_;
  std::string password_;
  std::string endpoint_;
  TempDir dir_;
  proxy::TlsMaterial material_;
  std::unique_ptr<proxy::Server> server_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::multiset<std::string> operations_;
  std::vector<std::pair<std::string, std::string>> signed_by_;  // operation, access key ID
  std::set<std::string> repositories_;
  std::map<std::string, Identity> identities_;  // by access key ID
  std::map<std::string, Role> roles_;           // by ARN
  int issued_ = 0;
};

}  // namespace berth::testing

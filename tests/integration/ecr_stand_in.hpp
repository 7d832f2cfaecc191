// A local stand-in for the ECR control plane: an HTTPS endpoint (berth's own server, TLS with a
// CA of its own) that checks every request's SigV4 signature by recomputing it with the signer
// from the request it received, refuses an unknown key, a wrong secret, a date more than 5
// minutes off and an expired session token the way AWS does, and answers
// GetAuthorizationToken (the token is the Basic password of user AWS on the registry the test
// runs next to it), DescribeRepositories and CreateRepository.
#pragma once

#include <atomic>
#include <chrono>
#include <ctime>
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

  /// `registry_password`: what GetAuthorizationToken hands out as user AWS's password;
  /// `registry_endpoint`: its proxyEndpoint ("https://127.0.0.1:PORT").
  EcrStandIn(std::string region, std::string registry_password, std::string registry_endpoint)
      : region_(std::move(region)), password_(std::move(registry_password)), endpoint_(std::move(registry_endpoint)) {
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

  proxy::Response answer(proxy::Request const& request, std::string const& body) {
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
    auto const key_id = credential.substr(0, credential.find('/'));
    if (!authorization.starts_with("AWS4-HMAC-SHA256 ") || credential.empty())
      return aws_error(400, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter.");
    if (key_id != access_key)
      return aws_error(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
    auto const time = parse_amz_date(date_text);
    if (!time) return aws_error(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed.");
    auto const skew = std::chrono::system_clock::now() - *time;
    if (skew > std::chrono::minutes(5) || skew < -std::chrono::minutes(5))
      return aws_error(400, "InvalidSignatureException",
                       "Signature expired: " + date_text + " is now earlier than the allowed window.");

    // Recompute the signature from what arrived: the signed headers except those the signer adds.
    registry::sigv4::Credentials credentials{access_key, secret_key,
                                             std::string(request.headers.get("X-Amz-Security-Token").value_or(""))};
    std::vector<registry::sigv4::Header> headers;
    auto signed_names = field("SignedHeaders");
    for (std::size_t start = 0; start <= signed_names.size();) {
      auto end = signed_names.find(';', start);
      if (end == std::string::npos) end = signed_names.size();
      auto name = signed_names.substr(start, end - start);
      start = end + 1;
      if (name == "x-amz-date" || name == "x-amz-security-token") continue;
      headers.push_back({name, std::string(request.headers.get(name).value_or(""))});
    }
    std::string expected;
    try {
      auto const signature = registry::sigv4::sign({"POST", request.target, headers, body}, credentials,
                                                   {.region = region_, .service = "ecr"}, *time);
      expected = signature.authorization;
    } catch (std::exception const& error) {
      return aws_error(400, "IncompleteSignatureException", error.what());
    }
    if (expected != authorization)
      return aws_error(400, "InvalidSignatureException",
                       "The request signature we calculated does not match the signature you provided.");
    if (credentials.session_token == expired_session_token)
      return aws_error(400, "ExpiredTokenException", "The security token included in the request is expired");

    auto const target = std::string(request.headers.get("X-Amz-Target").value_or(""));
    auto const operation = target.substr(target.find('.') + 1);
    auto const json = nlohmann::json::parse(body, nullptr, false);
    std::lock_guard lock(mutex_);
    operations_.insert(operation);
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

  std::string region_;
  std::string password_;
  std::string endpoint_;
  TempDir dir_;
  proxy::TlsMaterial material_;
  std::unique_ptr<proxy::Server> server_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::multiset<std::string> operations_;
  std::set<std::string> repositories_;
};

}  // namespace berth::testing

// The Docker token flow through a Router, without sockets: challenges, the token endpoint,
// Bearer and Basic credentials, DENIED, and anonymous pull next to authenticated push.
#include "berth/proxy/auth.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "front_door_requests.hpp"

namespace berth::proxy {
namespace {

using testing::basic;

// A stand-in for the registry's rule: /v2/<repo>/x → (repo, action by method).
std::optional<RequiredAccess> test_rule(Request const& request) {
  auto const path = std::string_view(request.path).substr(4);
  if (path.empty()) return std::nullopt;
  if (path == "_catalog") return RequiredAccess{{}, Action::catalog};
  auto const repository = std::string(path.substr(0, path.rfind('/')));
  switch (request.method) {
    case Method::get: return RequiredAccess{repository, Action::pull};
    case Method::delete_: return RequiredAccess{repository, Action::delete_};
    default: return RequiredAccess{repository, Action::push};
  }
}

class FrontDoor : public ::testing::Test {
protected:
  FrontDoor() {
    auto passwords = std::make_shared<PasswordChecker const>(std::map<std::string, std::string>{
        {"alice", hash_password("alice-pw", 4)}, {"bob", hash_password("bob-pw", 4)}});
    AccessPolicy policy({Grant{.users = {"alice"}, .actions = {Action::pull, Action::push}, .repositories = {"api"}},
                         Grant{.users = {"bob"}, .actions = {Action::pull}, .repositories = {"api"}},
                         Grant{.users = {"alice"}, .actions = {Action::catalog}},
                         Grant{.anonymous = true, .actions = {Action::pull}, .repositories = {"site"}}},
                        {});
    authenticator_ = std::make_shared<Authenticator const>(AuthConfig{.service = "berth-test"}, passwords,
                                                           std::move(policy), TokenKey::generate());
    add_authentication(router_, authenticator_, "/v2/", test_rule);
    router_.add_prefix("/v2/", [](Request const&) -> Reply { return json_response(200, "{\"reached\":true}"); });
  }

  static Request make(Method method, std::string const& target,
                      std::optional<std::string> authorization = std::nullopt) {
    return testing::make_request(method, target, std::move(authorization));
  }

  // "200", or "STATUS CODE" of the error.
  std::string outcome(Request const& request, HttpError* caught = nullptr) const {
    try {
      auto const reply = router_.dispatch(request);
      return std::to_string(std::get<Response>(reply).status);
    } catch (HttpError const& error) {
      if (caught) *caught = error;
      return std::to_string(error.status()) + " " + error.code();
    }
  }

  std::string token_for(std::optional<std::string> authorization, std::string const& query) const {
    auto const reply = router_.dispatch(make(Method::get, "/token?" + query, authorization));
    auto const body = nlohmann::json::parse(std::get<std::string>(std::get<Response>(reply).body));
    EXPECT_EQ(body["token"], body["access_token"]);
    EXPECT_EQ(body["expires_in"], 300);
    EXPECT_TRUE(body.contains("issued_at"));
    return body["token"];
  }

  Router router_;
  std::shared_ptr<Authenticator const> authenticator_;
};

TEST_F(FrontDoor, UnauthenticatedRequestsGetABearerChallenge) {
  HttpError error(0, "", "");
  EXPECT_EQ(outcome(make(Method::get, "/v2/"), &error), "401 UNAUTHORIZED");
  EXPECT_EQ(error.headers.get("WWW-Authenticate"),
            "Bearer realm=\"http://registry.test:5000/token\",service=\"berth-test\"");
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/orders/manifests"), &error), "401 UNAUTHORIZED");
  EXPECT_EQ(error.headers.get("WWW-Authenticate"),
            "Bearer realm=\"http://registry.test:5000/token\",service=\"berth-test\","
            "scope=\"repository:api/orders:pull,push\"");
  EXPECT_EQ(outcome(make(Method::get, "/v2/_catalog"), &error), "401 UNAUTHORIZED");
  EXPECT_NE(error.headers.get("WWW-Authenticate")->find("scope=\"registry:catalog:*\""), std::string::npos);
  // A Host header that would break out of the quoted realm is not echoed.
  auto request = make(Method::get, "/v2/");
  request.headers.set("Host", "evil\",x=\"y");
  outcome(request, &error);
  EXPECT_EQ(error.headers.get("WWW-Authenticate"), "Bearer realm=\"http://localhost/token\",service=\"berth-test\"");
}

TEST_F(FrontDoor, TokenCarriesOnlyTheGrantedActions) {
  auto const token = token_for(basic("bob", "bob-pw"),
                               "account=bob&service=berth-test&scope=repository%3Aapi%2Forders%3Apull%2Cpush"
                               "&scope=repository:model/x:pull&scope=registry:catalog:*");
  auto const claims = TokenKey::generate().verify(token, "berth-test", std::chrono::system_clock::now());
  EXPECT_FALSE(claims);  // signed by the authenticator's key, not any other
  auto const payload = nlohmann::json::parse(
      *base64url_decode(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1)));
  EXPECT_EQ(payload["sub"], "bob");
  EXPECT_EQ(payload["aud"], "berth-test");
  EXPECT_EQ(payload["access"],
            nlohmann::json::parse(R"([{"type":"repository","name":"api/orders","actions":["pull"]}])"));

  auto const alice = token_for(basic("alice", "alice-pw"),
                               "scope=repository:api/orders:pull,push,delete "
                               "registry:catalog:*");
  auto const alice_payload = nlohmann::json::parse(
      *base64url_decode(alice.substr(alice.find('.') + 1, alice.rfind('.') - alice.find('.') - 1)));
  EXPECT_EQ(alice_payload["access"],
            nlohmann::json::parse(R"([{"type":"repository","name":"api/orders","actions":["pull","push"]},)"
                                  R"({"type":"registry","name":"catalog","actions":["*"]}])"));
}

TEST_F(FrontDoor, TokenEndpointRefusesWrongPasswordsAndOtherServices) {
  EXPECT_EQ(outcome(make(Method::get, "/token?scope=repository:api/x:pull", basic("alice", "nope"))),
            "401 UNAUTHORIZED");
  EXPECT_EQ(outcome(make(Method::get, "/token?scope=repository:api/x:pull", basic("nobody", "alice-pw"))),
            "401 UNAUTHORIZED");
  EXPECT_EQ(outcome(make(Method::get, "/token?service=other", basic("alice", "alice-pw"))), "400 UNSUPPORTED");
  EXPECT_EQ(outcome(make(Method::get, "/token?scope=garbage", basic("alice", "alice-pw"))), "400 UNSUPPORTED");
}

TEST_F(FrontDoor, BearerTokenOpensExactlyItsScope) {
  auto const token = "Bearer " + token_for(basic("alice", "alice-pw"), "scope=repository:api/orders:pull,push");
  EXPECT_EQ(outcome(make(Method::get, "/v2/")), "401 UNAUTHORIZED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/", token)), "200");
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/orders/manifests", token)), "200");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/manifests", token)), "200");
  // Alice may push api/other too, but this token was not asked for it: fetch another.
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/other/manifests", token)), "401 UNAUTHORIZED");
  // Nobody granted her delete: that is a denial, not a missing scope.
  HttpError error(0, "", "");
  EXPECT_EQ(outcome(make(Method::delete_, "/v2/api/orders/manifests", token), &error), "403 DENIED");
  EXPECT_EQ(std::string(error.what()),
            "requested access to the resource is denied: delete access to repository api/orders is not granted to "
            "user alice; an administrator grants it under access: in berth.yaml (- users: [alice]  actions: [pull, "
            "delete]  repositories: [api/orders]), then restarts berth");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/x", "Bearer " + std::string("e30.e30.e30"))), "401 UNAUTHORIZED");
}

TEST_F(FrontDoor, PullOnlyUserIsDeniedPush) {
  auto const token = "Bearer " + token_for(basic("bob", "bob-pw"), "scope=repository:api/orders:pull,push");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/manifests", token)), "200");
  HttpError error(0, "", "");
  EXPECT_EQ(outcome(make(Method::post, "/v2/api/orders/blobs", token), &error), "403 DENIED");
  EXPECT_EQ(std::string(error.what()),
            "requested access to the resource is denied: push access to repository api/orders is not granted to user "
            "bob; an administrator grants it under access: in berth.yaml (- users: [bob]  actions: [pull, push]  "
            "repositories: [api/orders]), then restarts berth");
  // The same with Basic credentials directly.
  EXPECT_EQ(outcome(make(Method::post, "/v2/api/orders/blobs", basic("bob", "bob-pw"))), "403 DENIED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/blobs", basic("bob", "bob-pw"))), "200");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/blobs", basic("bob", "alice-pw"))), "401 UNAUTHORIZED");
}

TEST_F(FrontDoor, AnonymousPullOnOneNamespaceKeepsPushAuthenticated) {
  EXPECT_EQ(outcome(make(Method::get, "/v2/site/web/manifests")), "200");
  EXPECT_EQ(outcome(make(Method::put, "/v2/site/web/manifests")), "401 UNAUTHORIZED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/orders/manifests")), "401 UNAUTHORIZED");
  auto const anonymous = "Bearer " + token_for(std::nullopt, "scope=repository:site/web:pull,push");
  EXPECT_EQ(outcome(make(Method::get, "/v2/site/web/manifests", anonymous)), "200");
  // An anonymous token without push: asked to sign in (401), so that clients prompt for a login.
  EXPECT_EQ(outcome(make(Method::put, "/v2/site/web/manifests", anonymous)), "401 UNAUTHORIZED");
  auto const alice = "Bearer " + token_for(basic("alice", "alice-pw"), "scope=repository:api/web:pull,push");
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/web/manifests", alice)), "200");
}

TEST_F(FrontDoor, CatalogNeedsTheCatalogGrant) {
  EXPECT_EQ(outcome(make(Method::get, "/v2/_catalog", basic("alice", "alice-pw"))), "200");
  EXPECT_EQ(outcome(make(Method::get, "/v2/_catalog", basic("bob", "bob-pw"))), "403 DENIED");
  auto const token = "Bearer " + token_for(basic("bob", "bob-pw"), "scope=registry:catalog:*");
  EXPECT_EQ(outcome(make(Method::get, "/v2/_catalog", token)), "403 DENIED");
}

TEST_F(FrontDoor, RoutesOutsideThePrefixAreNotGuarded) {
  router_.add(Method::get, "/healthz", [](Request const&) -> Reply { return json_response(200, "{}"); });
  EXPECT_EQ(outcome(make(Method::get, "/healthz")), "200");
}

}  // namespace
}  // namespace berth::proxy

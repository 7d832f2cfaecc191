// ES256 tokens: a round trip, and every kind of token that must be refused.
#include "berth/proxy/jwt.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::proxy {
namespace {

using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

TokenClaims claims_at(Clock::time_point now) {
  TokenClaims claims;
  claims.issuer = "berth";
  claims.subject = "alice";
  claims.audience = "berth";
  claims.issued_at = claims.not_before = now;
  claims.expires_at = now + 5min;
  claims.id = "id-1";
  claims.access = {{"repository", "api/orders", {"pull", "push"}}, {"registry", "catalog", {"*"}}};
  return claims;
}

struct Parts {
  std::string header, payload, signature;
};
Parts split(std::string const& token) {
  auto const first = token.find('.');
  auto const second = token.find('.', first + 1);
  return {token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1)};
}

TEST(Jwt, SignedTokenVerifiesWithItsClaims) {
  auto const key = TokenKey::generate();
  auto const now = Clock::now();
  auto const token = key.sign(claims_at(now));
  auto const parts = split(token);
  EXPECT_EQ(base64url_decode(parts.signature)->size(), 64u);  // raw r||s, not DER
  EXPECT_EQ(token.find('='), std::string::npos);
  auto const header = nlohmann::json::parse(*base64url_decode(parts.header));
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["kid"], key.key_id());

  auto const claims = key.verify(token, "berth", now + 1min);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->issuer, "berth");
  EXPECT_EQ(claims->id, "id-1");
  EXPECT_EQ(claims->access, claims_at(now).access);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(claims->expires_at - claims->issued_at), 300s);
}

TEST(Jwt, SignaturesWithShortRAndSVerify) {
  // r and s are fixed-width 32 bytes in JOSE; one in 128 signatures has a leading zero byte in
  // r or s that a conversion without padding would drop. 200 tokens hit that most of the time.
  auto const key = TokenKey::generate();
  auto const now = Clock::now();
  for (int token_idx = 0; token_idx < 200; ++token_idx) {
    auto claims = claims_at(now);
    claims.id = std::to_string(token_idx);
    ASSERT_TRUE(key.verify(key.sign(claims), "berth", now)) << token_idx;
  }
}

TEST(Jwt, RefusesForgedExpiredWrongAudienceAndUnsignedTokens) {
  auto const key = TokenKey::generate();
  auto const now = Clock::now();
  auto const token = key.sign(claims_at(now));
  auto const parts = split(token);

  // Another key's signature.
  EXPECT_FALSE(key.verify(TokenKey::generate().sign(claims_at(now)), "berth", now));
  // A payload changed after signing (more access).
  auto payload = nlohmann::json::parse(*base64url_decode(parts.payload));
  payload["access"][0]["actions"] = {"pull", "push", "delete"};
  auto const tampered = parts.header + "." + base64url_encode(payload.dump()) + "." + parts.signature;
  EXPECT_FALSE(key.verify(tampered, "berth", now));
  // alg none, with and without a signature.
  auto const none = base64url_encode(R"({"alg":"none","typ":"JWT"})");
  EXPECT_FALSE(key.verify(none + "." + parts.payload + ".", "berth", now));
  EXPECT_FALSE(key.verify(none + "." + parts.payload + "." + parts.signature, "berth", now));
  // Another algorithm named in the header over a valid signature.
  auto const hs256 = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  EXPECT_FALSE(key.verify(hs256 + "." + parts.payload + "." + parts.signature, "berth", now));
  // Expired (beyond the leeway), not yet valid, and for another service.
  EXPECT_FALSE(key.verify(token, "berth", now + 5min + 31s));
  EXPECT_TRUE(key.verify(token, "berth", now + 5min + 29s));
  EXPECT_FALSE(key.verify(token, "berth", now - 31s));
  EXPECT_FALSE(key.verify(token, "other-registry", now));
  // Garbage.
  for (auto const* junk : {"", "a.b", "a.b.c", "a.b.c.d", "....", "eyJ.eyJ.%%%"})
    EXPECT_FALSE(key.verify(junk, "berth", now)) << junk;
}

TEST(Jwt, KeyIsMadeOnceAndKept) {
  berth::testing::TempDir dir;
  auto const file = dir.path() / "secrets" / "token-signing-key.pem";
  auto const first = TokenKey::load_or_create(file);
  struct stat status {};
  ASSERT_EQ(::stat(file.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  auto const second = TokenKey::load_or_create(file);
  EXPECT_EQ(first.key_id(), second.key_id());
  auto const now = Clock::now();
  EXPECT_TRUE(second.verify(first.sign(claims_at(now)), "berth", now));
  // The real openssl reads it as a P-256 key.
  auto const check = berth::testing::run({"/usr/bin/openssl", "ec", "-in", file.string(), "-noout", "-text"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("prime256v1"), std::string::npos) << check.output;

  auto const bad = dir.write("bad.pem", "not a key\n");
  try {
    TokenKey::load_or_create(bad);
    FAIL() << "expected an error";
  } catch (Error const& error) {
    EXPECT_TRUE(std::string(error.what())
                    .starts_with("token signing key " + bad.string() + " is not a PEM P-256 private key\nHINT: "))
        << error.what();
  }
}

TEST(Base64Url, RoundTripsWithoutPadding) {
  for (std::string const& text :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00", 3)})
    EXPECT_EQ(base64url_decode(base64url_encode(text)), text);
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("ab=c"));
  EXPECT_FALSE(base64url_decode("a"));
  EXPECT_FALSE(base64url_decode("-_9"));  // non-zero leftover bits: "-_8" is the one spelling
}

}  // namespace
}  // namespace berth::proxy

// Registry bearer tokens: JSON Web Tokens signed with ES256 (ECDSA P-256, SHA-256), carrying
// the Docker token spec's `access` claim. The signing key is made once and kept in a PEM file;
// the same key verifies, since berth is both the token server and the registry.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/core/error.hpp"

namespace berth::proxy {

/// One entry of the `access` claim: e.g. {"repository", "api/orders", {"pull", "push"}}.
struct ResourceAccess {
  std::string type;
  std::string name;
  std::vector<std::string> actions;
  bool operator==(ResourceAccess const&) const = default;
};

struct TokenClaims {
  std::string issuer;
  std::string subject;  ///< the user; empty for an anonymous token
  std::string audience;
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point expires_at;
  std::string id;  ///< jti: random, unique per token
  std::vector<ResourceAccess> access;
};

class TokenKey {
public:
  /// Loads the P-256 private key from `pem_file`, or makes one and writes it there (mode 0600,
  /// directory created 0700) when the file does not exist. Throws berth::Error when the file
  /// cannot be read, written or is not a P-256 key.
  static TokenKey load_or_create(std::filesystem::path const& pem_file);
  /// A fresh key kept only in memory (tests).
  static TokenKey generate();

  TokenKey(TokenKey&&) noexcept;
  TokenKey& operator=(TokenKey&&) noexcept;
  ~TokenKey();

  /// The compact JWS "header.payload.signature" (base64url, no padding). Thread-safe.
  std::string sign(TokenClaims const& claims) const;

  /// The claims of `token` if its signature is ours (alg ES256 only: "none" and every other
  /// algorithm are refused), its audience is `audience`, and `now` lies within
  /// [nbf - leeway, exp + leeway]; nullopt otherwise. Thread-safe.
  std::optional<TokenClaims> verify(std::string_view token, std::string_view audience,
                                    std::chrono::system_clock::time_point now,
                                    std::chrono::seconds leeway = std::chrono::seconds(30)) const;

  /// The key id in the token header: a short hash of the public key.
  std::string const& key_id() const { return key_id_; }

private:
  struct Key;
  explicit TokenKey(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

/// base64url without padding (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);
/// nullopt for text that is not unpadded base64url.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace berth::proxy

// Content digests ("sha256:<hex>") and streaming hashing with OpenSSL. A Digest is always
// valid once constructed: its text is safe to use as a file name.
#pragma once

#include <compare>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace berth::registry {

enum class DigestAlgorithm { sha256, sha512 };

class Digest {
public:
  /// Parses "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>"; nullopt for anything
  /// else (other algorithms, upper case, wrong length, stray characters).
  static std::optional<Digest> parse(std::string_view text);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;  ///< "sha256" or "sha512"
  std::string const& hex() const { return hex_; }
  std::string to_string() const;  ///< "sha256:<hex>"

  friend bool operator==(Digest const&, Digest const&) = default;
  friend auto operator<=>(Digest const& a, Digest const& b) { return a.to_string() <=> b.to_string(); }

private:
  Digest(DigestAlgorithm algorithm, std::string hex) : algorithm_(algorithm), hex_(std::move(hex)) {}
  DigestAlgorithm algorithm_;
  std::string hex_;
};

/// Incremental hashing for streamed bodies. Not thread-safe; movable.
class Hasher {
public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::sha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(std::span<char const> bytes);
  /// The digest of everything given so far. The hasher cannot be used afterwards.
  Digest finish();

private:
  struct Context;
  std::unique_ptr<Context> context_;
  DigestAlgorithm algorithm_;
};

/// The digest of `bytes`.
Digest digest_of(std::string_view bytes, DigestAlgorithm algorithm = DigestAlgorithm::sha256);

}  // namespace berth::registry

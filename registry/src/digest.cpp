// Digest parsing and streaming SHA-256/SHA-512 through OpenSSL's EVP interface. Only the
// algorithms the OCI spec registers are accepted; a digest that passes parse() is plain
// lowercase hex and so safe to use as a path component.
#include "berth/registry/digest.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>
#include <utility>

#include "berth/core/error.hpp"

namespace berth::registry {
namespace {

constexpr std::string_view sha256_prefix = "sha256:";
constexpr std::string_view sha512_prefix = "sha512:";

bool is_lower_hex(std::string_view text) {
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string_view name_of(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::sha256 ? "sha256" : "sha512";
}

[[noreturn]] void throw_openssl_error(std::string what) {
  // The queue may hold several entries; the oldest one names the root cause.
  if (unsigned long code = ERR_get_error(); code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    what += ": ";
    what += text.data();
  }
  ERR_clear_error();
  throw Error(what);
}

}  // namespace

std::optional<Digest> Digest::parse(std::string_view text) {
  DigestAlgorithm algorithm;
  std::string_view hex;
  if (text.starts_with(sha256_prefix)) {
    algorithm = DigestAlgorithm::sha256;
    hex = text.substr(sha256_prefix.size());
    if (hex.size() != 64) return std::nullopt;
  } else if (text.starts_with(sha512_prefix)) {
    algorithm = DigestAlgorithm::sha512;
    hex = text.substr(sha512_prefix.size());
    if (hex.size() != 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!is_lower_hex(hex)) return std::nullopt;
  return Digest(algorithm, std::string(hex));
}

std::string_view Digest::algorithm_name() const {
  return name_of(algorithm_);
}

std::string Digest::to_string() const {
  std::string text(algorithm_name());
  text += ':';
  text += hex_;
  return text;
}

struct Hasher::Context {
  EVP_MD_CTX* md_ctx = nullptr;

  Context() = default;
  Context(Context const&) = delete;
  Context& operator=(Context const&) = delete;
  ~Context() { EVP_MD_CTX_free(md_ctx); }
};

Hasher::Hasher(DigestAlgorithm algorithm) : context_(std::make_unique<Context>()), algorithm_(algorithm) {
  context_->md_ctx = EVP_MD_CTX_new();
  if (context_->md_ctx == nullptr) throw_openssl_error("cannot create an openssl digest context");
  EVP_MD const* md = algorithm == DigestAlgorithm::sha256 ? EVP_sha256() : EVP_sha512();
  if (EVP_DigestInit_ex(context_->md_ctx, md, nullptr) != 1)
    throw_openssl_error("cannot start " + std::string(name_of(algorithm)) + " hashing");
}

// Defined here, where Context is complete, so unique_ptr can destroy it. A moved-from hasher
// holds a null context_, which the destructor and the checks below handle.
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(std::span<char const> bytes) {
  if (!context_)
    throw Error("cannot update a " + std::string(name_of(algorithm_)) + " hasher that was finished or moved from");
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(context_->md_ctx, bytes.data(), bytes.size()) != 1)
    throw_openssl_error("cannot update " + std::string(name_of(algorithm_)) + " hash");
}

Digest Hasher::finish() {
  if (!context_)
    throw Error("cannot finish a " + std::string(name_of(algorithm_)) + " hasher that was finished or moved from");
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_size = 0;
  if (EVP_DigestFinal_ex(context_->md_ctx, md.data(), &md_size) != 1)
    throw_openssl_error("cannot finish " + std::string(name_of(algorithm_)) + " hash");
  context_.reset();

  constexpr std::string_view hex_digits = "0123456789abcdef";
  std::string text(name_of(algorithm_));
  text += ':';
  for (unsigned int byte_idx = 0; byte_idx < md_size; ++byte_idx) {
    text += hex_digits[md[byte_idx] >> 4];
    text += hex_digits[md[byte_idx] & 0x0f];
  }
  // Digest's constructor is private to Digest; going through parse() also re-checks the length.
  auto digest = Digest::parse(text);
  if (!digest) throw Error("openssl produced a malformed digest " + text);
  return *std::move(digest);
}

Digest digest_of(std::string_view bytes, DigestAlgorithm algorithm) {
  Hasher hasher(algorithm);
  hasher.update(bytes);
  return hasher.finish();
}

}  // namespace berth::registry

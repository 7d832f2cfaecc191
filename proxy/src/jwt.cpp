// ES256 JSON Web Tokens with OpenSSL's EVP interface. OpenSSL produces and expects DER-encoded
// ECDSA signatures; JOSE wants the raw 64-byte r||s, so both directions convert.
#include "berth/proxy/jwt.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <nlohmann/json.hpp>

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

constexpr std::size_t coordinate_bytes = 32;  // P-256

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* pointer) const { Free(pointer); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::int64_t to_seconds(Clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}
Clock::time_point from_seconds(std::int64_t seconds) {
  return Clock::time_point(std::chrono::seconds(seconds));
}

bool is_p256(EVP_PKEY* key) {
  char group[64] = {};
  std::size_t length = 0;
  return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_group_name(key, group, sizeof group, &length) == 1 &&
         std::string_view(group) == "prime256v1";
}

std::string sha256(std::string_view bytes) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<unsigned char const*>(bytes.data()), bytes.size(), digest.data());
  return {reinterpret_cast<char const*>(digest.data()), digest.size()};
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char byte : bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += alphabet[(buffer << (6 - bits)) & 0x3f];
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    auto const* found = std::strchr(alphabet, ch);
    if (ch == '\0' || found == nullptr) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(found - alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero: otherwise two texts would decode to the same bytes.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

struct TokenKey::Key {
  PkeyPtr pkey;
};

TokenKey::TokenKey(std::unique_ptr<Key> key) : key_(std::move(key)) {
  unsigned char* der = nullptr;
  int const length = i2d_PUBKEY(key_->pkey.get(), &der);
  if (length <= 0) throw Error("cannot encode the token signing key's public part");
  auto const digest = sha256(std::string_view(reinterpret_cast<char const*>(der), static_cast<std::size_t>(length)));
  OPENSSL_free(der);
  key_id_ = base64url_encode(digest.substr(0, 12));
}

TokenKey::TokenKey(TokenKey&&) noexcept = default;
TokenKey& TokenKey::operator=(TokenKey&&) noexcept = default;
TokenKey::~TokenKey() = default;

TokenKey TokenKey::generate() {
  PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!pkey) throw Error("cannot generate a P-256 token signing key");
  return TokenKey(std::make_unique<Key>(Key{std::move(pkey)}));
}

TokenKey TokenKey::load_or_create(fs::path const& pem_file) {
  auto const hint =
      "\nHINT: the key is made on first start; remove a damaged file to make a new one (issued "
      "tokens then stop working, clients sign in again)";
  if (FILE* in = std::fopen(pem_file.c_str(), "re")) {
    PkeyPtr pkey(PEM_read_PrivateKey(in, nullptr, nullptr, nullptr));
    std::fclose(in);
    if (!pkey || !is_p256(pkey.get()))
      throw Error("token signing key " + pem_file.string() + " is not a PEM P-256 private key" + hint);
    return TokenKey(std::make_unique<Key>(Key{std::move(pkey)}));
  }
  if (errno != ENOENT)
    throw Error("cannot read token signing key " + pem_file.string() + ": " + std::strerror(errno) + hint);

  auto key = generate();
  std::error_code ec;
  fs::create_directories(pem_file.parent_path(), ec);
  fs::permissions(pem_file.parent_path(), fs::perms::owner_all, ec);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.key_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw Error("cannot encode the token signing key");
  char* data = nullptr;
  auto const size = static_cast<std::size_t>(BIO_get_mem_data(bio.get(), &data));
  // link() fails when the file exists: of two processes racing to create the key, one keeps it.
  auto const temp = pem_file.string() + ".new";
  int const fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, data, size) == static_cast<ssize_t>(size) && ::fsync(fd) == 0;
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  if (!ok || ::link(temp.c_str(), pem_file.c_str()) != 0) {
    int const error_number = errno;
    ::unlink(temp.c_str());
    if (error_number == EEXIST) return load_or_create(pem_file);
    throw Error("cannot write token signing key " + pem_file.string() + ": " + std::strerror(error_number) +
                "\nHINT: the directory must be writable by the user berth runs as");
  }
  ::unlink(temp.c_str());
  return key;
}

std::string TokenKey::sign(TokenClaims const& claims) const {
  nlohmann::json header = {{"alg", "ES256"}, {"typ", "JWT"}, {"kid", key_id_}};
  auto access = nlohmann::json::array();
  for (auto const& entry : claims.access)
    access.push_back({{"type", entry.type}, {"name", entry.name}, {"actions", entry.actions}});
  nlohmann::json payload = {{"iss", claims.issuer},
                            {"sub", claims.subject},
                            {"aud", claims.audience},
                            {"exp", to_seconds(claims.expires_at)},
                            {"nbf", to_seconds(claims.not_before)},
                            {"iat", to_seconds(claims.issued_at)},
                            {"jti", claims.id},
                            {"access", access}};
  auto const signing_input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());

  MdCtxPtr context(EVP_MD_CTX_new());
  std::size_t der_size = 0;
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &der_size, reinterpret_cast<unsigned char const*>(signing_input.data()),
                     signing_input.size()) != 1)
    throw Error("cannot sign a token");
  std::string der(der_size, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(der.data()), &der_size,
                     reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) != 1)
    throw Error("cannot sign a token");
  auto const* cursor = reinterpret_cast<unsigned char const*>(der.data());
  SigPtr signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der_size)));
  if (!signature) throw Error("cannot decode a token signature");
  std::string raw(2 * coordinate_bytes, '\0');
  BIGNUM const* r = nullptr;
  BIGNUM const* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), coordinate_bytes);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + coordinate_bytes, coordinate_bytes);
  return signing_input + "." + base64url_encode(raw);
}

std::optional<TokenClaims> TokenKey::verify(std::string_view token, std::string_view audience, Clock::time_point now,
                                            std::chrono::seconds leeway) const {
  auto const first_dot = token.find('.');
  auto const second_dot = token.find('.', first_dot == std::string_view::npos ? first_dot : first_dot + 1);
  if (first_dot == std::string_view::npos || second_dot == std::string_view::npos ||
      token.find('.', second_dot + 1) != std::string_view::npos)
    return std::nullopt;
  auto const header_text = base64url_decode(token.substr(0, first_dot));
  auto const payload_text = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  auto const raw = base64url_decode(token.substr(second_dot + 1));
  if (!header_text || !payload_text || !raw || raw->size() != 2 * coordinate_bytes) return std::nullopt;
  auto const header = nlohmann::json::parse(*header_text, nullptr, false);
  // Only the algorithm we sign with: "none" or an HMAC "signed" with the public key never pass.
  if (!header.is_object() || header.value("alg", "") != "ES256") return std::nullopt;

  SigPtr signature(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<unsigned char const*>(raw->data()), coordinate_bytes, nullptr);
  BIGNUM* s =
      BN_bin2bn(reinterpret_cast<unsigned char const*>(raw->data()) + coordinate_bytes, coordinate_bytes, nullptr);
  if (!signature || !r || !s || ECDSA_SIG_set0(signature.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int const der_size = i2d_ECDSA_SIG(signature.get(), &der);
  if (der_size <= 0) return std::nullopt;
  auto const signing_input = token.substr(0, second_dot);
  MdCtxPtr context(EVP_MD_CTX_new());
  bool const valid =
      context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) == 1 &&
      EVP_DigestVerify(context.get(), der, static_cast<std::size_t>(der_size),
                       reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) == 1;
  OPENSSL_free(der);
  if (!valid) return std::nullopt;

  auto const payload = nlohmann::json::parse(*payload_text, nullptr, false);
  if (!payload.is_object()) return std::nullopt;
  try {
    TokenClaims claims;
    claims.issuer = payload.at("iss").get<std::string>();
    claims.subject = payload.value("sub", "");
    auto const& aud = payload.at("aud");
    bool const audience_matches =
        aud.is_string() ? aud.get<std::string>() == audience
                        : aud.is_array() && std::any_of(aud.begin(), aud.end(), [&](nlohmann::json const& item) {
                            return item.is_string() && item.get<std::string>() == audience;
                          });
    if (!audience_matches) return std::nullopt;
    claims.audience = std::string(audience);
    claims.expires_at = from_seconds(payload.at("exp").get<std::int64_t>());
    claims.not_before = from_seconds(payload.value("nbf", std::int64_t{0}));
    claims.issued_at = from_seconds(payload.value("iat", std::int64_t{0}));
    claims.id = payload.value("jti", "");
    if (now > claims.expires_at + leeway || now + leeway < claims.not_before) return std::nullopt;
    for (auto const& entry : payload.value("access", nlohmann::json::array()))
      claims.access.push_back({entry.at("type").get<std::string>(), entry.at("name").get<std::string>(),
                               entry.at("actions").get<std::vector<std::string>>()});
    return claims;
  } catch (nlohmann::json::exception const&) {
    return std::nullopt;
  }
}

}  // namespace berth::proxy

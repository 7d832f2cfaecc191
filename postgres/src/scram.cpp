#include "scram.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>

#include "berth/core/error.hpp"

namespace berth::postgres::detail {

namespace {

constexpr int iterations = 4096;  // PostgreSQL's scram_iterations default

std::string base64(unsigned char const* data, std::size_t size) {
  std::string text(4 * ((size + 2) / 3), '\0');
  int const written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), data, static_cast<int>(size));
  text.resize(static_cast<std::size_t>(written));
  return text;
}

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest hmac(Digest const& key, std::string const& message) {
  Digest out{};
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<unsigned char const*>(message.data()), message.size(), out.data(), &size))
    throw Error("cannot compute a SCRAM verifier: HMAC failed");
  return out;
}

}  // namespace

std::string scram_verifier(std::string const& password) {
  std::array<unsigned char, 16> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    throw Error("cannot compute a SCRAM verifier: no random bytes");
  Digest salted{};
  // The password is ASCII hex, so SASLprep leaves it unchanged.
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(salted.size()), salted.data()) != 1)
    throw Error("cannot compute a SCRAM verifier: PBKDF2 failed");
  auto const client_key = hmac(salted, "Client Key");
  Digest stored_key{};
  SHA256(client_key.data(), client_key.size(), stored_key.data());
  auto const server_key = hmac(salted, "Server Key");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64(salt.data(), salt.size()) + "$" +
         base64(stored_key.data(), stored_key.size()) + ":" + base64(server_key.data(), server_key.size());
}

}  // namespace berth::postgres::detail

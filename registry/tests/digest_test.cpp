// Unit tests for Digest parsing and Hasher: published SHA-2 vectors, streaming against
// one-shot hashing, and the strings parse() must refuse because digests become file names.
#include "berth/registry/digest.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <compare>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "berth/core/error.hpp"

namespace berth::registry {
namespace {

constexpr std::string_view sha256_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view sha512_abc =
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
constexpr std::string_view sha512_empty =
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

std::string sha256_text(std::string_view hex) {
  return "sha256:" + std::string(hex);
}

TEST(Digest, HashesEmptyInputWithSha256) {
  auto digest = digest_of("");
  EXPECT_EQ(digest.algorithm(), DigestAlgorithm::sha256);
  EXPECT_EQ(digest.algorithm_name(), "sha256");
  EXPECT_EQ(digest.hex(), sha256_empty);
  EXPECT_EQ(digest.to_string(), sha256_text(sha256_empty));
}

TEST(Digest, HashesAbcWithSha256) {
  EXPECT_EQ(digest_of("abc").hex(), sha256_abc);
}

TEST(Digest, HashesAbcWithSha512) {
  auto digest = digest_of("abc", DigestAlgorithm::sha512);
  EXPECT_EQ(digest.algorithm(), DigestAlgorithm::sha512);
  EXPECT_EQ(digest.algorithm_name(), "sha512");
  EXPECT_EQ(digest.to_string(), "sha512:" + std::string(sha512_abc));
}

TEST(Digest, HashesEmptyInputWithSha512) {
  EXPECT_EQ(digest_of("", DigestAlgorithm::sha512).hex(), sha512_empty);
}

TEST(Digest, ParsesSha256AndRoundTrips) {
  auto digest = Digest::parse(sha256_text(sha256_abc));
  ASSERT_TRUE(digest);
  EXPECT_EQ(digest->algorithm(), DigestAlgorithm::sha256);
  EXPECT_EQ(digest->hex(), sha256_abc);
  EXPECT_EQ(digest->to_string(), sha256_text(sha256_abc));
  EXPECT_EQ(*digest, digest_of("abc"));
}

TEST(Digest, ParsesSha512) {
  auto digest = Digest::parse("sha512:" + std::string(sha512_abc));
  ASSERT_TRUE(digest);
  EXPECT_EQ(digest->algorithm(), DigestAlgorithm::sha512);
  EXPECT_EQ(*digest, digest_of("abc", DigestAlgorithm::sha512));
}

TEST(Digest, ComparesByText) {
  auto a = digest_of("a");
  auto b = digest_of("b");
  EXPECT_NE(a, b);
  EXPECT_EQ(a < b, a.to_string() < b.to_string());
  EXPECT_EQ(a <=> a, std::strong_ordering::equal);
}

TEST(Digest, RejectsUpperCaseHex) {
  std::string upper(sha256_abc);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(Digest::parse("sha256:" + upper));
  std::string one_upper(sha256_abc);
  one_upper[0] = 'B';
  EXPECT_FALSE(Digest::parse("sha256:" + one_upper));
  EXPECT_FALSE(Digest::parse("SHA256:" + std::string(sha256_abc)));
}

TEST(Digest, RejectsWrongLengths) {
  EXPECT_FALSE(Digest::parse("sha256:"));
  EXPECT_FALSE(Digest::parse(sha256_text(sha256_abc.substr(1))));
  EXPECT_FALSE(Digest::parse(sha256_text(sha256_abc) + "0"));
  EXPECT_FALSE(Digest::parse("sha512:" + std::string(sha256_abc)));
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(sha512_abc)));
  EXPECT_FALSE(Digest::parse("sha512:" + std::string(sha512_abc.substr(1))));
}

TEST(Digest, RejectsOtherAlgorithms) {
  EXPECT_FALSE(Digest::parse("sha384:" + std::string(96, 'a')));
  EXPECT_FALSE(Digest::parse("md5:" + std::string(32, 'a')));
  EXPECT_FALSE(Digest::parse("sha1:" + std::string(40, 'a')));
  EXPECT_FALSE(Digest::parse(":" + std::string(sha256_abc)));
}

TEST(Digest, RejectsMissingColon) {
  EXPECT_FALSE(Digest::parse("sha256" + std::string(sha256_abc)));
  EXPECT_FALSE(Digest::parse(sha256_abc));
  EXPECT_FALSE(Digest::parse(""));
}

TEST(Digest, RejectsStrayCharacters) {
  EXPECT_FALSE(Digest::parse(sha256_text(sha256_abc) + "\n"));
  EXPECT_FALSE(Digest::parse(" " + sha256_text(sha256_abc)));
  std::string with_nul = sha256_text(sha256_abc);
  with_nul[20] = '\0';
  EXPECT_FALSE(Digest::parse(with_nul));
  std::string non_hex = sha256_text(sha256_abc);
  non_hex[20] = 'g';
  EXPECT_FALSE(Digest::parse(non_hex));
}

TEST(Digest, RejectsPathTraversal) {
  EXPECT_FALSE(Digest::parse("sha256:../../etc/passwd"));
  std::string padded = "sha256:../../etc/passwd";
  padded.resize(7 + 64, '/');
  EXPECT_FALSE(Digest::parse(padded));
}

TEST(Hasher, StreamingInPiecesEqualsOneShot) {
  std::string data;
  for (int byte_idx = 0; byte_idx < 100000; ++byte_idx) data += static_cast<char>(byte_idx * 31 % 251);
  for (auto algorithm : {DigestAlgorithm::sha256, DigestAlgorithm::sha512}) {
    Hasher hasher(algorithm);
    std::size_t offset = 0;
    for (std::size_t piece = 1; offset < data.size(); piece = piece * 3 + 1) {
      auto const n = std::min(piece, data.size() - offset);
      hasher.update(std::span<char const>(data.data() + offset, n));
      offset += n;
    }
    hasher.update(std::span<char const>());
    EXPECT_EQ(hasher.finish(), digest_of(data, algorithm));
  }
}

TEST(Hasher, HashesAbcByteByByte) {
  Hasher hasher;
  for (char c : std::string("abc")) hasher.update(std::span<char const>(&c, 1));
  EXPECT_EQ(hasher.finish().hex(), sha256_abc);
}

TEST(Hasher, MovedHasherKeepsState) {
  Hasher first;
  first.update(std::string_view("a"));
  Hasher second(std::move(first));
  second.update(std::string_view("bc"));
  Hasher third(DigestAlgorithm::sha512);
  third = std::move(second);
  EXPECT_EQ(third.finish().hex(), sha256_abc);
}

TEST(Hasher, MovedFromHasherIsSafeToDestroyAndRefusesUse) {
  auto moved_from = std::make_unique<Hasher>();
  Hasher target(std::move(*moved_from));
  EXPECT_THROW(moved_from->update(std::string_view("x")), Error);
  EXPECT_THROW(moved_from->finish(), Error);
  moved_from.reset();
  EXPECT_EQ(target.finish().hex(), sha256_empty);
}

TEST(Hasher, RefusesUseAfterFinish) {
  Hasher hasher;
  hasher.finish();
  try {
    hasher.update(std::string_view("x"));
    FAIL() << "expected an Error";
  } catch (Error const& error) {
    EXPECT_STREQ(error.what(), "cannot update a sha256 hasher that was finished or moved from");
  }
  try {
    hasher.finish();
    FAIL() << "expected an Error";
  } catch (Error const& error) {
    EXPECT_STREQ(error.what(), "cannot finish a sha256 hasher that was finished or moved from");
  }
}

}  // namespace
}  // namespace berth::registry

// Versions are compared as lists of arbitrary-size integers (Java BigInteger in Flyway), kept
// here as digit strings without leading zeros so that `20240101123000123456` cannot overflow.
#include "berth/flyway/version.hpp"

#include <algorithm>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

MigrationVersion MigrationVersion::parse(std::string_view text) {
  std::string normalized(text);
  std::replace(normalized.begin(), normalized.end(), '_', '.');
  auto invalid = [&] {
    return MigrationError("Version may only contain 0..9 and . (dot). Invalid version: " + normalized);
  };

  // Flyway splits on "\.(?=\d)": a dot not followed by a digit stays inside a part and makes it
  // invalid, which rejects "1." and "1..2".
  std::vector<std::string> parts;
  std::string part;
  for (std::size_t pos = 0; pos < normalized.size(); ++pos) {
    char c = normalized[pos];
    if (c == '.' && pos + 1 < normalized.size() && is_digit(normalized[pos + 1])) {
      parts.push_back(std::move(part));
      part.clear();
    } else {
      part += c;
    }
  }
  parts.push_back(std::move(part));

  for (auto& digits : parts) {
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) throw invalid();
    auto first_nonzero = digits.find_first_not_of('0');
    digits = first_nonzero == std::string::npos ? "0" : digits.substr(first_nonzero);
  }
  while (parts.size() > 1 && parts.back() == "0") parts.pop_back();
  return MigrationVersion(std::move(normalized), std::move(parts));
}

std::strong_ordering operator<=>(MigrationVersion const& a, MigrationVersion const& b) {
  static std::string const zero = "0";
  std::size_t part_count = std::max(a.parts_.size(), b.parts_.size());
  for (std::size_t part_idx = 0; part_idx < part_count; ++part_idx) {
    auto const& part_a = part_idx < a.parts_.size() ? a.parts_[part_idx] : zero;
    auto const& part_b = part_idx < b.parts_.size() ? b.parts_[part_idx] : zero;
    // Without leading zeros, a longer digit string is a larger number.
    if (auto by_length = part_a.size() <=> part_b.size(); by_length != 0) return by_length;
    if (auto by_digits = part_a.compare(part_b); by_digits != 0) return by_digits <=> 0;
  }
  return std::strong_ordering::equal;
}

}  // namespace berth::flyway

// Decoding follows the Unicode "well-formed UTF-8" table (Table 3-7), which is what Java's
// decoder accepts.
#include "utf.hpp"

#include <cstdint>

namespace berth::flyway {
namespace {

constexpr char32_t replacement_character = 0xFFFD;

// Decodes one code point at `pos`; returns its length, or 0 when the bytes there are malformed.
std::size_t decode_one(std::string_view text, std::size_t pos, char32_t& code_point) {
  auto byte = [&](std::size_t offset) { return static_cast<std::uint8_t>(text[pos + offset]); };
  std::uint8_t lead = byte(0);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  std::size_t length = 0;
  std::uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (pos + length > text.size()) return 0;
  for (std::size_t idx = 1; idx < length; ++idx) {
    std::uint8_t continuation = byte(idx);
    std::uint8_t min = idx == 1 ? low : 0x80, max = idx == 1 ? high : 0xBF;
    if (continuation < min || continuation > max) return 0;
    code_point = (code_point << 6) | (continuation & 0x3F);
  }
  return length;
}

// Appends the UTF-16 code units of `text` one code point at a time.
class Utf16Units {
public:
  explicit Utf16Units(std::string_view text) : text_(text) {}
  // The next code unit, or nullopt at the end.
  std::optional<char16_t> next() {
    if (pending_low_) {
      auto unit = *pending_low_;
      pending_low_.reset();
      return unit;
    }
    if (pos_ >= text_.size()) return std::nullopt;
    char32_t code_point = 0;
    std::size_t length = decode_one(text_, pos_, code_point);
    if (length == 0) {
      code_point = replacement_character;
      length = 1;
    }
    pos_ += length;
    if (code_point < 0x10000) return static_cast<char16_t>(code_point);
    code_point -= 0x10000;
    pending_low_ = static_cast<char16_t>(0xDC00 + (code_point & 0x3FF));
    return static_cast<char16_t>(0xD800 + (code_point >> 10));
  }

private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::optional<char16_t> pending_low_;
};

}  // namespace

std::optional<std::size_t> find_malformed_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    char32_t code_point = 0;
    std::size_t length = decode_one(text, pos, code_point);
    if (length == 0) return pos;
    pos += length;
  }
  return std::nullopt;
}

bool utf16_less(std::string_view a, std::string_view b) {
  Utf16Units units_a(a), units_b(b);
  for (;;) {
    auto unit_a = units_a.next();
    auto unit_b = units_b.next();
    if (!unit_a || !unit_b) return !unit_a && unit_b.has_value();
    if (*unit_a != *unit_b) return *unit_a < *unit_b;
  }
}

}  // namespace berth::flyway
